"""The production-readiness checklist (`creditrisk readiness`, the Production readiness page).

Evaluates the seed's checklist from the system's own records, today:

(a) the champion's held-out metrics and gates (its manifest, artifacts verified);
(b) the last fairness audit (monthly fairness snapshots, lowest disparate impact vs the threshold);
(c) the last load test, (d) the last security scan, (e) the last backup restore drill (``ops_evidence``
    rows written by the commands that proved them);
(f) rollback tested (a rollback in the model registry, or a rollback drill) and documented;
(h) named sign-offs by product, engineering, compliance and legal for the current champion.

Each item is green or red (red: missing, failed, below target, stale, or signed for another version);
the release is ready only when every item is green. Windows and targets: ``CREDITRISK_READINESS__*``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from backend.compliance import KINDS, Evidence, OpsRepository
from backend.operations import readiness_checks as rc
from backend.operations.config import OpsSettings
from backend.operations.readiness_config import ReadinessSettings
from backend.operations.signoffs import AREAS
from backend.platform.db.engine import Database
from backend.platform.ports import Clock

VERDICT_READY = "Ready for production: every item of the checklist is green."
VERDICT_NOT_READY = "Not ready for production: {n} of {total} items are red ({titles})."
FairnessReader = Callable[[], "tuple[float, str, dict[str, Any]] | None"]


@dataclass(frozen=True)
class Report:
    at: datetime
    champion: str | None
    items: tuple[rc.Item, ...]

    @property
    def ready(self) -> bool:
        return bool(self.items) and all(i.green for i in self.items)

    @property
    def red(self) -> list[rc.Item]:
        return [i for i in self.items if not i.green]

    @property
    def verdict(self) -> str:
        if self.ready:
            return VERDICT_READY
        return VERDICT_NOT_READY.format(n=len(self.red), total=len(self.items),
                                        titles=", ".join(i.title for i in self.red))

    def item(self, key: str) -> rc.Item:
        return next(i for i in self.items if i.key == key)

    def to_dict(self) -> dict[str, Any]:
        return {"evaluated_at": self.at.isoformat(timespec="seconds"), "champion": self.champion,
                "ready": self.ready, "verdict": self.verdict, "items": [i.to_dict() for i in self.items]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self) -> str:
        def cell(text: str) -> str:
            return " ".join(str(text).split()).replace("|", "\\|")

        lines = [f"# Production readiness, {self.at:%Y-%m-%d %H:%M} UTC", "",
                 f"Champion: {self.champion or 'none'}", "", f"**{self.verdict}**", "",
                 "| status | item | evidence | date (UTC) | produced by | refresh with |", "|---|---|---|---|---|---|"]
        for i in self.items:
            status = i.status.upper() + (f" ({i.reason})" if i.reason else "")
            date = f"{i.date:%Y-%m-%d %H:%M}" if i.date else ""
            lines.append("| " + " | ".join(cell(x) for x in (status, i.title, i.evidence, date, i.command, i.refresh))
                         + " |")
        return "\n".join(lines) + "\n"


class ReadinessService:
    def __init__(self, db: Database, clock: Clock, settings: ReadinessSettings, *, fairness_threshold: float,
                 registry: Callable[[], Any], fairness: FairnessReader, ops: OpsSettings | None = None) -> None:
        """``registry``: returns the model registry (``aliases``, ``manifest``, ``verify``);
        ``fairness``: the latest monthly fairness reading ``(lowest DI, period, details)`` or None."""
        self.db = db
        self.clock = clock
        self.cfg = settings
        self.threshold = fairness_threshold
        self.registry = registry
        self.fairness = fairness
        self.ops = ops or OpsSettings()  # the recovery targets the drill is judged against

    # -- the checklist -------------------------------------------------------------------------------
    def evaluate(self) -> Report:
        now = self.clock.now()
        version, manifest, problem, promotion, rollback = self._champion()
        with self.db.read() as s:
            repo = OpsRepository(s)
            ev = {k: (repo.latest(k), repo.latest(k, ok=True))
                  for k in ("load_test", "security_scan", "backup_drill", "rollback_test")}
            signoffs = repo.signoff_records(active_only=True)
        cfg = self.cfg
        items = [
            rc.check_holdout(version, manifest, problem, promotion, cfg),
            rc.check_fairness(self.fairness(), now, cfg, self.threshold),
            rc.check_evidence("load_test", *ev["load_test"], now, cfg.load_test_max_age_days,
                              lambda p: rc.judge_load(p, cfg)),
            rc.check_evidence("security_scan", *ev["security_scan"], now, cfg.security_scan_max_age_days,
                              lambda p: rc.judge_scan(p, cfg)),
            rc.check_evidence("backup_drill", *ev["backup_drill"], now, cfg.backup_drill_max_age_days,
                              lambda p: rc.judge_drill(p, cfg, self.ops)),
            rc.check_rollback(rollback, *ev["rollback_test"], now, cfg),
        ]
        for area in AREAS:
            current = next((r for r in signoffs if r.area == area and r.model_version == version), None)
            items.append(rc.check_signoff(area, version, current, signoffs))
        return Report(now, version, tuple(items))

    def _champion(self) -> tuple[str | None, dict[str, Any] | None, str | None, Mapping[str, Any] | None,
                                 Mapping[str, Any] | None]:
        """(champion version, manifest, what is wrong with it, the event that promoted it, newest rollback)."""
        from backend.models import RegistryError

        try:
            reg = self.registry()
            doc = reg.aliases()
        except (RegistryError, OSError, ValueError) as exc:
            return None, None, f"the model registry cannot be read: {exc}", None, None
        version = doc.get("champion")
        events = list(doc.get("events") or [])
        rollback = next((e for e in reversed(events) if e.get("action") == "rollback"), None)
        promotion = next((e for e in reversed(events) if e.get("action") == "promote"
                          and e.get("version") == version), None)
        if not version:
            return None, None, None, None, rollback
        manifest, problem = None, None
        try:
            manifest = reg.manifest(version)
            errors = reg.verify(version)
            if errors:
                problem = "artifact integrity: " + "; ".join(f"{f}: {e}" for f, e in errors.items())[:300]
        except (RegistryError, OSError, ValueError, KeyError) as exc:
            problem = f"the champion cannot be read: {exc}"[:300]
        return version, manifest, problem, promotion, rollback

    # -- what the page shows beside the checklist ------------------------------------------------------
    def history(self, per_kind: int = 5) -> list[Evidence]:
        """The newest ``per_kind`` evidence rows of each kind, newest first within a kind (passwords in
        URLs of the stored command lines masked)."""
        with self.db.read() as s:
            repo = OpsRepository(s)
            rows = [e for k in KINDS for e in repo.history(k, limit=per_kind)]
        return [replace(e, command=rc.redact(e.command)) for e in rows]
