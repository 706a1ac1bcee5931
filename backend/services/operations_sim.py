"""Operations simulator (`creditrisk seed-demo`): months of simulated operations through the real services.

Everything a dashboard later shows is a record written here by the same services real traffic
uses; no figure is typed in. The story follows the seed's rollout:

* **Phases** are proposed by the product lead and approved by the risk manager through
  :class:`RolloutService` (four-eyes, audited) at their historical dates: shadow (months 1-2),
  pilot 10% for senior officers with loans up to $25,000 (months 3-4), scaled 50% (months 5-6).
* **Applications** come from the synthetic generator (its ground-truth default process), day by
  day, each submitted by a simulated officer and scored by :meth:`ScoringService.score_intake`,
  which assigns the arm by the phase in force and stores the prediction with its audit row.
* **Officers**: in the AI arm they accept the recommendation in seconds and override about 8% of
  the time (material overrides go to a manager, who approves most of them); review
  recommendations are resolved in minutes. Without the AI (control arm, shadow mode, excluded)
  they decide with a noisy judgement of their own over days. Decisions go through
  :meth:`DecisionService.record_many` (the same rules as the console).
* **Explanations** for AI-arm decisions are written by the real template explainer over the real
  decision record; the LLM calls behind them are simulated usage rows (tokens, latency, timeouts
  with fallback to the second provider, fact-check rejections, views served from the stored
  explanation) priced with the settings' price table. Officers rate some explanations, and answer
  a monthly survey (NPS).
* **Incident**: in month 2 a data-quality incident corrupts several recorded features (generator
  scenario ``data_quality_incident``); a retrained model that learnt from the corrupted feed is
  promoted mid-month and rolled back nine days later (registry events and audit rows at those times).
* **Outcomes**: approved loans are funded (most of them) and default by the generator's ground
  truth, observed months later; they are imported through :class:`OutcomeService` as of the end of
  the simulation, so recent vintages are still immature.

Deterministic for a seed (the random draws are per application, not per run) and resumable: each
day is written in a few transactions, and a day already present is not written again.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, insert, select

from backend.clock import FixedClock
from backend.container import Services, build_services
from backend.db.bulk import AuditEntry, append_many
from backend.db.tables import Application, Decision, ExplanationRow, LLMUsageRow, SurveyResponse
from backend.services.auth import UserInfo
from backend.services.explain.providers import cost_usd
from backend.services.explain.record import DecisionRecord
from backend.services.explain.template import TemplateExplainer
from backend.services.overrides import BulkDecision, BulkReview
from backend.services.scoring import Intake, ScoreResult, Submitter
from backend.services.users import Actor

SOURCE = "simulated"
ID_PREFIX = "ops"
SIM_OFFICERS = (  # username, display name, senior
    ("sim.aisha", "Aisha Bello (simulated)", True), ("sim.ben", "Ben Carter (simulated)", True),
    ("sim.chloe", "Chloe Dubois (simulated)", True), ("sim.daniel", "Daniel Kim (simulated)", True),
    ("sim.elena", "Elena Rossi (simulated)", False), ("sim.farid", "Farid Haddad (simulated)", False),
    ("sim.grace", "Grace Liu (simulated)", False), ("sim.hugo", "Hugo Martins (simulated)", False),
    ("sim.ines", "Ines Garcia (simulated)", False), ("sim.jonas", "Jonas Berg (simulated)", False),
    ("sim.kemi", "Kemi Adebayo (simulated)", False), ("sim.luca", "Luca Bianchi (simulated)", False),
)
SIM_MANAGERS = (("sim.maya", "Maya Singh (simulated)"),)
PRODUCT_LEAD, RISK_MANAGER, ML_ENGINEER = "sim.priya", "sim.rita", "sim.marcus"
SIM_LEADS = ((PRODUCT_LEAD, "product_lead", "Priya Patel (simulated)"),
             (RISK_MANAGER, "risk_manager", "Rita Chen (simulated)"),
             (ML_ENGINEER, "ml_engineer", "Marcus Lee (simulated)"))
MANUAL_DENIAL_TEXTS = (
    "Debt-to-income ratio too high for the requested amount after verifying obligations",
    "Recent delinquencies on the credit report; insufficient repayment history",
    "Income could not be verified to support the requested payment",
    "High revolving utilization and several recent credit inquiries",
)
OVERRIDE_TEXTS = {
    "verified_income_higher": "Pay stubs show a higher verified income than the application stated",
    "compensating_factors": "Substantial savings and a co-signer offset the model's concerns",
    "documentation_error": "Corrected employment dates from the employer letter change the picture",
    "customer_relationship": "Long relationship with the bank and a clean repayment history on two loans",
    "fraud_suspected": "Identity documents do not match the bureau file; declined pending verification",
    "thin_file_manual_review": "Thin credit file; full manual underwrite needed before any approval",
}
APPROVE_REASONS = ("verified_income_higher", "compensating_factors", "customer_relationship", "documentation_error")
DENY_REASONS = ("fraud_suspected", "documentation_error")
EXPLAIN_MODEL, FALLBACK_MODEL = ("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4-5")
RISKY_PD, SAFE_PD = 0.06, 0.04  # ground-truth default probabilities officers can sense from documents
OVERRIDE_WEIGHT_ON_RISKY, OVERRIDE_WEIGHT_ON_SAFE = 3.0, 2.0
HUMAN_NOISE, HUMAN_LENIENCY = 0.08, 0.04  # officers' own judgement (in standard deviations of the score)


@dataclass(frozen=True)
class SimConfig:
    volume: int = 20_000  # applications per month
    months: int = 6
    start: datetime = datetime(2025, 8, 1, tzinfo=UTC)
    seed: int = 11
    incident: bool = True
    override_rate: float = 0.07  # AI-arm officers who disagree with an approve/deny recommendation
    cache_share: float = 0.23  # explanation views served from the stored explanation (no LLM call)
    timeout_rate: float = 0.02  # primary LLM calls that time out (→ the fallback provider)
    factcheck_failure_rate: float = 0.008  # LLM answers the fact-check rejects (→ the template)
    funded_share: float = 0.88  # approved applicants who take the loan
    as_of: datetime | None = None  # outcomes observed as of (default: nine months after the last application)
    retrain: bool = True  # the incident's retrained model, promoted and rolled back
    retrain_rows: int = 8_000
    monitoring: bool = False  # run the monitors every Monday 06:00 of the history, and once after the outcomes

    @property
    def end(self) -> datetime:
        return (pd.Timestamp(self.start) + pd.DateOffset(months=self.months)).to_pydatetime()

    def month(self, k: int) -> datetime:
        return (pd.Timestamp(self.start) + pd.DateOffset(months=k)).to_pydatetime()

    @property
    def outcomes_as_of(self) -> datetime:
        """When the outcome feed was last read: by default nine months after the history ends, so the
        first vintages are 15 months old and the last 9 (the newest defaults are still to come)."""
        return self.as_of or (pd.Timestamp(self.end) + pd.DateOffset(months=9)).to_pydatetime()

    @property
    def incident_window(self) -> tuple[datetime, datetime]:
        m = self.month(1)
        return m + timedelta(days=7), m + timedelta(days=28)


@dataclass
class SimReport:
    applications: int = 0
    decisions: int = 0
    explanations: int = 0
    usage_rows: int = 0
    feedback: int = 0
    surveys: int = 0
    outcomes: int = 0
    skipped_days: int = 0
    monitor_runs: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


Progress = Callable[[int, int, str], None]
WEEKLY_REFRESH = ("drift", "fairness")


class OperationsSimulator:
    """Replays ``config`` through services bound to a settable clock (see the module docstring)."""

    def __init__(self, services: Services, config: SimConfig, *, echo: Callable[..., Any] = print,
                 progress: Progress | None = None) -> None:
        self.base = services
        self.cfg = config
        self.echo = echo
        self.progress = progress
        self.clock = FixedClock(config.start)
        # the same database, cache and settings; only the clock is the simulation's
        self.svc = build_services(services.settings, db=services.db, cache=services.cache, clock=self.clock)
        self.template = TemplateExplainer()
        self.prices = services.settings.llm.prices

    # -- entry point ------------------------------------------------------------------------------
    def run(self) -> SimReport:
        with self.svc.db.bulk_load():
            return self._run()

    def _run(self) -> SimReport:
        t0 = time.perf_counter()
        rep = SimReport()
        cfg = self.cfg
        users = self._users()
        self._phases(users)
        timeline = self._models(users, rep)
        df = self._cohorts()
        draws = _Draws(cfg.seed, len(df))
        self._pd_true = df["pd_true"].to_numpy()
        self.judgement = self._judgement(timeline[0][1], draws)
        officers = [users[u] for u, _, _ in SIM_OFFICERS]
        senior = np.array([s for _, _, s in SIM_OFFICERS])
        # seniors handle more of the volume (they carry the pilot)
        weights = np.where(senior, 1.6, 1.0)
        officer_idx = np.searchsorted(np.cumsum(weights / weights.sum()), draws.officer, side="right")
        officer_idx = np.minimum(officer_idx, len(officers) - 1)
        days = df["applied_at"].dt.floor("D")
        bounds = np.flatnonzero(np.r_[True, days.values[1:] != days.values[:-1], True])
        n_days = len(bounds) - 1
        explanations: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID, datetime, bool, bool]] = []
        for d in range(n_days):
            lo, hi = int(bounds[d]), int(bounds[d + 1])
            day = df.iloc[lo:hi]
            written = self._day(day, lo, draws, officer_idx, officers, users, timeline, rep, explanations)
            if not written:
                rep.skipped_days += 1
            elif cfg.monitoring and (d + 1 == n_days or days.iloc[hi].weekday() == 0):
                self._monitor(days.iloc[lo].to_pydatetime() + timedelta(days=1, hours=6), rep, WEEKLY_REFRESH)
            if self.progress:
                self.progress(d + 1, n_days, f"{day['applied_at'].iloc[0]:%Y-%m-%d}")
        self._feedback(explanations, draws, users, rep)
        self._surveys(users, rep)
        self._outcomes(df, draws, users, rep)
        if cfg.monitoring and rep.skipped_days < n_days:  # a re-run that wrote nothing has nothing new to judge
            self._monitor(cfg.outcomes_as_of + timedelta(days=1, hours=6), rep, True)
        rep.seconds = time.perf_counter() - t0
        return rep

    def _monitor(self, at: datetime, rep: SimReport, refresh: bool | tuple[str, ...]) -> None:
        """What ``creditrisk monitor run`` scheduled by cron would have done at ``at``: refresh the
        summaries from what was known then and evaluate the alert rules (alerts open and resolve at
        their historical times). Weekly runs refresh drift and fairness only: no vintage matures
        inside the history, and the phase counts are recounted once, after the outcomes."""
        self.clock.at = at
        self.svc.alerts.evaluate(at=at, refresh=refresh, actor="monitor")
        rep.monitor_runs += 1

    # -- set-up -----------------------------------------------------------------------------------
    def _users(self) -> dict[str, UserInfo]:
        """Simulated officers, a manager and the leads (random passwords nobody knows)."""
        out: dict[str, UserInfo] = {}
        setup = Actor("simulator", "admin")
        wanted = [(u, "loan_officer", n, s) for u, n, s in SIM_OFFICERS]
        wanted += [(u, "risk_manager", n, False) for u, n in SIM_MANAGERS]
        wanted += [(u, r, n, False) for u, r, n in SIM_LEADS]
        for username, role, name, senior in wanted:
            info = self.svc.users.get(username)
            if info is None:
                self.clock.at = self.cfg.start - timedelta(days=30)
                # a random password nobody is told: nobody can sign in as a simulated person
                info, _ = self.svc.users.add(username, role=role, display_name=name, senior=senior, actor=setup,
                                             password=secrets.token_urlsafe(24), rounds=4)
            out[username] = info
        return out

    def _phases(self, users: dict[str, UserInfo]) -> None:
        """The seed's phases, each proposed by the product lead and approved by the risk manager."""
        ro = self.svc.rollout
        if any(p.proposed_by == PRODUCT_LEAD for p in ro.history()):
            return
        cfg = self.cfg
        plan = [
            (0, "shadow", 0.0, False, "Shadow mode: the model scores every application silently so that agreement "
                                      "with officers can be measured before anyone sees it."),
            (2, "pilot", 0.10, True, "Pilot: 10% of eligible applications through the AI arm, senior officers only, "
                                     "loans up to $25,000, confidence threshold 0.70."),
            (4, "scaled", 0.50, False, "Scaled rollout: half of the applications through the AI arm for every "
                                       "officer, after the pilot met its criteria."),
        ]
        lead, risk = users[PRODUCT_LEAD], users[RISK_MANAGER]
        for month, phase, share, senior_only, why in plan:
            if month >= cfg.months:
                continue
            starts = cfg.month(month)
            self.clock.at = starts - timedelta(days=6, hours=-10)
            p = ro.propose(lead, phase=phase, ai_share=share, loan_amount_cap=25_000.0, confidence_threshold=0.70,
                           starts_at=starts, senior_only=senior_only, rationale=why, salt=f"seed-demo-{cfg.seed}")
            self.clock.at = starts - timedelta(days=3, hours=-15)
            ro.approve(p.version, risk, note="Criteria reviewed; go.")
        ro.invalidate()
        self.svc.scoring.rollout = ro

    def _models(self, users: dict[str, UserInfo], rep: SimReport) -> list[tuple[datetime, str]]:
        """Which model served when: the champion, and during the incident the retrained one."""
        from backend.model.registry import Registry

        settings = self.svc.settings
        reg = Registry(settings.model.registry_dir, name=settings.model.name)
        champion = reg.resolve("champion")
        if not self.cfg.incident or not self.cfg.retrain:
            return [(self.cfg.start, champion)]
        events = reg.aliases().get("events", [])
        promote_at = self.cfg.incident_window[0] + timedelta(days=7, hours=9)
        rollback_at = promote_at + timedelta(days=9, hours=2)
        done = [e for e in events if e.get("action") == "rollback" and e.get("at", "").startswith(
            rollback_at.strftime("%Y-%m-%d"))]
        if done:  # resumed: the timeline is in the registry already
            retrained = str(done[-1].get("previous"))
            return [(self.cfg.start, champion), (promote_at, retrained), (rollback_at, champion)]
        retrained = self._retrain(promote_at)
        from backend.services.model_admin import ModelAdmin

        admin = ModelAdmin(self.svc)
        ml = Actor(ML_ENGINEER, "ml_engineer")
        self.clock.at = promote_at
        res = admin.promote(retrained, ml, force=True, at=promote_at,
                            note="scheduled monthly retrain (simulated); trained on the first weeks of September")
        forced = not all(g.get("passed") for g in res.get("gates", []))
        admin.rollback(ml, at=rollback_at,
                       note="PSI above 0.25 on income, utilization and inquiries; accuracy alerts since the "
                            "promotion: rolled back to the previous champion (simulated)")
        rep.notes.append(f"model {retrained} promoted {promote_at:%Y-%m-%d}"
                         f"{' (gates overridden)' if forced else ''} and rolled back {rollback_at:%Y-%m-%d}")
        return [(self.cfg.start, champion), (promote_at, retrained), (rollback_at, champion)]

    def _retrain(self, at: datetime) -> str:
        """A model trained on applications up to ``at``, half of them from the corrupted feed."""
        from backend.training.train import train_and_register

        lo, hi = self.cfg.incident_window
        data = _generate(self.cfg.retrain_rows, seed=self.cfg.seed + 101, start=lo - timedelta(days=14), end=at, incident=(lo, hi))
        report = train_and_register(data.drop(columns=["application_id"]), registry_root=self.svc.settings.model.registry_dir,
                                    name=self.svc.settings.model.name, seed=self.cfg.seed, cv_folds=2)
        return str(report["version"])

    def _cohorts(self) -> pd.DataFrame:
        cfg = self.cfg
        n = cfg.volume * cfg.months
        df = _generate(n, seed=cfg.seed, start=cfg.start, end=cfg.end,
                       incident=cfg.incident_window if cfg.incident else None)
        self._true = _generate(n, seed=cfg.seed, start=cfg.start, end=cfg.end, incident=None).reset_index(drop=True)
        return df.reset_index(drop=True)

    def _judgement(self, version: str, draws: _Draws) -> np.ndarray:
        """An officer's own view of each applicant, deciding without the AI: the bank's underwriting
        standard (the pre-incident champion) applied to the applicant's *true*, verified documents,
        plus personal noise and a little leniency. Positive means deny. During the data-quality
        incident the model sees the corrupted feed while officers see the documents, so they disagree."""
        model = self.svc.models.get(version)
        raw = model.primary.predict_proba(model.encoder.transform(self._true[list(model.columns)]))
        z = (raw - model.policy.score_cutoff) / max(float(np.std(raw)), 1e-6)
        return np.asarray(z + HUMAN_NOISE * draws.noise - HUMAN_LENIENCY)

    # -- one day -----------------------------------------------------------------------------------
    def _day(self, day: pd.DataFrame, lo: int, draws: _Draws, officer_idx: np.ndarray,
             officers: list[UserInfo], users: dict[str, UserInfo], timeline: list[tuple[datetime, str]],
             rep: SimReport, explanations: list[Any]) -> bool:
        ids = day["application_id"].tolist()
        with self.svc.db.read() as s:
            present = s.execute(select(func.count()).select_from(Application)
                                .where(Application.external_id.in_(ids))).scalar_one()
        if present == len(ids):
            return False
        if present:  # a day interrupted between its transactions: write the rest of it
            with self.svc.db.read() as s:
                have = set(s.execute(select(Application.external_id).where(Application.external_id.in_(ids)))
                           .scalars())
            keep = ~day["application_id"].isin(have).to_numpy()
            day = day[keep]
            idx = np.flatnonzero(keep) + lo
        else:
            idx = np.arange(lo, lo + len(day))
        first = day["applied_at"].iloc[0].to_pydatetime()
        version = [v for t, v in timeline if t <= first][-1] if any(t <= first for t, _ in timeline) else timeline[0][1]
        records = _records(day.drop(columns=["default", "pd_true"]))
        items = []
        for rec, i in zip(records, idx, strict=True):
            o = officers[int(officer_idx[i])]
            items.append(Intake(rec, Submitter(o.username, o.role, o.id, o.senior), rec["applied_at"].to_pydatetime()))
        self.clock.at = day["applied_at"].iloc[-1].to_pydatetime() + timedelta(seconds=1)
        results = self.svc.scoring.score_intake(items, model_ref=version, source=SOURCE)
        rep.applications += len(results)
        self._decide(results, items, idx, day, draws, users, rep, explanations)
        return True

    def _decide(self, results: list[ScoreResult], items: list[Intake], idx: np.ndarray, day: pd.DataFrame,
                draws: _Draws, users: dict[str, UserInfo], rep: SimReport, explanations: list[Any]) -> None:
        manager = users[SIM_MANAGERS[0][0]]
        decisions: list[BulkDecision] = []
        follow_ups: list[BulkDecision] = []
        shown: list[tuple[ScoreResult, UserInfo, datetime, int]] = []
        for res, it, i in zip(results, items, idx, strict=True):
            officer = it.submitter
            applied = it.applied_at or self.clock.now()
            loan = float(res.features.get("loan_amount") or 0.0)
            base: dict[str, Any] = dict(application_id=uuid.UUID(str(res.application_id)), prediction_id=uuid.UUID(str(res.prediction_id)),
                        recommendation=res.recommendation, risk_class=res.risk_class, loan_amount=loan,
                        ai_visible=res.ai_visible, user_id=officer.user_id, username=officer.username,
                        role=officer.role)
            if not res.ai_visible:  # decided without the AI: the officer's own judgement, over days
                outcome = "deny" if self.judgement[i] > 0 else "approve"
                turnaround = float(np.exp(np.log(3.4 * 86400) + 0.55 * draws.time[i]))
                decided = applied + timedelta(seconds=turnaround)
                handling = float(np.exp(np.log(1500) + 0.5 * draws.time2[i]))
                code = text = None
                if outcome == "deny":
                    code, text = "other", MANUAL_DENIAL_TEXTS[int(draws.pick[i] * len(MANUAL_DENIAL_TEXTS))]
                decisions.append(BulkDecision(**base, outcome=outcome, decided_at=decided, decision_seconds=handling,
                                              reason_code=code, reason_text=text))
                continue
            seconds = float(np.exp(np.log(38.0) + 0.45 * draws.time[i]))
            decided = applied + timedelta(seconds=seconds)
            shown.append((res, _user(officer), applied + timedelta(seconds=2), int(i)))
            rec = res.recommendation
            if rec == "manual_review":  # the review the policy asked for: minutes, by the risk class
                outcome = "approve" if res.risk_class == "low_risk" else "deny"
                seconds = float(np.exp(np.log(900.0) + 0.5 * draws.time[i]))
                decided = applied + timedelta(seconds=seconds)
                over = "approve" if outcome == "approve" and loan > self.svc.decisions.cap else None
                if over is None:
                    decisions.append(BulkDecision(**base, outcome=outcome, decided_at=decided, decision_seconds=seconds))
                    continue
            # overrides are informed: officers who read the file disagree more often where the model
            # is wrong (an approval of a truly risky applicant, a denial of a truly safe one)
            informed = (OVERRIDE_WEIGHT_ON_RISKY if self._pd_true[i] > RISKY_PD else 0.7) if rec == "approve" else \
                (OVERRIDE_WEIGHT_ON_SAFE if self._pd_true[i] < SAFE_PD else 0.4)
            if draws.override[i] >= self.cfg.override_rate * informed and rec != "manual_review":
                decisions.append(BulkDecision(**base, outcome=rec, decided_at=decided, decision_seconds=seconds))
                continue
            # an override: towards approval (material: a manager decides) or towards denial
            if rec == "deny" or rec == "manual_review":
                code = APPROVE_REASONS[int(draws.pick[i] * len(APPROVE_REASONS))]
                outcome = "approve"
            else:
                code = DENY_REASONS[int(draws.pick[i] * len(DENY_REASONS))]
                outcome = "deny" if draws.pick2[i] < 0.6 else "manual_review"
            approve = draws.review[i] < 0.85
            reviewed_at = decided + timedelta(hours=float(1 + 6 * draws.pick2[i]))
            reviewer = BulkReview(manager.id, manager.username, manager.role, approve, reviewed_at,
                                  None if approve else "Not enough evidence for an exception; follow the policy.")
            decisions.append(BulkDecision(**base, outcome=outcome, decided_at=decided, decision_seconds=seconds * 3,
                                          reason_code=code, reason_text=OVERRIDE_TEXTS[code], reviewer=reviewer))
            if not approve and rec != "manual_review":
                follow_ups.append(BulkDecision(**base, outcome=rec, decided_at=reviewed_at + timedelta(minutes=40),
                                               decision_seconds=30.0))
        self.clock.at = max((d.decided_at for d in decisions), default=self.clock.now())
        rep.decisions += self.svc.decisions.record_many([*decisions, *follow_ups])
        if shown:
            self._explain(shown, draws, rep, explanations)

    # -- explanations and their LLM usage ----------------------------------------------------------
    def _explain(self, shown: list[tuple[ScoreResult, UserInfo, datetime, int]], draws: _Draws, rep: SimReport,
                 explanations: list[Any]) -> None:
        rows: list[dict[str, Any]] = []
        usage: list[dict[str, Any]] = []
        audits: list[AuditEntry] = []
        for res, officer, at, i in shown:
            pid = uuid.UUID(str(res.prediction_id))
            text = self.template.render(DecisionRecord.from_score(res))
            u = draws.llm[i]
            eid = uuid.uuid4()
            calls: list[dict[str, Any]] = []
            provider, model, ok, fallback = EXPLAIN_MODEL[0], EXPLAIN_MODEL[1], True, False
            failures: list[dict[str, Any]] = []
            tokens_in = int(760 + 140 * draws.noise[i] ** 2 + 90 * draws.pick[i])
            tokens_out = int(min(200, 118 + 40 * draws.pick2[i] + 12 * abs(draws.noise[i])))
            if u < self.cfg.timeout_rate:  # the primary timed out: the fallback provider answers
                calls.append(self._call(at, pid, EXPLAIN_MODEL, None, None, 10_000.0, False, None,
                                        "timeout: no answer within 10.0 s"))
                provider, model, fallback = FALLBACK_MODEL[0], FALLBACK_MODEL[1], True
            latency = float(np.exp(np.log(2600.0 if not fallback else 3300.0) + 0.42 * draws.time2[i]))
            if self.cfg.timeout_rate <= u < self.cfg.timeout_rate + self.cfg.factcheck_failure_rate:
                ok = False
                failures = [{"claim": "(simulated) an answer that changed the applicant's debt-to-income figure",
                             "kind": "number", "detail": "simulated fact-check rejection"}]
            calls.append(self._call(at, pid, (provider, model), tokens_in, tokens_out, latency, fallback, ok, None))
            shown_text = text
            rows.append({"id": eid, "prediction_id": pid, "created_at": at, "actor": officer.username,
                         "provider": provider if ok else "template", "model": model if ok else "template-v1",
                         "text": shown_text, "fact_check_ok": ok, "failures": failures, "fallback_used": fallback or not ok})
            usage.extend(calls)
            audits.append(AuditEntry(actor=officer.username, role=officer.role, action="explanation_shown",
                                     entity_type="explanation", entity_id=str(eid), at=at,
                                     payload={"prediction_id": str(pid), "provider": provider if ok else "template",
                                              "model": model, "fact_check_ok": ok, "fallback_used": fallback or not ok,
                                              "llm_calls": len(calls), "simulated": True}))
            if draws.cache[i] < self.cfg.cache_share:  # the officer came back: served from the stored text
                usage.append({"id": uuid.uuid4(), "at": at + timedelta(hours=2), "purpose": "explanation",
                              "prediction_id": pid, "provider": "cache", "model": "", "input_tokens": 0,
                              "output_tokens": 0, "cost_usd": 0.0,
                              "latency_ms": float(3.0 + 4.0 * draws.pick2[i]), "fallback_used": False,
                              "fact_check_ok": None, "error": None})
            explanations.append((eid, pid, officer.id, at, ok, fallback))
        with self.svc.db.transaction() as s:
            s.execute(insert(ExplanationRow), rows)
            for k in range(0, len(usage), 2000):
                s.execute(insert(LLMUsageRow), usage[k:k + 2000])
            append_many(s, audits)
        rep.explanations += len(rows)
        rep.usage_rows += len(usage)

    def _call(self, at: datetime, pid: uuid.UUID, pm: tuple[str, str], tin: int | None, tout: int | None,
              latency: float, fallback: bool, ok: bool | None, error: str | None) -> dict[str, Any]:
        return {"id": uuid.uuid4(), "at": at, "purpose": "explanation", "prediction_id": pid, "provider": pm[0],
                "model": pm[1], "input_tokens": tin, "output_tokens": tout,
                "cost_usd": cost_usd(self.prices, pm[1], tin, tout), "latency_ms": latency, "fallback_used": fallback,
                "fact_check_ok": ok, "error": error}

    # -- feedback, surveys, outcomes -----------------------------------------------------------------
    def _feedback(self, explanations: list[Any], draws: _Draws, users: dict[str, UserInfo], rep: SimReport) -> None:
        from backend.services.feedback import FeedbackItem

        by_id = {u.id: u for u in users.values()}
        items = []
        for eid, pid, uid, at, ok, fallback in explanations:
            h = _hash01(self.cfg.seed, str(pid))
            if h >= 0.35:
                continue
            p_helpful = 0.86 if ok and not fallback else 0.62
            helpful = _hash01(self.cfg.seed + 1, str(pid)) < p_helpful
            u = by_id[uid]
            items.append(FeedbackItem(prediction_id=pid, explanation_id=eid, user_id=uid, username=u.username,
                                      role=u.role, at=at + timedelta(minutes=3), helpful=helpful,
                                      comment=None if helpful else "The reasons were right but the wording was vague."))
        if items:
            self.clock.at = max(i.at for i in items)
            rep.feedback += self.svc.feedback.record_feedback_many(items)

    def _surveys(self, users: dict[str, UserInfo], rep: SimReport) -> None:
        """Monthly NPS: officers who worked with the AI that month answer more warmly."""
        from backend.services.feedback import SurveyItem

        with self.svc.db.read() as s:
            used = self._ai_users_by_month(s)
            answered = {(uid, period) for uid, period in s.execute(
                select(SurveyResponse.user_id, SurveyResponse.period))}
        items = []
        for k in range(self.cfg.months):
            period = f"{self.cfg.month(k):%Y-%m}"
            at = self.cfg.month(k + 1) - timedelta(days=2)
            for username, _name, _senior in SIM_OFFICERS:
                u = users[username]
                if (u.id, period) in answered:
                    continue
                with_ai = (str(u.id), period) in used
                h = _hash01(self.cfg.seed + 7, f"{username}-{period}")
                scores = (10, 10, 9, 9, 9, 8, 8, 7, 6, 5) if with_ai else (9, 8, 8, 7, 7, 7, 6, 6, 5, 4)
                nps = scores[int(h * len(scores))]
                items.append(SurveyItem(user_id=u.id, username=u.username, role=u.role, period=period, at=at, nps=nps,
                                        satisfaction=min(5, max(1, round(nps / 2))), comment=None))
        if items:
            self.clock.at = max(i.at for i in items)
            rep.surveys += self.svc.feedback.record_surveys_many(items)

    @staticmethod
    def _ai_users_by_month(s: Any) -> set[tuple[str, str]]:
        rows = s.execute(select(Application.officer_id, Application.applied_at)
                         .where(Application.source == SOURCE, Application.ai_visible.is_(True))).all()
        return {(str(uid), f"{at:%Y-%m}") for uid, at in rows}

    def _outcomes(self, df: pd.DataFrame, draws: _Draws, users: dict[str, UserInfo], rep: SimReport) -> None:
        """Approved loans are funded; defaults by the ground truth, observed months later."""
        as_of = self.cfg.outcomes_as_of
        with self.svc.db.read() as s:
            final = pd.DataFrame(s.execute(
                select(Application.external_id, Decision.outcome, Decision.decided_at)
                .join(Decision, Decision.application_id == Application.id)
                .where(Application.source == SOURCE, Decision.status == "final")).all(),
                columns=["application_id", "outcome", "decided_at"])
        if final.empty:
            return
        frame = df[["application_id", "default"]].merge(final, on="application_id")
        pos = df.reset_index().set_index("application_id").loc[frame["application_id"], "index"].to_numpy()
        approved = frame["outcome"].to_numpy() == "approve"
        funded = approved & (draws.funded[pos] < self.cfg.funded_share)
        months_to_default = 2.0 + draws.gamma[pos]
        decided = pd.to_datetime(frame["decided_at"], utc=True)
        default_at = decided + pd.to_timedelta(months_to_default * 30.44, unit="D")
        as_of_ts = pd.Timestamp(as_of)
        observed_default = funded & (frame["default"].to_numpy() == 1) & (default_at <= as_of_ts).to_numpy()
        obs = np.where(observed_default, default_at, as_of_ts)
        obs = np.maximum(pd.to_datetime(obs, utc=True), decided + pd.Timedelta(days=1))
        keep = decided < as_of_ts
        out = pd.DataFrame({"application_id": frame["application_id"][keep],
                            "funded": funded[keep.to_numpy()],
                            "default_flag": np.where(funded, observed_default, None)[keep.to_numpy()],
                            "observation_date": pd.to_datetime(obs[keep.to_numpy()], utc=True)})
        self.clock.at = as_of_ts.to_pydatetime() + timedelta(days=1)
        report = self.svc.outcomes.import_frame(out, actor="simulator", role="system", source_name="seed-demo")
        rep.outcomes += report.accepted
        if report.rejected:
            rep.notes.append(f"{len(report.rejected)} outcome rows rejected (first: {report.rejected[0]})")


