"""The production checklist's items, each judged from one piece of the system's own records.

Pure functions: each takes what the service read (a manifest, an evidence row, a fairness reading, a
sign-off) and the moment of evaluation, and returns an :class:`Item`: green or red, the evidence in
words, its date, the command that produced it and the command that refreshes it. An item is red when
its evidence is missing, failed, misses a target, or is older than its window (reason ``stale``:
present but too old to prove anything today).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from backend.compliance import Evidence, SignOffRecord
from backend.operations.config import OpsSettings
from backend.operations.readiness_config import SEVERITIES, ReadinessSettings
from backend.operations.signoffs import AREA_LABELS, describe

GREEN, RED = "green", "red"
MISSING, STALE, FAILED, MISMATCH = "missing", "stale", "failed", "version mismatch"

REFRESH = {  # the command that produces fresh evidence for each item
    "holdout": "creditrisk retrain (or creditrisk train), then creditrisk models canary propose / approve",
    "fairness": "creditrisk monitor run",
    "load_test": "python bench/api_load.py --record-to-url DATABASE_URL (the console's database)",
    "security_scan": "creditrisk security scan",
    "backup_drill": "creditrisk drill (restores the newest backup; creditrisk backup takes one)",
    "rollback": "creditrisk readiness rollback-drill",
}
ROLLBACK_DOC = ("procedure: creditrisk models rollback [--to VERSION], or the Model registry page "
                "(README: Retraining, canary promotion and rollback)")
TITLES = {
    "holdout": "Champion: held-out accuracy and gates",
    "fairness": "Fairness audit passed",
    "load_test": "Load test",
    "security_scan": "Security scan",
    "backup_drill": "Backup restore drill (RTO / RPO)",
    "rollback": "Rollback tested and documented",
}
_SECRET_IN_URL = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]+):[^@\s]+@", re.I)


@dataclass(frozen=True)
class Item:
    key: str
    title: str
    status: str  # green | red
    evidence: str
    date: datetime | None
    command: str  # what produced the evidence
    refresh: str  # what to run for fresh evidence
    reason: str = ""  # red only: missing | stale | failed | version mismatch

    @property
    def green(self) -> bool:
        return self.status == GREEN

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["date"] = self.date.isoformat(timespec="seconds") if self.date else None
        return d


def redact(command: str) -> str:
    """A stored command line with any password in a URL replaced by ``***``."""
    return _SECRET_IN_URL.sub(r"\1:***@", command or "")


def ago(then: datetime, now: datetime) -> str:
    seconds = max(0.0, (now - then).total_seconds())
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 2 * 86_400:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86_400:.0f} days ago"


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _stale(then: datetime, now: datetime, days: float) -> str | None:
    if now - then > timedelta(days=days):
        return f"stale: recorded {ago(then, now)}, older than the {days:g}-day window"
    return None


def _item(key: str, problems: Sequence[str], facts: str, date: datetime | None, command: str, refresh: str,
          *, reason: str = FAILED, stale: str | None = None, title: str | None = None) -> Item:
    title = title or TITLES[key]
    if problems:
        return Item(key, title, RED, f"{facts}. Problems: {'; '.join(problems)}", date, command, refresh, reason)
    if stale:
        return Item(key, title, RED, f"{facts}. {stale}", date, command, refresh, STALE)
    return Item(key, title, GREEN, facts, date, command, refresh)


def missing(key: str, text: str, refresh: str, title: str | None = None) -> Item:
    return Item(key, title or TITLES[key], RED, text, None, "", refresh, MISSING)


# -- (a) the champion's held-out metrics and gates --------------------------------------------------
def check_holdout(version: str | None, manifest: Mapping[str, Any] | None, problem: str | None,
                  promotion: Mapping[str, Any] | None, cfg: ReadinessSettings) -> Item:
    """``problem``: why the manifest or artifacts could not be read or verified (None: intact);
    ``promotion``: the registry event that made ``version`` champion (its ``forced`` flag)."""
    if not version:
        return missing("holdout", "No champion model: nothing to release yet.",
                       "creditrisk train, then creditrisk models promote VERSION")
    if manifest is None:
        return _item("holdout", [problem or "manifest unreadable"], f"Champion {version}", None, "",
                     REFRESH["holdout"])
    m = manifest.get("metrics") or {}
    rows = ((manifest.get("evaluation") or {}).get("split") or {}).get("test_rows")
    auc = _num(m.get("auc"))
    figs = [f"held-out AUC {auc:.3f} (target >= {cfg.min_holdout_auc:.2f})" if auc is not None else "no held-out AUC"]
    figs += [f"{label} {_num(m.get(k)):.3f}" for k, label in (("ks", "KS"), ("balanced_accuracy", "balanced accuracy"),
                                                            ("brier", "Brier")) if _num(m.get(k)) is not None]
    gates = list(manifest.get("gates") or [])
    failed = [g for g in gates if not g.get("passed")]
    facts = (f"Champion {version}: {', '.join(figs)}" + (f" on {int(rows):,} held-out rows" if rows else "")
             + f"; gates {len(gates) - len(failed)}/{len(gates)} passed at registration")
    problems = []
    if auc is None or auc < cfg.min_holdout_auc:
        problems.append(f"held-out AUC below {cfg.min_holdout_auc:.2f}" if auc is not None else "no held-out AUC")
    problems += [f"gate {g.get('name')} failed ({g.get('detail', '')})" for g in failed]
    if promotion and promotion.get("forced"):  # only with a risk manager's written override (the event names them)
        by = promotion.get("override_by")
        problems.append("promoted over a failed gate" + (f" under {by}'s written override" if by else ""))
    if problem:
        problems.append(problem)
    created = manifest.get("created_at")
    date = datetime.fromisoformat(created) if isinstance(created, str) else None
    source = (manifest.get("lineage") or {}).get("source")
    command = "creditrisk retrain" if source == "book" else "creditrisk train"
    return _item("holdout", problems, facts, date, command, REFRESH["holdout"])


# -- (b) the last fairness audit ---------------------------------------------------------------------
def check_fairness(reading: tuple[float, str, Mapping[str, Any]] | None, now: datetime, cfg: ReadinessSettings,
                   threshold: float) -> Item:
    refresh = REFRESH["fairness"]
    if reading is None:
        return missing("fairness", "No fairness audit with a judged group yet (monitor snapshots of kind fairness).",
                       refresh)
    value, period, d = reading
    when = d.get("computed_at")
    date = datetime.fromisoformat(when) if isinstance(when, str) else None
    who = f"{d.get('attribute', '?')} {d.get('group', '?')} vs {d.get('reference', '?')}"
    facts = (f"Lowest disparate impact {value:.2f} at the final decision ({who}) in {period}, "
             f"screening threshold {threshold:.2f}")
    problems = [] if value >= threshold else [f"{value:.2f} is below the {threshold:.2f} threshold"]
    stale = _stale(date, now, cfg.fairness_max_age_days) if date else "stale: no computation time recorded"
    return _item("fairness", problems, facts, date, refresh, refresh, stale=stale)


# -- (c)-(e) evidence rows written by the commands that proved them -----------------------------------
def check_evidence(key: str, ev: Evidence | None, last_ok: Evidence | None, now: datetime, max_age_days: float,
                   judge: Callable[[Mapping[str, Any]], tuple[str, list[str]]]) -> Item:
    """An ``ops_evidence`` item: the newest row decides (a failed newest run is red even after a passing one)."""
    if ev is None:
        return missing(key, f"No {key.replace('_', ' ')} recorded yet.", REFRESH[key])
    facts, problems = judge(ev.payload)
    if not ev.ok:
        problems = [f"the run reported failure ({ev.summary})", *problems]
        if last_ok is not None:
            problems.append(f"last passing run {last_ok.recorded_at:%Y-%m-%d %H:%M} UTC")
    command = redact(ev.command)
    return _item(key, problems, facts or ev.summary, ev.recorded_at, command, REFRESH[key],
                 stale=_stale(ev.recorded_at, now, max_age_days))


def judge_load(p: Mapping[str, Any], cfg: ReadinessSettings) -> tuple[str, list[str]]:
    # ``rate``: the fixed rate of the latency phase (bench/api_load.py; ``rps`` there is the saturation
    # throughput); a payload without ``rate`` gives the fixed rate as ``rps``
    rate = _num(p.get("rate")) if p.get("rate") is not None else _num(p.get("rps"))
    p50, p99 = _num(p.get("p50_ms")), _num(p.get("p99_ms"))
    errors, ratio, down = _num(p.get("errors")), _num(p.get("ratio_vs_trivial")), _num(p.get("redis_down_p99_ms"))
    up = _num(p.get("redis_up_p99_ms")) if p.get("redis_up_p99_ms") is not None else p99
    facts = [f"p99 {p99:.1f} ms" if p99 is not None else "p99 not recorded",
             *([f"p50 {p50:.1f} ms"] if p50 is not None else []),
             f"at a fixed {rate:g} requests/s" if rate is not None else "rate not recorded",
             f"{errors:g} errors" if errors is not None else "errors not recorded",
             f"throughput {ratio:.2f}x the trivial endpoint" if ratio is not None else "throughput ratio not recorded",
             f"Redis down p99 {down:.1f} ms" if down is not None else "Redis-down run not recorded"]
    problems = ["a quick smoke run (its figures are not meaningful)"] if p.get("quick") else []
    if rate is None or rate < cfg.load_rps:
        problems.append(f"not run at the target fixed rate of {cfg.load_rps:g} requests/s")
    if p99 is None or p99 > cfg.load_p99_ms:
        problems.append(f"p99 not within {cfg.load_p99_ms:g} ms")
    if errors is None or errors > cfg.load_max_errors:
        problems.append(f"more than {cfg.load_max_errors} errors (or not recorded)")
    if ratio is None or ratio < cfg.load_min_ratio:
        problems.append(f"throughput below {cfg.load_min_ratio:g}x the trivial endpoint (or not recorded)")
    if down is not None and up is not None and down - up > cfg.load_redis_down_extra_ms:
        problems.append(f"p99 with Redis down more than {cfg.load_redis_down_extra_ms:g} ms above")
    return "Load test: " + ", ".join(facts), problems


def _count(v: Any) -> int:
    return len(v) if isinstance(v, list | tuple) else int(_num(v) or 0)


def _scan_counts(findings: Any) -> tuple[dict[str, int], Mapping[str, Any] | None]:
    """Findings by severity (flat, nested under ``code``, or a list of findings with a ``severity``) and the
    dependency-audit block (``dependencies``: fixable / no_fix), as ``creditrisk security scan`` records them."""
    counts: dict[str, int] = {}
    deps = None
    items = findings.items() if isinstance(findings, Mapping) else ()
    for key, v in items:
        k = str(key).lower()
        if k in SEVERITIES:
            counts[k] = counts.get(k, 0) + _count(v)
        elif k == "code" and isinstance(v, Mapping):
            for sev, n in v.items():
                counts[str(sev).lower()] = counts.get(str(sev).lower(), 0) + _count(n)
        elif k == "dependencies" and isinstance(v, Mapping):
            deps = v
    if isinstance(findings, list | tuple):
        for f in findings:
            sev = str(f.get("severity", "unknown") if isinstance(f, Mapping) else "unknown").lower()
            counts[sev] = counts.get(sev, 0) + 1
    return counts, deps


def _tool_names(tools: Any) -> list[str]:
    if isinstance(tools, Mapping):
        return [str(k) for k in tools]
    if isinstance(tools, list | tuple):
        return [str(t.get("tool") or t.get("name") or "?") if isinstance(t, Mapping) else str(t) for t in tools]
    return []


def judge_scan(p: Mapping[str, Any], cfg: ReadinessSettings) -> tuple[str, list[str]]:
    raw = p.get("findings")
    if raw is None:  # severities at the top level of the payload
        raw = {k: v for k, v in p.items() if str(k).lower() in SEVERITIES} or None
    counts, deps = _scan_counts(raw)
    names = _tool_names(p.get("tools"))
    order = [s for s in SEVERITIES if s in counts] + sorted(s for s in counts if s not in SEVERITIES)
    facts = ("Security scan" + (f" ({', '.join(names)})" if names else "") + ": "
             + (", ".join(f"{counts[s]} {s}" for s in order) if counts else
                "no findings" if raw is not None else "no findings by severity recorded"))
    if deps is not None:
        facts += (f"; dependencies: {_count(deps.get('fixable'))} known vulnerabilities with a fix, "
                  f"{_count(deps.get('no_fix'))} without")
    blocking = [f"{counts[s]} {s}" for s in cfg.blocking_severities if counts.get(s, 0)]
    problems = [f"{', '.join(blocking)} finding(s)"] if blocking else []
    if raw is None:
        problems.append("findings by severity not recorded")
    return facts, problems


def _secs(v: float) -> str:
    return f"{v:.1f} s" if v < 100 else f"{v:,.0f} s"


def judge_drill(p: Mapping[str, Any], cfg: ReadinessSettings, ops: OpsSettings | None = None) -> tuple[str, list[str]]:
    """The drill against the recovery targets, which are the backup's own settings (``CREDITRISK_OPS__*``)."""
    ops = ops or OpsSettings()
    rto_max, rpo_max = ops.rto_target_seconds, ops.rpo_target_seconds
    rto, rpo, chain = _num(p.get("rto_seconds")), _num(p.get("rpo_seconds")), p.get("chain_ok")
    tables, rows = _num(p.get("tables")), _num(p.get("rows"))
    facts = [f"restore took {_secs(rto)} (RTO target <= {rto_max:,.0f} s)" if rto is not None
             else "restore time not recorded",
             f"newest restorable data {_secs(rpo)} old (RPO target <= {rpo_max:,.0f} s)"
             if rpo is not None else "data age not recorded"]
    if tables is not None or rows is not None:
        facts.append(f"{tables or 0:,.0f} tables / {rows or 0:,.0f} rows verified")
    facts.append("audit chain intact" if chain is True else "audit chain BROKEN" if chain is False
                 else "audit chain not checked")
    if p.get("location"):
        facts.append(f"from {redact(str(p['location']))[:200]}")
    problems = []
    if rto is None or rto > rto_max:
        problems.append(f"RTO not within {rto_max:,.0f} s")
    if rpo is None or rpo > rpo_max:
        problems.append(f"RPO not within {rpo_max:,.0f} s")
    if chain is not True:
        problems.append("the restored audit chain was not verified intact")
    if p.get("counts_ok") is False:
        problems.append("restored row counts did not match the backup")
    return "Restore drill: " + ", ".join(facts), problems


