"""The fact-check corpus written by this project (tests/corpus/factcheck_*.jsonl, built by
tests/corpus/build_factcheck_corpus.py): 60 decision records, hostile explanations (one lie each) and true ones,
each line naming its record by index. Read by the corpus tests and by bench/factcheck.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from backend.explanations.record import DecisionRecord

CORPUS = Path(__file__).resolve().parent / "corpus"


def load(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (CORPUS / name).read_text().splitlines() if line.strip()]


RECORDS = [DecisionRecord.from_dict(d["record"]) for d in load("factcheck_records.jsonl")]
HOSTILE = load("factcheck_hostile.jsonl")
TRUE = load("factcheck_true.jsonl")
