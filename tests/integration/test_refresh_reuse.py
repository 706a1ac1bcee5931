"""The verified reuse behind a quick "Run checks now" (issue 20, item 7), on the simulated history (SQLite and
PostgreSQL): a refresh that reuses rows or counts stores exactly what a fresh read of the same records stores,
and any change the summaries can see (an outcome updated in place, a decision approved, a new application,
an earlier cut-off) makes it read again: the changed month only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, select, update

from backend.monitoring import fairness_queries as fq
from backend.monitoring import performance_queries as pq
from backend.monitoring.book_state import RowMemo, book_state
from backend.monitoring.fairness import FairnessService
from backend.monitoring.performance import PerformanceService
from backend.platform.db.tables_book import Application, Decision, Outcome

LATE = datetime(2026, 11, 15, tzinfo=UTC)  # after every record of the simulated history (outcomes to 2026-10-31)
LATER = LATE + timedelta(days=3)


class Spy:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> None:
        self.calls = 0
        real = getattr(module, name)

        def spy(*a: object, **kw: object) -> object:
            self.calls += 1
            return real(*a, **kw)
        monkeypatch.setattr(module, name, spy)


def _fairness(svc) -> dict:  # noqa: ANN001
    return {(s.granularity, s.period): (s.window_start, s.window_end, s.n, s.value, s.payload)
            for s in svc.fairness.snapshots()}


def _performance(svc) -> dict:  # noqa: ANN001
    return {s.period: (s.window_start, s.window_end, s.n, s.value, s.payload) for s in svc.performance.snapshots()}


def _fresh(svc, kind: str, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN202
    """A service of the same kind with nothing remembered that reads every month (the reads the stored
    snapshots kept are not reused either): the truth a reusing refresh is compared with."""
    if kind == "fairness":
        monkeypatch.setattr(fq, "stored_cells", lambda *a: None)
        return FairnessService(svc.db, svc.clock, svc.settings.monitoring)
    monkeypatch.setattr(PerformanceService, "_stored", lambda *a: None)
    return PerformanceService(svc.db, svc.clock, svc.settings.monitoring)


def _without_reads(snaps: dict) -> dict:  # the figures, without what each snapshot kept of its read
    return {k: (*v[:4], {pk: pv for pk, pv in v[4].items() if pk != "read"}) for k, v in snaps.items()}


@pytest.mark.parametrize(("kind", "module", "reader", "read"), [
    ("fairness", fq, "month_cells", _fairness), ("performance", pq, "vintage_rows", _performance)])
def test_unchanged_book_reuses_rows_and_stores_what_a_fresh_read_stores(sim_services, monkeypatch, kind, module,
                                                                        reader, read):
    svc = getattr(sim_services, kind)
    svc.refresh(until=LATE)
    spy = Spy(monkeypatch, module, reader)
    svc.refresh(until=LATER)  # nothing changed, nothing in the book is as recent as either cut-off
    assert spy.calls == 0
    reused = read(sim_services)
    assert reused and all(v[1] <= LATER for v in reused.values())
    fresh = _fresh(sim_services, kind, monkeypatch)
    fresh.refresh(until=LATER)
    assert spy.calls > 0
    assert read(sim_services) == reused  # every snapshot, window, count and figure identical


def _diff(a: object, b: object, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str) for d in _diff(a.get(k), b.get(k), f"{path}/{k}")]
    if isinstance(a, tuple | list) and isinstance(b, tuple | list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def _flip_one_outcome(svc) -> None:  # noqa: ANN001 - an import updating a stored outcome in place
    with svc.db.transaction() as s:
        o = s.execute(select(Outcome).where(Outcome.funded.is_(True), Outcome.defaulted.is_(False))
                      .order_by(Outcome.id).limit(1)).scalar_one()
        s.execute(update(Outcome).where(Outcome.id == o.id).values(defaulted=True))


def _approve_one_pending(svc) -> None:  # noqa: ANN001 - a four-eyes review changes a row's status in place
    with svc.db.transaction() as s:
        d = s.execute(select(Decision).where(Decision.status == "final", Decision.outcome == "approve")
                      .order_by(Decision.id).limit(1)).scalar_one()  # an approval: every summary counts it
        s.execute(update(Decision).where(Decision.id == d.id).values(outcome="deny", status="pending_approval"))


def _new_application(svc) -> None:  # noqa: ANN001 - one more application in an early month (a late arrival)
    with svc.db.transaction() as s:
        a = s.execute(select(Application).order_by(Application.applied_at).limit(1)).scalar_one()
        row = {c.key: getattr(a, c.key) for c in inspect(Application).column_attrs}
        s.add(Application(**{**row, "id": uuid.uuid4(), "external_id": f"{a.external_id}-late",
                             "applied_at": a.applied_at + timedelta(days=1)}))


@pytest.mark.parametrize("change", [_flip_one_outcome, _approve_one_pending, _new_application])
@pytest.mark.parametrize(("kind", "module", "reader", "read"), [
    ("fairness", fq, "month_cells", _fairness), ("performance", pq, "vintage_rows", _performance)])
def test_any_change_reads_again_and_matches_a_fresh_read(sim_services, monkeypatch, kind, module, reader, read,
                                                         change):
    svc = getattr(sim_services, kind)
    svc.refresh(until=LATE)
    before = read(sim_services)
    change(sim_services)
    spy = Spy(monkeypatch, module, reader)
    svc.refresh(until=LATE)
    assert spy.calls == 1  # the changed month, and only it, was read again
    after = read(sim_services)
    _fresh(sim_services, kind, monkeypatch).refresh(until=LATE)
    fresh = read(sim_services)
    assert fresh == after, _diff(fresh, after)
    assert after != before


@pytest.mark.parametrize(("kind", "module", "reader"), [("fairness", fq, "month_cells"),
                                                         ("performance", pq, "vintage_rows")])
def test_a_cut_before_the_newest_record_is_never_served_from_memory(sim_services, monkeypatch, kind, module, reader):
    svc = getattr(sim_services, kind)
    svc.refresh(until=LATE)
    spy = Spy(monkeypatch, module, reader)
    svc.refresh(until=datetime(2026, 1, 10, tzinfo=UTC))  # the records after it must not be counted
    assert spy.calls > 0


def test_row_memo_holds_only_for_the_same_token_and_cuts_after_the_newest_record(sim_services):
    with sim_services.db.read() as s:
        state = book_state(s)
    assert state.latest is not None and state.months
    memo, reads = RowMemo(), []
    assert memo.rows("k", "t1", lambda: reads.append(1) or "rows") == "rows"
    assert memo.rows("k", "t1", lambda: "other") == "rows"
    assert memo.rows("k", "t2", lambda: "changed") == "changed"
    assert memo.rows("k", None, lambda: "never written") == "never written"
    assert memo.rows("k", "t2", lambda: "again") == "changed"  # a read under no token is not kept
    # a read that depends on the cut-off: only while nothing was as recent as either cut
    assert memo.rows("c", "t1", lambda: "cut", until=LATE, latest=state.latest) == "cut"
    assert memo.rows("c", "t1", lambda: "other", until=LATER, latest=state.latest) == "cut"
    assert memo.rows("c", "t1", lambda: "at the newest record", until=state.latest, latest=state.latest) \
        == "at the newest record"
    assert memo.rows("c", "t1", lambda: "uncut") == "uncut"  # a read without a cut is not one with


def _comparison(svc) -> dict:  # noqa: ANN001 - the stored phase comparison, without the time it was counted
    from backend.analytics.experiments import SNAPSHOT_GRANULARITY, SNAPSHOT_KIND
    from backend.monitoring.snapshot_queries import SnapshotRepository

    with svc.db.read() as s:
        snap = SnapshotRepository(s).latest(SNAPSHOT_KIND, granularity=SNAPSHOT_GRANULARITY)
    assert snap is not None
    return {k: v for k, v in snap.payload["data"].items() if k != "counted_at"} | {"fp": snap.payload["fingerprint"]}


@pytest.mark.parametrize("change", [None, _flip_one_outcome, _approve_one_pending, _new_application])
def test_phase_comparison_recounts_only_changed_records_and_stores_the_same_count(sim_services, monkeypatch, change):
    exp = sim_services.experiments
    exp.refresh()
    if change is not None:
        change(sim_services)
    computed = Spy(monkeypatch, exp, "_compute")
    n = exp.refresh()
    assert computed.calls == (0 if change is None else 1)
    reused = _comparison(sim_services)
    exp._memo = None  # nothing remembered in the process either: the stored snapshot's fingerprint is checked
    assert exp.refresh() == n and computed.calls == (0 if change is None else 1)
    assert exp.refresh(force=True) == n and computed.calls == (1 if change is None else 2)
    assert _comparison(sim_services) == reused  # a full recount of the same records stores the same figures


@pytest.mark.parametrize("change", [_flip_one_outcome, _approve_one_pending, _new_application])
def test_phase_comparison_reads_again_only_the_changed_month(sim_services, monkeypatch, change):
    from backend.analytics import experiments_queries as eq

    exp = sim_services.experiments
    exp.refresh()
    change(sim_services)
    weekly, times = Spy(monkeypatch, eq, "weekly_counts"), Spy(monkeypatch, eq, "decision_times")
    n = exp.refresh()
    assert (weekly.calls, times.calls) == (1, 1)  # one month's counts and times read again; the others kept
    kept = _comparison(sim_services)
    exp._memo, exp._months = None, type(exp._months)()  # nothing remembered: every month read
    exp._months.kept = lambda s, month: None  # type: ignore[method-assign] - not even the months the last count kept
    assert exp.refresh(force=True) == n and weekly.calls > 2
    assert _comparison(sim_services) == kept


def test_latency_by_phase_is_the_per_phase_figure(sim_services):
    from backend.analytics.latency import end_to_end_p95, end_to_end_p95_by_phase

    phases = ["shadow", "pilot", "scaled", "full", "no such phase"]
    with sim_services.db.read() as s:
        together = end_to_end_p95_by_phase(s, phases, arm="ai")
        for p in phases:
            assert together[p] == end_to_end_p95(s, phase=p, arm="ai")
        assert together["pilot"].n > 0 and together["no such phase"].n == 0


@pytest.mark.parametrize("change", [None, _flip_one_outcome, _approve_one_pending, _new_application])
@pytest.mark.parametrize(("kind", "module", "reader", "read"), [
    ("fairness", fq, "month_cells", _fairness), ("performance", pq, "vintage_rows", _performance)])
def test_a_new_process_reads_only_the_months_changed_since_the_stored_refresh(sim_services, monkeypatch, kind, module,
                                                                               reader, read, change):
    """``monitor run`` twice: the second process has nothing in memory; the snapshots keep what their months
    were read under, so only changed months are read, and what it stores is what reading everything stores."""
    getattr(sim_services, kind).refresh(until=LATE)
    if change is not None:
        change(sim_services)
    cls = FairnessService if kind == "fairness" else PerformanceService
    spy, summaries = Spy(monkeypatch, module, reader), Spy(monkeypatch, cls, "summarize")
    cls(sim_services.db, sim_services.clock, sim_services.settings.monitoring).refresh(until=LATER)
    assert spy.calls == (0 if change is None else 1)  # the month holding ``until`` was never written: not read
    if change is None:  # the kept cells hash as the read ones did: no period is summarised again
        assert summaries.calls == 0
    reused = read(sim_services)
    _fresh(sim_services, kind, monkeypatch).refresh(until=LATER)
    assert spy.calls > 2
    fresh = read(sim_services)
    assert _without_reads(fresh) == _without_reads(reused), _diff(_without_reads(fresh), _without_reads(reused))


@pytest.mark.parametrize("change", [None, _flip_one_outcome, _approve_one_pending, _new_application])
def test_phase_comparison_in_a_new_process_reads_only_months_changed_since_they_were_kept(sim_services, monkeypatch,
                                                                                          change):
    """After a restart (nothing in memory) the months kept by the last count are reused while their tokens are
    unchanged; the comparison stored is the one a count of every month from the book stores."""
    from backend.analytics import experiments_queries as eq
    from backend.analytics.experiments_months import MonthReads

    exp = sim_services.experiments
    exp.refresh()
    if change is not None:
        change(sim_services)
    exp._memo, exp._months = None, MonthReads()  # a new process
    weekly = Spy(monkeypatch, eq, "weekly_counts")
    n = exp.refresh(force=True)
    assert weekly.calls == (0 if change is None else 1)
    kept = _comparison(sim_services)
    exp._memo, exp._months = None, MonthReads()
    exp._months.kept = lambda s, month: None  # type: ignore[method-assign] - every month from the book
    assert exp.refresh(force=True) == n and weekly.calls > 2
    assert _comparison(sim_services) == kept