# -- (f)+(g) rollback tested (a real rollback in the registry, or a drill) and documented ---------------
def check_rollback(event: Mapping[str, Any] | None, ev: Evidence | None, last_ok: Evidence | None, now: datetime,
                   cfg: ReadinessSettings) -> Item:
    proofs: list[tuple[datetime, str, str]] = []
    if event is not None:
        at = datetime.fromisoformat(str(event["at"]))
        by = f" by {event['by']}" if event.get("by") else ""
        proofs.append((at, f"Registry rollback {event.get('previous') or '?'} -> {event.get('version')}{by}",
                       "creditrisk models rollback"))
    if last_ok is not None:
        proofs.append((last_ok.recorded_at, f"Rollback drill: {last_ok.summary}", redact(last_ok.command)))
    if ev is not None and not ev.ok and all(ev.recorded_at > p[0] for p in proofs):
        return _item("rollback", [f"the latest rollback drill failed ({ev.summary})"], f"Rollback drill; {ROLLBACK_DOC}",
                     ev.recorded_at, redact(ev.command), REFRESH["rollback"])
    if not proofs:
        return missing("rollback", f"No rollback recorded (neither in the model registry nor a drill); {ROLLBACK_DOC}.",
                       REFRESH["rollback"])
    at, text, command = max(proofs, key=lambda p: p[0])
    return _item("rollback", [], f"{text} on {at:%Y-%m-%d %H:%M} UTC; {ROLLBACK_DOC}", at, command,
                 REFRESH["rollback"], stale=_stale(at, now, cfg.rollback_max_age_days))


# -- (h) named sign-offs for the current champion ------------------------------------------------------
def check_signoff(area: str, version: str | None, current: SignOffRecord | None,
                  others: Sequence[SignOffRecord]) -> Item:
    key, title = f"signoff_{area}", f"Sign-off: {AREA_LABELS[area]}"
    refresh = f"creditrisk signoff add --area {area} --user USERNAME" + (" --counsel NAME" if area == "legal" else "")
    command = f"creditrisk signoff add --area {area} (or the Production readiness page)"
    if not version:
        return missing(key, "No champion model to sign off.", refresh, title)
    if current is not None:
        note = f"; note: {current.note[:200]}" if current.note else ""
        return Item(key, title, GREEN, f"Signed by {describe(current)} for {version}{note}", current.signed_at,
                    command, refresh)
    earlier = [r for r in others if r.active and r.area == area and r.model_version != version]
    if earlier:
        r = earlier[0]
        return Item(key, title, RED, f"Signed by {describe(r)} for {r.model_version}, not for the current champion "
                    f"{version}", r.signed_at, command, refresh, MISMATCH)
    return missing(key, f"No {AREA_LABELS[area]} sign-off for {version}.", refresh, title)
