"""Adverse action notice settings (``CREDITRISK_LETTERS__...``) and the creditor printed on them."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field

#: The creditor printed on notices (root settings ``CREDITRISK_ORGANIZATION_NAME`` and ``_ADDRESS``); the
#: defaults are examples, and a notice built with them is marked SPECIMEN.
EXAMPLE_ORGANIZATION_NAME = "Example Community Bank"
EXAMPLE_ORGANIZATION_ADDRESS = "100 Main Street, Springfield, ST 00000"

#: Example values for adverse action notices. They are placeholders: ``LetterSettings.example_fields``
#: reports which are still in use, and notices built with any of them are marked SPECIMEN.
EXAMPLE_AGENCY_NAME = "Consumer Financial Protection Bureau"
EXAMPLE_AGENCY_ADDRESS = "1700 G Street NW, Washington, DC 20552"
EXAMPLE_BUREAU_NAME = "Example Credit Bureau, Inc."
EXAMPLE_BUREAU_ADDRESS = "P.O. Box 0000, Springfield, ST 00000"
EXAMPLE_BUREAU_PHONE = "1-800-555-0100"


class LetterSettings(BaseModel):
    """Adverse action notices (backend/decisioning/letters.py).

    ``agency_*``: the federal agency that administers ECOA compliance for *this* creditor, as listed
    in Regulation B, Appendix A (the CFPB default is only an example: it is right for banks over
    $10 billion in assets and many non-banks; community banks usually name the FDIC, OCC or Federal
    Reserve office). ``bureau_*``: the consumer reporting agency whose score the model uses (FCRA
    section 615(a)); the defaults are fictitious examples. ``score_low``/``score_high``: the range of
    that score.
    """

    agency_name: str = EXAMPLE_AGENCY_NAME
    agency_address: str = EXAMPLE_AGENCY_ADDRESS
    bureau_name: str = EXAMPLE_BUREAU_NAME
    bureau_address: str = EXAMPLE_BUREAU_ADDRESS
    bureau_phone: str = EXAMPLE_BUREAU_PHONE
    score_low: int = Field(300, ge=0)
    score_high: int = Field(850, gt=0)

    def example_fields(self) -> tuple[str, ...]:
        """Names of the fields that still hold the example defaults."""
        defaults = {"agency_name": EXAMPLE_AGENCY_NAME, "agency_address": EXAMPLE_AGENCY_ADDRESS,
                    "bureau_name": EXAMPLE_BUREAU_NAME, "bureau_address": EXAMPLE_BUREAU_ADDRESS,
                    "bureau_phone": EXAMPLE_BUREAU_PHONE}
        return tuple(k for k, v in defaults.items() if getattr(self, k) == v)


class NoticeSettings(Protocol):
    """What a notice reads from the settings: the creditor and the ``letters`` section."""

    @property
    def organization_name(self) -> str: ...

    @property
    def organization_address(self) -> str: ...

    @property
    def letters(self) -> LetterSettings: ...
