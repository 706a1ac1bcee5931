"""Operations simulator (`creditrisk seed-demo`): months of simulated operations through the real services.

Everything a dashboard later shows is a record written here by the same services real traffic
uses; no figure is typed in. The story follows the seed's rollout, one module per part of it:

* :mod:`.cast`: the simulated officers, their manager and the leads (console users nobody can sign in as).
* :mod:`.timeline`: the rollout **phases** at their historical dates (shadow months 1-2, pilot 10% for
  senior officers with loans up to $25,000 months 3-4, scaled 50% months 5-6), and the **incident**: in
  month 2 a data-quality incident corrupts several recorded features (generator scenario
  ``data_quality_incident``); a retrained model that learnt from the corrupted feed is promoted
  mid-month and rolled back nine days later.
* this module, the **day loop**: applications from the synthetic generator (:mod:`.draws`), day by day,
  each submitted by a simulated officer and scored by :meth:`ScoringService.score_intake`, which assigns
  the arm by the phase in force and stores the prediction with its audit row; optionally the monitors,
  run every Monday 06:00 as cron would (in a second process with ``monitor_process``: :mod:`.monitors`).
* :mod:`.decisions`: how **officers** decide, with and without the AI (overrides, the manager's
  reviews), recorded through :meth:`DecisionService.record_many` (the same rules as the console).
* :mod:`.explanations`: the **explanations** of AI-arm decisions (the real template explainer) and the
  simulated LLM usage behind them; :mod:`.feedback`: officers' ratings and the monthly survey (NPS).
* :mod:`.outcomes`: approved loans are funded (most of them) and default by the generator's ground
  truth, observed months later; imported through :class:`OutcomeService` as of the end of the
  simulation, so recent vintages are still immature.

The statements the simulator runs itself are in :mod:`.queries`. Deterministic for a seed (the random
draws are per application, not per run) and resumable: each day is written in a few transactions, and
a day already present is not written again.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from backend.container import Services, build_services
from backend.domain import Actor
from backend.platform.clock import FixedClock
from backend.platform.ports import ProgressCallback
from backend.scoring import Intake
from backend.simulation import cast, queries
from backend.simulation.config import SOURCE, SimConfig, SimReport
from backend.simulation.decisions import Officers, officer_judgement
from backend.simulation.draws import Draws, generate_applications, records, request_timings
from backend.simulation.explanations import Explained, Explainer
from backend.simulation.feedback import ratings, surveys
from backend.simulation.monitors import InlineMonitors, MonitorRuns, ProcessMonitors, evaluate
from backend.simulation.outcomes import outcome_frame
from backend.simulation.timeline import Timeline, ensure_phases, incident_story, model_timeline, serving_at

WEEKLY_REFRESH = ("drift", "fairness")
SENIOR_WEIGHT = 1.6  # seniors handle more of the volume (they carry the pilot)


class OperationsSimulator:
    """Replays ``config`` through services bound to a settable clock (see the module docstring)."""

    def __init__(self, services: Services, config: SimConfig, *, echo: Callable[..., Any] = print,
                 progress: ProgressCallback | None = None, monitors: MonitorRuns | None = None) -> None:
        self.base = services
        self._monitors = monitors  # where the weekly runs go (default: by ``config.monitor_process``)
        self.cfg = config
        self.echo = echo
        self.progress = progress
        self.clock = FixedClock(config.start)
        # the same database, cache and settings; only the clock is the simulation's
        self.svc = build_services(services.settings, db=services.db, cache=services.cache, clock=self.clock)

    def run(self) -> SimReport:
        with self.svc.db.bulk_load():
            return self._run()

    def prepare_rollout(self) -> dict[str, Actor]:
        """The simulated staff and the rollout phases at their historical dates (idempotent): before anything
        else, so applications scored today (the demo's queue) fall in the arm of the phase in force now."""
        people = cast.ensure_people(self.svc.users, self.clock, self.cfg.start)
        ensure_phases(self.svc, self.clock, self.cfg, people)
        self.base.rollout.invalidate()  # the caller's own services read the phases again
        return people

    def prepare_models(self) -> list[str]:
        """The incident's retrained model, trained, promoted and rolled back at their historical times (idempotent:
        a second call finds the rollback in the registry). `make run` does it before the console opens, so that
        model never serves a request of the console while the history is written beside it. What happened, as
        notes."""
        rep = SimReport()
        model_timeline(self.svc, self.clock, self.cfg, rep)
        self.base.models.invalidate()  # the caller's services read the aliases again
        return rep.notes

    def _run(self) -> SimReport:
        t0 = time.perf_counter()
        rep = SimReport()
        cfg = self.cfg
        people = self.prepare_rollout()
        timeline = model_timeline(self.svc, self.clock, cfg, rep)
        df, true_df = self._cohorts()
        draws = self.draws = Draws(cfg.seed, len(df))
        judgement = officer_judgement(self.svc.models.get(timeline[0][1]), true_df, draws)
        officers = Officers(cfg, draws, judgement, df["pd_true"].to_numpy(), manager=cast.manager(people),
                            cap=self.svc.decisions.cap)
        explainer = Explainer(cfg, draws, self.svc.settings.llm.prices)
        staff = cast.officers(people)
        officer_idx = _assign_officers(staff, draws)
        days = df["applied_at"].dt.floor("D")
        bounds = np.flatnonzero(np.r_[True, days.values[1:] != days.values[:-1], True])
        n_days = len(bounds) - 1
        explained: list[Explained] = []
        weekly = self._weekly_runs() if cfg.monitoring else None
        # each Monday after the first day, at 06:00, once every day up to that Monday is written (its early hours
        # included), and the morning after the last day; a resumed run skips the Mondays of days already written
        first, last = days.iloc[0].to_pydatetime(), days.iloc[-1].to_pydatetime()
        mondays = deque(first + timedelta(days=k) for k in range(1, (last - first).days + 1)
                        if (first + timedelta(days=k)).weekday() == 0)
        prev_written = False
        try:
            for d in range(n_days):
                lo, hi = int(bounds[d]), int(bounds[d + 1])
                day = df.iloc[lo:hi]
                while weekly is not None and mondays and mondays[0] < days.iloc[lo]:
                    monday = mondays.popleft()
                    if prev_written:
                        self._weekly(weekly, monday + timedelta(hours=6), rep)
                prev_written = self._day(day, lo, officer_idx, staff, timeline, officers, explainer, rep, explained)
                if not prev_written:
                    rep.skipped_days += 1
                if self.progress:
                    self.progress(f"{day['applied_at'].iloc[0]:%Y-%m-%d}", d + 1, n_days)
            if weekly is not None and prev_written:
                for at in [*(m + timedelta(hours=6) for m in mondays), last + timedelta(days=1, hours=6)]:
                    self._weekly(weekly, at, rep)
            if rep.skipped_days < n_days:  # (~30 s on the default history with no progress bar of their own)
                self.echo("then the feedback, the outcomes, the incident and a last monitor run…")
            if weekly is not None:
                weekly.close()  # every weekly run done before anything after the days reads or writes
        except BaseException:
            if weekly is not None:
                weekly.stop()
            raise
        if rep.skipped_days < n_days or not queries.survey_answers(self.svc.db):  # a re-run adds nothing backdated
            self._feedback(explained, draws, people, rep)
        if rep.skipped_days < n_days or not queries.has_outcomes(self.svc.db, SOURCE):
            self._outcomes(df, draws, rep)  # a re-run with nothing new imports (and audits) nothing again
        incident_story(self.svc, timeline, rep)  # the September rollback as an incident, opened to closed
        if cfg.monitoring and rep.skipped_days < n_days:  # a re-run that wrote nothing has nothing new to judge
            self._monitor(cfg.outcomes_as_of + timedelta(days=1, hours=6), rep, True)
        rep.seconds = time.perf_counter() - t0
        return rep

    def _weekly_runs(self) -> MonitorRuns:
        """Where the weekly monitor runs go: what ``creditrisk monitor run`` scheduled by cron would have done
        each Monday 06:00 (refresh the summaries from what was known then, evaluate the alert rules: alerts open
        and resolve at their historical times). They refresh drift and fairness only: no vintage matures inside
        the history, and the phase counts are recounted once, after the outcomes. In a second process with
        ``monitor_process`` (:mod:`backend.simulation.monitors`), else in-line."""
        if self._monitors is not None:
            return self._monitors
        in_memory = self.svc.db.dialect == "sqlite" and self.svc.db.engine.url.database in (None, "", ":memory:")
        if self.cfg.monitor_process and not in_memory:  # (another process cannot open an in-memory database)
            return ProcessMonitors(self.svc)
        return InlineMonitors(self.svc, self.clock)

    def _weekly(self, runs: MonitorRuns, at: datetime, rep: SimReport) -> None:
        runs.submit(self.cfg.cap(at), WEEKLY_REFRESH)
        rep.monitor_runs += 1

    def _monitor(self, at: datetime, rep: SimReport, refresh: bool | tuple[str, ...]) -> None:
        """One monitor run at ``at`` in-line (the last one, after the outcomes: everything refreshed)."""
        evaluate(self.svc, self.clock, self.cfg.cap(at), refresh)
        rep.monitor_runs += 1

    def _cohorts(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The applications as recorded (the incident's corrupted feed included) and as they truly were."""
        cfg = self.cfg
        n = cfg.volume * cfg.months
        df = generate_applications(n, seed=cfg.seed, start=cfg.start, end=cfg.end,
                                   incident=cfg.incident_window if cfg.incident else None)
        true_df = generate_applications(n, seed=cfg.seed, start=cfg.start, end=cfg.end, incident=None)
        return df.reset_index(drop=True), true_df.reset_index(drop=True)

    # -- one day -----------------------------------------------------------------------------------
    def _day(self, day: pd.DataFrame, lo: int, officer_idx: np.ndarray, staff: list[Actor], timeline: Timeline,
             officers: Officers, explainer: Explainer, rep: SimReport, explained: list[Explained]) -> bool:
        """Score, decide and explain one day's applications (those not written yet); False if all were."""
        ids = day["application_id"].tolist()
        have = queries.existing_external_ids(self.svc.db, ids)
        if len(have) == len(ids):
            return False
        if have:  # a day interrupted between its transactions: write the rest of it
            keep = ~day["application_id"].isin(have).to_numpy()
            day = day[keep]
            idx = np.flatnonzero(keep) + lo
        else:
            idx = np.arange(lo, lo + len(day))
        version = serving_at(timeline, day["applied_at"].iloc[0].to_pydatetime())
        items = []
        for rec, i in zip(records(day.drop(columns=["default", "pd_true"])), idx, strict=True):
            o = staff[int(officer_idx[i])]
            items.append(Intake(rec, Actor(o.username, o.role, o.id, senior=o.senior), rec["applied_at"].to_pydatetime()))
        self.clock.at = day["applied_at"].iloc[-1].to_pydatetime() + timedelta(seconds=1)
        results = self.svc.scoring.score_intake(items, model_ref=version, source=SOURCE,
                                                timings=request_timings(self.draws, idx))
        rep.applications += len(results)
        decided = officers.decide(results, items, idx, self.clock.now())
        self.clock.at = max((d.decided_at for d in decided.decisions), default=self.clock.now())
        rep.decisions += self.svc.decisions.record_many(decided.all)
        if decided.shown:
            out = explainer.day(decided.shown)
            queries.insert_explanations(self.svc.db, out.rows, out.usage, out.audits)
            rep.explanations += len(out.rows)
            rep.usage_rows += len(out.usage)
            explained.extend(out.explained)
        return True

    # -- after the days ------------------------------------------------------------------------------
    def _feedback(self, explained: list[Explained], draws: Draws, people: dict[str, Actor], rep: SimReport) -> None:
        items = ratings(explained, draws, people)
        if items:
            self.clock.at = max(i.at for i in items)
            rep.feedback += self.svc.feedback.record_feedback_many(items)
        answers = surveys(self.cfg, people, queries.ai_users_by_month(self.svc.db, SOURCE),
                          queries.survey_answers(self.svc.db))
        if answers:
            self.clock.at = max(i.at for i in answers)
            rep.surveys += self.svc.feedback.record_surveys_many(answers)

    def _outcomes(self, df: pd.DataFrame, draws: Draws, rep: SimReport) -> None:
        final = queries.final_decisions(self.svc.db, SOURCE)
        if final.empty:
            return
        out = outcome_frame(self.cfg, df, final, draws)
        self.clock.at = self.cfg.cap(pd.Timestamp(self.cfg.outcomes_as_of).to_pydatetime() + timedelta(days=1))
        report = self.svc.outcomes.import_frame(out, actor="simulator", role="system", source_name="seed-demo")
        rep.outcomes += report.accepted
        if report.rejected:
            rep.notes.append(f"{len(report.rejected)} outcome rows rejected (first: {report.rejected[0]})")


def _assign_officers(staff: list[Actor], draws: Draws) -> np.ndarray:
    """The officer (index into ``staff``) who submits each application; seniors handle more of the volume."""
    senior = np.array([s for _, _, s in cast.SIM_OFFICERS])
    weights = np.where(senior, SENIOR_WEIGHT, 1.0)
    officer_idx = np.searchsorted(np.cumsum(weights / weights.sum()), draws.officer, side="right")
    return np.minimum(officer_idx, len(staff) - 1)


__all__ = ["OperationsSimulator", "SimConfig", "SimReport"]
