"""The order test files go to the pytest-xdist workers: the longest first.

``make test`` runs ``pytest -n 2 --dist loadfile``: each file goes whole to the next free worker, in the order of
the collection. pytest-xdist's own order (``--loadscope-reorder``, its default) puts the files with the most tests
first, so the files of a few long tests (three simulated histories, a browser walk, an MLflow server) came last,
and one worker ran them while the other had nothing left (the last ~2.5 minutes of a 32-minute run had one core or
none busy). With ``--no-loadscope-reorder`` the collection's order is kept, and :func:`order` sorts it by each
file's measured worker-seconds (``file_weights.json``), longest first; a file not measured yet counts as the
median. Tests keep their order within their file, and each file still runs whole on one worker.

Measure again after a full run with a junit report::

    make test PYTEST_ARGS="--junitxml=/tmp/junit.xml"
    python tests/file_weights.py /tmp/junit.xml      # rewrites tests/file_weights.json
"""

from __future__ import annotations

import json
import statistics
import sys
import xml.etree.ElementTree as ET  # noqa: S405 - our own test run's report
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

WEIGHTS = Path(__file__).with_name("file_weights.json")


def weights() -> dict[str, float]:
    try:
        return {str(k): float(v) for k, v in json.loads(WEIGHTS.read_text())["seconds"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}  # no weights: the collection's order


def order(items: list[Any], rootpath: Path) -> list[Any]:
    """``items`` (pytest items) with whole files sorted by weight, heaviest first (stable otherwise)."""
    known = weights()
    if not known:
        return items
    default = statistics.median(known.values())
    of = [_file(item, rootpath) for item in items]
    first = {f: i for i, f in reversed(list(enumerate(of)))}  # each file's first place in the collection
    place = sorted(range(len(items)), key=lambda i: (-known.get(of[i], default), first[of[i]]))
    return [items[i] for i in place]


def _file(item: Any, rootpath: Path) -> str:
    path = Path(str(item.path)).resolve()
    try:
        return path.relative_to(rootpath.resolve()).as_posix()
    except ValueError:  # a file outside the repository (a path given on the command line): never measured
        return path.as_posix()


def from_junit(report: Path) -> dict[str, float]:
    """Worker-seconds per test file (setup, call and teardown of each test) from a junit XML report."""
    out: dict[str, float] = defaultdict(float)
    for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314 - our own test run's report
        parts = case.get("classname", "").split(".")
        while parts and parts[-1][:1].isupper():  # a test class, not a module
            parts.pop()
        out["/".join(parts) + ".py"] += float(case.get("time") or 0)
    return dict(out)


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit("usage: python tests/file_weights.py JUNIT_XML")
    measured = from_junit(Path(argv[0]))
    WEIGHTS.write_text(json.dumps({
        "measured": f"{date.today():%Y-%m-%d}: worker-seconds per file from {Path(argv[0]).name}",
        "seconds": {k: round(v, 1) for k, v in sorted(measured.items(), key=lambda kv: -kv[1])}}, indent=1) + "\n")
    print(f"{len(measured)} files, {sum(measured.values()):,.0f} worker-seconds -> {WEIGHTS}")


if __name__ == "__main__":
    main(sys.argv[1:])
