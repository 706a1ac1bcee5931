"""The bureau's key-factor codes of a synthetic applicant (``bureau_key_factors``).

A real bureau sends up to four codes with the score, most important first, and a fifth (code 84)
when inquiries affected it; it sends factors even for a good score (what held it back most). Here each
code gets a severity from the applicant's own bureau fields (utilisation, delinquencies, inquiries,
public records, file age and size); the four most severe are sent, in that order, joined by ``;``. A
small share of applications (``NONE_SENT``) carry none, as when the bureau returned a score without
factors, so the notice's "none sent" path is exercised. The draw uses its own random stream: every
other generated column is unchanged by it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from backend.domain import INQUIRY_FACTOR, MAX_KEY_FACTORS

NONE_SENT = 0.03


def key_factor_column(cols: Mapping[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """One ``;``-joined string of codes per row ("" when the bureau sent none)."""
    def f(name: str) -> np.ndarray:
        return np.asarray(cols[name], dtype=np.float64)

    n = len(f("credit_score"))
    util, inq = f("revolving_utilization"), f("num_inquiries_12m")
    severity = {  # code -> severity (0: not a factor for this applicant); small noise breaks exact ties
        "39": np.where(f("num_90dpd_ever") > 0, 0.95, 0.0),
        "21": np.where(f("past_due_amount") > 0, 0.9, 0.0),
        "40": np.where((f("num_public_records") > 0) | (f("num_collections") > 0), 0.88, 0.0),
        "02": np.where(f("num_delinquencies_2y") > 0, 0.7 + 0.05 * np.minimum(f("num_delinquencies_2y"), 4), 0.0),
        "10": np.where(util > 0.3, np.minimum(util, 1.5) / 1.5, 0.0),
        "08": np.where(inq >= 4, 0.4 + 0.04 * np.minimum(inq, 10), 0.0),
        "14": np.where(f("credit_history_months") < 60, 0.65 - f("credit_history_months") / 200, 0.0),
        "09": np.where(f("num_accounts_opened_12m") >= 3, 0.5, 0.0),
        "28": np.where(f("num_total_accounts") < 5, 0.45, 0.0),
        "01": np.where(f("revolving_balance") > 15_000, 0.4, 0.0),
        "05": np.where(f("num_accounts_with_balance") > 6, 0.3, 0.12),  # what holds a good score back
        "07": np.where(f("thin_file") > 0, 0.55, 0.0),
    }
    codes = np.array(list(severity))
    sev = np.column_stack(list(severity.values())) + rng.uniform(0, 1e-3, (n, len(codes)))
    order = np.argsort(-sev, axis=1)[:, :MAX_KEY_FACTORS]
    top = np.take_along_axis(sev, order, axis=1) > 0.01
    inquiries = (inq >= 2) & ~np.any(codes[order] == "08", axis=1)
    none = rng.random(n) < NONE_SENT
    out = np.empty(n, dtype=object)
    for i in range(n):
        if none[i]:
            out[i] = ""
            continue
        picked = [str(c) for c, keep in zip(codes[order[i]], top[i], strict=True) if keep]
        out[i] = ";".join(picked + ([INQUIRY_FACTOR] if inquiries[i] else []))
    return out
