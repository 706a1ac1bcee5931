"""The test files' order for the workers (tests/file_weights.py): heaviest first, each file whole and in its order."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import file_weights
import pytest


def _items(root: Path, names: list[str]) -> list[SimpleNamespace]:
    return [SimpleNamespace(path=root / f, nodeid=f"{f}::{t}") for f, t in (n.split("::") for n in names)]


def test_heaviest_files_first_each_whole_in_its_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = tmp_path / "w.json"
    weights.write_text(json.dumps({"seconds": {"a.py": 1.0, "b.py": 50.0, "c.py": 10.0, "d.py": 2.0}}))
    monkeypatch.setattr(file_weights, "WEIGHTS", weights)
    items = _items(tmp_path, ["a.py::1", "a.py::2", "new.py::1", "b.py::1", "c.py::1", "b.py::2", "d.py::1"])
    got = [i.nodeid for i in file_weights.order(items, tmp_path)]
    # new.py is unmeasured: the median weight (6.0) puts it between c.py (10) and d.py (2)
    assert got == ["b.py::1", "b.py::2", "c.py::1", "new.py::1", "d.py::1", "a.py::1", "a.py::2"]
    outside = SimpleNamespace(path=tmp_path.parent / "elsewhere.py", nodeid="elsewhere.py::1")
    assert file_weights.order([*items, outside], tmp_path)[-4].nodeid == "elsewhere.py::1"  # the median too


def test_without_weights_the_collection_order_stays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_weights, "WEIGHTS", tmp_path / "missing.json")
    items = _items(tmp_path, ["a.py::1", "b.py::1"])
    assert file_weights.order(items, tmp_path) == items
    (tmp_path / "bad.json").write_text("{not json")
    monkeypatch.setattr(file_weights, "WEIGHTS", tmp_path / "bad.json")
    assert file_weights.order(items, tmp_path) == items


def test_weights_from_a_junit_report(tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    report.write_text("""<testsuites><testsuite>
      <testcase classname="tests.unit.test_x" name="a" time="1.5"/>
      <testcase classname="tests.unit.test_x.TestGroup" name="b" time="2.0"/>
      <testcase classname="tests.app.test_y" name="c" time="0.25"/>
    </testsuite></testsuites>""")
    assert file_weights.from_junit(report) == {"tests/unit/test_x.py": 3.5, "tests/app/test_y.py": 0.25}


def test_the_committed_weights_cover_the_suite() -> None:
    """A file renamed or removed since is only ignored (a new one counts as the median); most must be current."""
    root = Path(file_weights.__file__).resolve().parents[1]
    known = file_weights.weights()
    current = {p.relative_to(root).as_posix() for p in root.glob("tests/**/test_*.py")}
    assert len(known) > 100 and all(v >= 0 for v in known.values())
    assert len(current & set(known)) >= 0.8 * len(current)
