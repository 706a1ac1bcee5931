"""Credit bureau key factors: the reason codes a consumer reporting agency sends with a credit score.

The FCRA (section 615(a), as amended by FACTA section 212) asks a lender that used a credit score to
disclose "all of the key factors that adversely affected the credit score ..., not to exceed four"
(a fifth when the number of inquiries is a key factor). Those factors are the **bureau's**, sent with
the score; they are not the lender's model reasons and are never derived from them. An application
carries them as ``bureau_key_factors``: a list of codes (or a ``;``/``,``-separated string), in the
bureau's order. ``KEY_FACTORS`` holds the codes this product accepts, modelled on the widely used
score-factor codes of the US bureaus' generic scores (a lender's bureau contract defines the exact
list and wording; replace this table with it). An unknown code is refused, never printed.
"""

from __future__ import annotations

from collections.abc import Iterable

MAX_KEY_FACTORS = 4
INQUIRY_FACTOR = "84"  # the FACTA "fifth factor": inquiries, disclosed in addition to the first four

KEY_FACTORS: dict[str, str] = {
    "01": "Amount owed on accounts is too high",
    "02": "Level of delinquency on accounts",
    "03": "Too few bank revolving accounts",
    "05": "Too many accounts with balances",
    "07": "Account payment history is too new to rate",
    "08": "Too many inquiries last 12 months",
    "09": "Too many accounts recently opened",
    "10": "Proportion of balances to credit limits on revolving accounts is too high",
    "13": "Time since delinquency is too recent or unknown",
    "14": "Length of time accounts have been established",
    "18": "Number of accounts with delinquency",
    "19": "Too few accounts currently paid as agreed",
    "20": "Length of time since derogatory public record or collection is too short",
    "21": "Amount past due on accounts",
    "28": "Number of established accounts",
    "30": "Time since most recent account opening is too short",
    "33": "Proportion of loan balances to loan amounts is too high",
    "38": "Serious delinquency, and public record or collection filed",
    "39": "Serious delinquency",
    "40": "Derogatory public record or collection filed",
    INQUIRY_FACTOR: "Number of inquiries was a factor in determining the score",
}

UNKNOWN_FACTOR = "bureau_key_factors: unknown key-factor code {code!r} (expected codes such as 01, 10, 14)"
TOO_MANY_FACTORS = "bureau_key_factors: at most {max} key factors (plus the inquiries factor 84); got {n}"
BAD_FACTORS = "bureau_key_factors: a list of codes or a string of codes separated by ';' or ','"


def parse_key_factors(value: object) -> tuple[str, ...]:
    """The bureau's key-factor codes of an application (empty when the bureau sent none).

    Accepts None, ``""``, a list/tuple of codes or a ``;``/``,``-separated string; codes are kept in
    the bureau's order without repeats. Raises ``ValueError`` for an unknown code or too many codes.
    """
    if value is None or (isinstance(value, float) and value != value):
        return ()
    if isinstance(value, str):
        items: Iterable[object] = value.replace(",", ";").split(";")
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        raise ValueError(BAD_FACTORS)
    out: list[str] = []
    for item in items:
        code = str(item).strip()
        if not code:
            continue
        if code.isdigit() and len(code) == 1:
            code = "0" + code
        if code not in KEY_FACTORS:
            raise ValueError(UNKNOWN_FACTOR.format(code=code[:12]))
        if code not in out:
            out.append(code)
    regular = [c for c in out if c != INQUIRY_FACTOR]
    if len(regular) > MAX_KEY_FACTORS:
        raise ValueError(TOO_MANY_FACTORS.format(max=MAX_KEY_FACTORS, n=len(regular)))
    return tuple(out)


def key_factor_texts(codes: Iterable[str]) -> tuple[str, ...]:
    """The printed statements of validated codes (the inquiries factor last, as the FACTA fifth factor)."""
    codes = list(codes)
    ordered = [c for c in codes if c != INQUIRY_FACTOR] + [c for c in codes if c == INQUIRY_FACTOR]
    return tuple(KEY_FACTORS[c] for c in ordered)
