"""The score page's example applicants, chosen so a newcomer sees the AI at work (issue 20, item 4).

Simulated applicants from the synthetic generator (never real people), each previewed for the signed-in
officer under the rollout phase in force: its arm (:func:`backend.rollout.assign`, the same function the
recording uses, so the preview is what scoring will do) and, for the AI arm, the recommendation (scored
without recording). The list opens with one AI-arm case of each recommendation (approve, deny, manual
review) when the pool has them, then alternates AI and non-AI cases, so the first three include an AI case
whenever this officer can be in the AI arm at all; :func:`arm_sentence` says why an application falls where
it does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backend.domain import Actor
from backend.rollout import PHASE_LABELS, OfficerInfo, Phase, assign

POOL, SHOWN, SEED = 160, 25, 20260101
#: part of the pool drawn from a riskier population (default rate 30%), so denials and reviews are among them
RISKY_POOL, RISKY_RATE = 120, 0.30
RECOMMENDATIONS = ("approve", "deny", "manual_review")


@dataclass(frozen=True)
class Example:
    raw: dict[str, Any]
    arm: str  # ai | control | excluded
    why: str  # the assignment's reason
    recommendation: str | None  # AI arm only (None elsewhere: the officer would not see it)


def arm_sentence(phase: Phase, arm: str, why: str) -> str:
    """Why an application is (or is not) in the AI arm, in words an officer can act on."""
    name = f"{PHASE_LABELS.get(phase.phase, phase.phase)} (rollout version {phase.version})"
    if phase.phase == "shadow":
        return (f"Shadow mode ({name}): the model scores every application silently and nobody sees it yet; "
                "decide as usual.")
    if arm == "ai":
        extra = f" ({why})" if why.startswith("hash") else ""
        return (f"AI arm: under {name}, {phase.ai_share:.0%} of eligible applicants are assigned to the AI arm by a "
                f"fixed hash of their applicant id{extra}; you will see the recommendation, reasons and explanation.")
    if arm == "excluded":
        return (f"Outside the experiment: {why} under {name}, so it goes through the usual manual process "
                "without the AI. Applications within the phase's limits can be in the AI arm.")
    return (f"Control arm: under {name} the applicant's fixed hash puts it among the {1 - phase.ai_share:.0%} "
            f"decided without the AI ({why}), so the comparison with the AI arm stays fair. The model scored it "
            "silently. Examples marked 'AI arm' show the AI at work.")


def example_applications(scoring: Any, officer: Actor, *, shown: int = SHOWN, pool: int = POOL) -> list[Example]:
    """``shown`` examples for ``officer`` under the phase in force, ordered as the module docstring says."""
    from backend.training import generate

    phase = scoring.phase_at(scoring.clock.now())
    frames = [generate(pool, seed=SEED, months=2, id_prefix="example-"),
              generate(RISKY_POOL, seed=SEED + 1, months=2, id_prefix="example-r-", default_rate=RISKY_RATE)]
    rows = [{k: None if isinstance(v, float) and v != v else v for k, v in r.items()}  # NaN: not provided
            for f in frames for r in f.drop(columns=["default", "pd_true"]).to_dict("records")]
    info = OfficerInfo(officer.username, officer.role, bool(officer.senior))
    out: list[Example] = []
    found: set[str] = set()
    scored = 0
    for raw in rows:
        a = assign(phase, applicant_id=str(raw.get("applicant_id")), officer=info,
                   loan_amount=float(raw.get("loan_amount") or 0.0))
        rec = None
        if a.ai_visible:
            if found >= set(RECOMMENDATIONS) and scored > shown // 2 + 3:
                continue  # enough AI cases scored (each is a model call)
            try:
                rec = scoring.score(raw, submitter=officer, persist=False).recommendation
            except Exception:  # noqa: BLE001, S112 - an example the model refuses is simply not shown
                continue
            found.add(rec)
            scored += 1
        out.append(Example(raw, a.arm, a.reason, rec))
    return order(out, shown)


def order(examples: list[Example], shown: int) -> list[Example]:
    """One AI-arm case of each recommendation first, then AI and non-AI cases alternately (the riskier
    part of the pool, at the end of ``examples``, only where it is needed: its first cases are mixed in)."""
    first: list[Example] = []
    for rec in RECOMMENDATIONS:
        hit = next((e for e in examples if e.arm == "ai" and e.recommendation == rec and e not in first), None)
        if hit is not None:
            first.append(hit)
    ai = [e for e in examples if e.arm == "ai" and e not in first]
    rest = [e for e in examples if e.arm != "ai"]
    mixed: list[Example] = []
    while (ai or rest) and len(first) + len(mixed) < shown:
        for bucket in (rest, ai):
            if bucket and len(first) + len(mixed) < shown:
                mixed.append(bucket.pop(0))
    return [*first, *mixed][:shown]
