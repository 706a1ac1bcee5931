"""The simulated history's story, computed from its records (the figures quoted in the README).

Usage: CREDITRISK_DATA_DIR=DIR python bench/sim_story.py [VOLUME [SEED]]
(after `creditrisk seed-demo` into DIR with the default options, or with --volume VOLUME --seed SEED)

Prints shadow agreement (officers' own decisions vs the model's risk class), AI-arm override rates,
median time from application to decision per arm, and funded loans' observed default rate per arm,
with their ground-truth default probability (the generator is rerun with the same options).
"""

from __future__ import annotations

import sys

import pandas as pd
from sqlalchemy import select

from backend.container.settings import load_settings
from backend.platform.db.engine import Database, make_engine
from backend.platform.db.tables_book import Application, Decision, Outcome, Prediction


def main() -> None:
    db = Database(make_engine(load_settings().database_url))
    with db.read() as s:
        rows = s.execute(
            select(Application.external_id, Application.arm, Application.phase, Application.ai_visible, Application.applied_at,
                   Prediction.risk_class, Prediction.model_version, Decision.outcome, Decision.is_override,
                   Decision.decided_at, Outcome.funded, Outcome.defaulted)
            .join(Prediction, Prediction.application_id == Application.id)
            .join(Decision, (Decision.application_id == Application.id) & (Decision.status == "final"))
            .outerjoin(Outcome, Outcome.application_id == Application.id)
            .where(Application.source == "simulated", Application.phase.is_not(None))).all()
    df = pd.DataFrame(rows, columns=["external_id", "arm", "phase", "ai_visible", "applied_at", "risk_class", "model_version",
                                     "outcome", "is_override", "decided_at", "funded", "defaulted"])
    df = df[df["decided_at"].notna()]
    df["agree"] = df["outcome"] == df["risk_class"].map({"low_risk": "approve", "high_risk": "deny"})
    df["month"] = pd.to_datetime(df["applied_at"], utc=True).dt.strftime("%Y-%m")
    df["seconds"] = (pd.to_datetime(df["decided_at"], utc=True)
                     - pd.to_datetime(df["applied_at"], utc=True)).dt.total_seconds()
    shadow = df[df["phase"] == "shadow"]
    print(f"applications with a final decision: {len(df):,}")
    print(f"shadow agreement: {shadow['agree'].mean():.1%}  by month: "
          + ", ".join(f"{m} {v:.1%}" for m, v in shadow.groupby("month")["agree"].mean().items()))
    ai = df[df["ai_visible"]]
    print("AI-arm override rate: " + ", ".join(f"{p} {v:.1%}" for p, v in ai.groupby("phase")["is_override"].mean()
                                                  .items()))
    print(f"median application-to-decision: AI arm {ai['seconds'].median():.0f} s, without the AI "
          f"{df[~df['ai_visible']]['seconds'].median() / 86400:.1f} days")
    funded = df[df["funded"].eq(True) & df["arm"].isin(["ai", "control"])]
    rate = funded.groupby("arm")["defaulted"].apply(lambda s: s.eq(True).mean())
    print(f"funded loans' observed default rate: AI arm {rate.get('ai', float('nan')):.2%}, "
          f"control arm {rate.get('control', float('nan')):.2%} ({len(funded):,} funded)")
    from backend.simulation.config import SimConfig
    from backend.simulation.draws import generate_applications

    volume = int(sys.argv[1]) if len(sys.argv) > 1 else SimConfig.volume
    cfg = SimConfig(volume=volume, seed=int(sys.argv[2]) if len(sys.argv) > 2 else SimConfig.seed)
    truth = generate_applications(cfg.volume * cfg.months, seed=cfg.seed, start=cfg.start, end=cfg.end,
                      incident=cfg.incident_window).set_index("application_id")["pd_true"]
    pd_true = pd.Series(truth.reindex(funded["external_id"]).to_numpy(), index=funded.index)
    by_arm = pd_true.groupby(funded["arm"]).mean()
    print(f"their ground-truth default probability: AI arm {by_arm.get('ai', float('nan')):.2%}, "
          f"control arm {by_arm.get('control', float('nan')):.2%}")
    print("applications per model version: " + ", ".join(f"{v} {n:,}" for v, n in
                                                          df["model_version"].value_counts().items()))


if __name__ == "__main__":
    main()
