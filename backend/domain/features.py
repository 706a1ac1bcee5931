"""The model feature catalog: one typed, documented entry per model input column.

Every component (synthetic data, training, the API schema, input validation, explanations,
monitoring) reads the feature list from here; nothing else hard-codes column names.

Conventions
-----------
* ``kind``: ``numeric`` → float64 (may hold NaN where listed in ``MAY_BE_MISSING``),
  ``integer`` → int64 (never missing), ``binary`` → int64 0/1, ``categorical`` → str.
* ``lower``/``upper`` are inclusive validation bounds (``None`` = unbounded).
* ``mutable`` marks terms the applicant may lawfully change in a what-if (amount, term,
  down payment, ...). Characteristics of the person are never mutable.
* ``reason_code`` is a key of ``backend.domain.reason_codes.REASONS`` (Regulation B form C-1).
* Protected attributes (``PROTECTED``) are stored beside the data for fairness monitoring only;
  they are never model features, and no feature is a direct proxy name for them (no age, date
  of birth, zip code, gender, marital status, national origin, language or dependents).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Feature:
    name: str
    group: str
    kind: str
    description: str
    unit: str | None
    lower: float | None
    upper: float | None
    categories: tuple[str, ...] | None = None
    mutable: bool = False
    reason_code: str = ""
    higher_is_riskier: bool | None = None


KINDS = ("numeric", "integer", "binary", "categorical")
GROUPS: tuple[str, ...] = (
    "applicant_employment",
    "income_obligations",
    "bureau_tradelines",
    "delinquencies_inquiries",
    "utilization",
    "loan_terms",
    "collateral",
    "banking",
)
GROUP_LABELS: dict[str, str] = {
    "applicant_employment": "Applicant & employment",
    "income_obligations": "Income & obligations",
    "bureau_tradelines": "Bureau tradelines",
    "delinquencies_inquiries": "Delinquencies & inquiries",
    "utilization": "Utilization",
    "loan_terms": "Loan terms",
    "collateral": "Collateral",
    "banking": "Banking behaviour",
}

EMPLOYMENT_TYPES = ("full_time", "part_time", "self_employed", "contract", "retired", "unemployed")
HOME_OWNERSHIP = ("own", "mortgage", "rent", "other")
LOAN_PURPOSES = (
    "debt_consolidation", "home_improvement", "auto", "medical",
    "education", "major_purchase", "small_business", "other",
)  # fmt: skip
COLLATERAL_TYPES = ("none", "vehicle", "real_estate", "deposit", "equipment")
LOAN_TERMS = (12, 24, 36, 48, 60, 72, 84)

M, USD, PCT, CNT, R = "months", "USD", "%", "count", "ratio"
_MAX_MONTHS = 900.0
_G = dict(zip(("app", "inc", "bur", "del", "utl", "loan", "col", "bank"), GROUPS, strict=True))


def _f(group: str, name: str, kind: str, description: str, unit: str | None, lower: float | None,
       upper: float | None, reason: str, risk: bool | None = None, *,
       cats: tuple[str, ...] | None = None, mutable: bool = False) -> Feature:  # fmt: skip
    if kind == "binary":
        lower, upper = 0.0, 1.0
    return Feature(name, _G[group], kind, description, unit, lower, upper, cats, mutable, reason, risk)


FEATURES: tuple[Feature, ...] = (
    # --- applicant & employment -------------------------------------------------------------
    _f("app", "months_employed", "numeric", "time with current employer", M, 0, _MAX_MONTHS,
       "length_of_employment", False),
    _f("app", "months_in_industry", "integer", "time working in current line of work", M, 0, _MAX_MONTHS,
       "length_of_employment", False),
    _f("app", "employment_type", "categorical", "type of employment", None, None, None,
       "temporary_employment", cats=EMPLOYMENT_TYPES),
    _f("app", "num_jobs_5y", "integer", "number of employers in the last 5 years", CNT, 0, 30,
       "temporary_employment", True),
    _f("app", "employment_verified", "binary", "employment verified", None, 0, 1, "unverified_employment", False),
    _f("app", "months_at_address", "integer", "time at current address", M, 0, _MAX_MONTHS,
       "length_of_residence", False),
    _f("app", "num_address_changes_3y", "integer", "number of address changes in the last 3 years", CNT, 0, 20,
       "temporary_residence", True),
    _f("app", "home_ownership", "categorical", "housing status", None, None, None,
       "temporary_residence", cats=HOME_OWNERSHIP),
    _f("app", "residence_verified", "binary", "residence verified", None, 0, 1, "unverified_residence", False),
    _f("app", "application_fields_missing", "integer", "number of missing optional application fields",
       CNT, 0, 30, "application_incomplete", True),
    # --- income & obligations ---------------------------------------------------------------
    _f("inc", "annual_income", "numeric", "annual gross income", USD, 0, 10_000_000, "insufficient_income", False),
    _f("inc", "other_income", "numeric", "annual income from other sources (included in annual income)",
       USD, 0, 5_000_000, "insufficient_income", False),
    _f("inc", "income_verified", "binary", "income verified", None, 0, 1, "unverified_income", False),
    _f("inc", "num_income_sources", "integer", "number of income sources", CNT, 0, 10, "insufficient_income", False),
    _f("inc", "monthly_housing_payment", "numeric", "monthly rent or mortgage payment", USD, 0, 50_000,
       "excessive_obligations", True),
    _f("inc", "monthly_debt_payments", "numeric", "monthly payments on other debts", USD, 0, 100_000,
       "excessive_obligations", True),
    _f("inc", "student_loan_payment", "numeric", "monthly student loan payment", USD, 0, 10_000,
       "excessive_obligations", True),
    _f("inc", "total_debt_balance", "numeric", "total non-mortgage debt balance", USD, 0, 5_000_000,
       "excessive_obligations", True),
    _f("inc", "debt_to_income", "numeric", "debt-to-income ratio", R, 0, 5, "excessive_obligations", True),
    _f("inc", "housing_to_income", "numeric", "housing-cost-to-income ratio", R, 0, 5,
       "excessive_obligations", True),
    _f("inc", "payment_to_income", "numeric", "new loan payment as a share of monthly income", R, 0, 5,
       "insufficient_income", True),
    _f("inc", "loan_to_income", "numeric", "requested amount relative to annual income", R, 0, 100,
       "insufficient_income", True),
    _f("inc", "residual_income_monthly", "numeric", "monthly income left after all payments", USD,
       -200_000, 1_000_000, "insufficient_income", False),
    # --- bureau tradelines ------------------------------------------------------------------
    _f("bur", "credit_score", "integer", "credit bureau score", None, 300, 850, "other_credit_score", False),
    _f("bur", "credit_history_months", "integer", "length of credit history", M, 0, _MAX_MONTHS,
       "limited_credit_experience", False),
    _f("bur", "avg_account_age_months", "integer", "average age of credit accounts", M, 0, _MAX_MONTHS,
       "limited_credit_experience", False),
    _f("bur", "months_since_newest_account", "integer", "time since the newest account was opened", M,
       0, _MAX_MONTHS, "limited_credit_experience", False),
    _f("bur", "num_open_accounts", "integer", "number of open credit accounts", CNT, 0, 100,
       "insufficient_credit_references", None),
    _f("bur", "num_total_accounts", "integer", "number of credit accounts ever opened", CNT, 0, 200,
       "insufficient_credit_references", False),
    _f("bur", "num_satisfactory_accounts", "integer", "number of accounts in good standing", CNT, 0, 200,
       "insufficient_credit_references", False),
    _f("bur", "num_revolving_accounts", "integer", "number of open revolving accounts", CNT, 0, 60,
       "unacceptable_credit_references", None),
    _f("bur", "num_installment_accounts", "integer", "number of open installment accounts", CNT, 0, 60,
       "unacceptable_credit_references", None),
    _f("bur", "has_mortgage_tradeline", "binary", "has a mortgage account", None, 0, 1,
       "unacceptable_credit_references", False),
    _f("bur", "num_accounts_opened_12m", "integer", "accounts opened in the last 12 months", CNT, 0, 40,
       "recent_inquiries", True),
    _f("bur", "num_accounts_opened_24m", "integer", "accounts opened in the last 24 months", CNT, 0, 60,
       "recent_inquiries", True),
    _f("bur", "total_credit_limit", "numeric", "total credit limits and original loan amounts", USD,
       0, 20_000_000, "limited_credit_experience", False),
    _f("bur", "highest_credit_limit", "numeric", "highest credit limit or loan amount", USD, 0, 10_000_000,
       "limited_credit_experience", False),
    _f("bur", "thin_file", "binary", "thin credit file (fewer than 3 accounts or under a year)", None, 0, 1,
       "limited_credit_experience", True),
    # --- delinquencies & inquiries ----------------------------------------------------------
    _f("del", "num_delinquencies_2y", "integer", "number of delinquencies in the last 2 years", CNT, 0, 50,
       "delinquent_obligations", True),
    _f("del", "num_30dpd_12m", "integer", "payments 30+ days late in the last 12 months", CNT, 0, 50,
       "delinquent_obligations", True),
    _f("del", "num_60dpd_24m", "integer", "payments 60+ days late in the last 24 months", CNT, 0, 50,
       "delinquent_obligations", True),
    _f("del", "num_90dpd_ever", "integer", "payments ever 90+ days late", CNT, 0, 100,
       "delinquent_obligations", True),
    _f("del", "months_since_last_delinquency", "numeric", "time since the last delinquency", M, 0,
       _MAX_MONTHS, "delinquent_obligations", False),
    _f("del", "num_currently_past_due", "integer", "accounts currently past due", CNT, 0, 50,
       "delinquent_obligations", True),
    _f("del", "past_due_amount", "numeric", "amount currently past due", USD, 0, 1_000_000,
       "delinquent_obligations", True),
    _f("del", "num_chargeoffs", "integer", "accounts charged off", CNT, 0, 30, "delinquent_obligations", True),
    _f("del", "num_collections", "integer", "accounts in collection", CNT, 0, 50, "collection_or_judgment", True),
    _f("del", "collections_amount", "numeric", "amount in collection", USD, 0, 1_000_000,
       "collection_or_judgment", True),
    _f("del", "num_public_records", "integer", "number of public records", CNT, 0, 20, "collection_or_judgment", True),
    _f("del", "has_judgment", "binary", "civil judgment on file", None, 0, 1, "collection_or_judgment", True),
    _f("del", "has_garnishment", "binary", "wage garnishment or attachment", None, 0, 1,
       "garnishment_or_attachment", True),
    _f("del", "has_foreclosure_or_repo", "binary", "foreclosure or repossession on file", None, 0, 1,
       "foreclosure_or_repossession", True),
    _f("del", "has_bankruptcy", "binary", "bankruptcy on file", None, 0, 1, "bankruptcy", True),
    _f("del", "months_since_bankruptcy", "numeric", "time since bankruptcy", M, 0, _MAX_MONTHS, "bankruptcy", False),
    _f("del", "num_inquiries_6m", "integer", "credit inquiries in the last 6 months", CNT, 0, 60,
       "recent_inquiries", True),
    _f("del", "num_inquiries_12m", "integer", "credit inquiries in the last 12 months", CNT, 0, 100,
       "recent_inquiries", True),
    _f("del", "months_since_last_inquiry", "numeric", "time since the last credit inquiry", M, 0, 120,
       "recent_inquiries", False),
    # --- utilization ------------------------------------------------------------------------
    _f("utl", "revolving_utilization", "numeric", "revolving credit utilization", R, 0, 2,
       "other_revolving_utilization", True),
    _f("utl", "max_card_utilization", "numeric", "highest utilization on a single card", R, 0, 2,
       "other_revolving_utilization", True),
    _f("utl", "num_cards_over_75pct_util", "integer", "cards more than 75% used", CNT, 0, 60,
       "other_revolving_utilization", True),
    _f("utl", "revolving_balance", "numeric", "total revolving balance", USD, 0, 2_000_000,
       "excessive_obligations", True),
    _f("utl", "revolving_credit_limit", "numeric", "total revolving credit limit", USD, 0, 5_000_000,
       "limited_credit_experience", False),
    _f("utl", "open_to_buy", "numeric", "unused revolving credit", USD, 0, 5_000_000,
       "other_revolving_utilization", False),
    _f("utl", "installment_balance", "numeric", "balance on installment loans (excluding mortgage)", USD,
       0, 5_000_000, "excessive_obligations", True),
    _f("utl", "installment_utilization", "numeric", "installment balance as a share of original amounts", R,
       0, 1.5, "excessive_obligations", True),
    _f("utl", "num_accounts_with_balance", "integer", "accounts carrying a balance", CNT, 0, 100,
       "excessive_obligations", True),
    _f("utl", "utilization_change_6m", "numeric", "change in revolving utilization over 6 months", R, -2, 2,
       "other_revolving_utilization", True),
    # --- loan terms -------------------------------------------------------------------------
    _f("loan", "loan_amount", "numeric", "requested loan amount", USD, 500, 100_000,
       "insufficient_income", True, mutable=True),
    _f("loan", "loan_term_months", "integer", "requested loan term", M, 6, 120, "other_loan_terms", True,
       mutable=True),
    _f("loan", "loan_purpose", "categorical", "purpose of the loan", None, None, None,
       "other_loan_purpose", cats=LOAN_PURPOSES),
    _f("loan", "estimated_monthly_payment", "numeric", "estimated monthly payment on the new loan", USD,
       0, 20_000, "insufficient_income", True),
    _f("loan", "is_refinance", "binary", "refinances an existing loan", None, 0, 1, "other_loan_terms", None),
    _f("loan", "autopay_enrolled", "binary", "automatic payments enrolled", None, 0, 1,
       "other_loan_terms", False, mutable=True),
    _f("loan", "days_to_first_payment", "integer", "days until the first payment", "days", 15, 60,
       "other_loan_terms", None, mutable=True),
    # --- collateral -------------------------------------------------------------------------
    _f("col", "is_secured", "binary", "loan secured by collateral", None, 0, 1, "insufficient_collateral", False),
    _f("col", "collateral_type", "categorical", "type of collateral", None, None, None,
       "insufficient_collateral", cats=COLLATERAL_TYPES),
    _f("col", "collateral_value", "numeric", "collateral value", USD, 0, 10_000_000, "insufficient_collateral", False),
    _f("col", "collateral_age_years", "numeric", "age of the collateral", "years", 0, 150,
       "insufficient_collateral", True),
    _f("col", "down_payment", "numeric", "down payment", USD, 0, 500_000, "insufficient_collateral", False,
       mutable=True),
    _f("col", "down_payment_pct", "numeric", "down payment as a share of the purchase price", PCT, 0, 100,
       "insufficient_collateral", False, mutable=True),
    _f("col", "loan_to_value", "numeric", "loan-to-value ratio", R, 0, 5, "insufficient_collateral", True),
    # --- banking behaviour (deposit relationship with us) -----------------------------------
    _f("bank", "has_checking_account", "binary", "has a checking account with us", None, 0, 1,
       "other_deposit_relationship", False),
    _f("bank", "months_as_customer", "integer", "length of banking relationship with us", M, 0, _MAX_MONTHS,
       "other_deposit_relationship", False),
    _f("bank", "has_direct_deposit", "binary", "salary paid into an account with us", None, 0, 1,
       "unverified_income", False),
    _f("bank", "avg_monthly_balance", "numeric", "average monthly checking balance", USD, -50_000, 5_000_000,
       "other_deposit_relationship", False),
    _f("bank", "savings_balance", "numeric", "savings balance with us", USD, 0, 20_000_000,
       "other_deposit_relationship", False),
    _f("bank", "avg_monthly_deposits", "numeric", "average monthly deposits", USD, 0, 2_000_000,
       "insufficient_income", False),
    _f("bank", "deposit_to_income_ratio", "numeric", "observed deposits relative to stated income", R, 0, 20,
       "unverified_income", False),
    _f("bank", "balance_volatility", "numeric", "volatility of the checking balance", R, 0, 50,
       "other_deposit_relationship", True),
    _f("bank", "num_overdrafts_12m", "integer", "overdrafts in the last 12 months", CNT, 0, 200,
       "poor_performance_with_us", True),
    _f("bank", "num_nsf_12m", "integer", "returned (NSF) items in the last 12 months", CNT, 0, 200,
       "poor_performance_with_us", True),
    _f("bank", "days_negative_balance_12m", "integer", "days with a negative balance in the last 12 months",
       "days", 0, 366, "poor_performance_with_us", True),
    _f("bank", "num_prior_loans_with_us", "integer", "previous loans with us", CNT, 0, 50,
       "poor_performance_with_us", False),
    _f("bank", "num_late_payments_with_us", "integer", "late payments on loans with us", CNT, 0, 100,
       "poor_performance_with_us", True),
)  # fmt: skip

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
FEATURES_BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
MUTABLE_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.mutable)
CATEGORICAL_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.kind == "categorical")
#: Features whose value is legitimately absent (not applicable) and is stored as NaN.
MAY_BE_MISSING: tuple[str, ...] = (
    "months_employed",  # self-employed and retired applicants
    "months_since_last_delinquency",  # never delinquent
    "months_since_bankruptcy",  # no bankruptcy
    "months_since_last_inquiry",  # no inquiry on file
    "collateral_age_years",  # unsecured
    "loan_to_value",  # unsecured
)

PROTECTED: tuple[str, ...] = ("sex", "age_band", "race_ethnicity")
PROTECTED_CATEGORIES: dict[str, tuple[str, ...]] = {
    "sex": ("female", "male", "not_provided"),
    "age_band": ("18-24", "25-34", "35-44", "45-54", "55-64", "65+"),
    "race_ethnicity": ("asian", "black", "hispanic", "white", "other", "not_provided"),
}
TARGET = "default"
ID_COLUMNS = ("application_id", "applicant_id", "applied_at")


def features_in_group(group: str) -> tuple[Feature, ...]:
    """The features of one group, in catalog order (``ValueError`` for an unknown group)."""
    if group not in GROUPS:
        raise ValueError(f"unknown feature group {group!r}; expected one of {GROUPS}")
    return tuple(f for f in FEATURES if f.group == group)


_DTYPES = {"numeric": "float64", "integer": "int64", "binary": "int64", "categorical": "object"}


def pandas_dtype(feature: Feature) -> str:
    """The pandas dtype a dataset column of this feature has: float64, int64 or object."""
    return _DTYPES[feature.kind]