class _Draws:
    """Per-application random numbers, fixed by the seed and the row (not by how the run is cut)."""

    def __init__(self, seed: int, n: int) -> None:
        rng = np.random.default_rng([seed, 2])
        self.officer = rng.random(n)
        self.noise = rng.standard_normal(n)
        self.time = rng.standard_normal(n)
        self.time2 = rng.standard_normal(n)
        self.pick = rng.random(n)
        self.pick2 = rng.random(n)
        self.override = rng.random(n)
        self.review = rng.random(n)
        self.llm = rng.random(n)
        self.cache = rng.random(n)
        self.funded = rng.random(n)
        self.gamma = rng.gamma(2.0, 3.0, n)  # months from funding to a default, beyond the first two


def _generate(n: int, *, seed: int, start: datetime, end: datetime,
              incident: tuple[datetime, datetime] | None) -> pd.DataFrame:
    from backend.training.synthetic import generate

    months = max(1, round((end - start).days / 30.44))
    kw: dict[str, Any] = {}
    if incident is not None:
        kw = {"scenario": "data_quality_incident", "scenario_start": incident[0], "scenario_end": incident[1]}
    df = generate(n, seed=seed, start=start, months=months, id_prefix=f"{ID_PREFIX}{seed}-", **kw)
    return df[df["applied_at"] < pd.Timestamp(end)]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts with None for missing (faster than ``DataFrame.to_dict`` on object columns)."""
    cols = list(frame.columns)
    values = frame.to_numpy(dtype=object)
    values[pd.isna(values)] = None
    return [dict(zip(cols, row, strict=True)) for row in values]


def _hash01(seed: int, key: str) -> float:
    import hashlib

    return int.from_bytes(hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest(), "big") / 2.0**64


def _user(s: Submitter) -> UserInfo:
    assert s.user_id is not None
    return UserInfo(s.user_id, s.username, s.username, s.role, s.senior)


__all__ = ["OperationsSimulator", "SimConfig", "SimReport"]

