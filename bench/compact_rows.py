"""Compact JSON columns (backend/platform/db/compact.py) on a built book: bytes and time per value.

For a sample of stored rows of ``applications.features``, ``predictions.attributions``, ``predictions.reasons``
(migration 0015) and ``audit_log.payload`` (0017): their JSON text as ``json.dumps`` writes it with its default
separators (SQLAlchemy's JSON type by default; the engine's orjson writer, which the JSON columns used, writes a
little less: 359 bytes for an audit payload this measures at 383) against the compact bytes stored now, and the
time to write (serialise) and read (parse) one value each way, in the same run; and the same values stored as
revision 0019 did (no catalogue vectors: ``compact.dumps(..., vectors=False)``): bytes, write, read, and the JSON
text the drift reader rebuilds. Also the database file's bytes per application. Reads the database only.

    PYTHONPATH=. .venv/bin/python bench/compact_rows.py --data-dir var [--sample 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COLUMNS = (("applications", "features"), ("predictions", "attributions"), ("predictions", "reasons"),
           ("audit_log", "payload"))


def per_value_us(fn: Callable[[Any], Any], values: list[Any]) -> float:
    best = []
    for _ in range(3):
        t0 = time.perf_counter()
        for v in values:
            fn(v)
        best.append((time.perf_counter() - t0) / len(values) * 1e6)
    return min(best)


def main() -> None:
    from backend.platform.db import compact
    from backend.platform.db.schema import metadata

    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("CREDITRISK_DATA_DIR", "var")))
    ap.add_argument("--sample", type=int, default=3000)
    a = ap.parse_args()
    path = a.data_dir / "creditrisk.db"
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    apps = con.execute("SELECT count(*) FROM applications").fetchone()[0]
    size = path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob("creditrisk.db-wal"))
    print(f"{path}: {size / 1e6:,.0f} MB for {apps:,} applications, {size / max(apps, 1):,.0f} bytes each")
    print(f"{'column':<26}{'JSON text':>11}{'compact':>9}{'ratio':>7}{'write JSON':>12}{'compact':>9}"
          f"{'read JSON':>11}{'compact':>9}   | 0019 (no vectors): {'bytes':>7}{'write':>9}{'read':>9}{'as text':>9}"
          f"  now as text")
    for table, column in COLUMNS:
        version = metadata.tables[table].c[column].type.version  # the dictionary the column type writes with
        raws = [r[0] for r in con.execute(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL "  # noqa: S608
                                          f"ORDER BY random() LIMIT ?", (a.sample,))]
        values = [compact.loads(r) for r in raws]
        texts = [json.dumps(v) for v in values]  # JSON text, as described above

        def dumps(v: Any, version: int = version) -> bytes:
            return compact.dumps(v, version)

        packed = [dumps(v) for v in values]
        assert [compact.loads(p) for p in packed] == values  # lossless on this book
        t_len, c_len = statistics.mean(map(len, texts)), statistics.mean(map(len, packed))
        w_json, w_c = per_value_us(json.dumps, values), per_value_us(dumps, values)
        r_json, r_c = per_value_us(json.loads, texts), per_value_us(compact.loads, packed)
        # the same values as 0019 stored them (no catalogue vectors, migration 0020), measured in the same run
        def dumps_0019(v: Any, version: int = version) -> bytes:
            return compact.dumps(v, version, vectors=False)

        old = [dumps_0019(v) for v in values]
        o_len = statistics.mean(map(len, old))
        w_o = per_value_us(dumps_0019, values)
        r_o, t_o, t_c = (per_value_us(compact.loads, old), per_value_us(compact.json_text, old),
                         per_value_us(compact.json_text, packed))
        print(f"{table + '.' + column:<26}{t_len:>9,.0f} B{c_len:>7,.0f} B{t_len / c_len:>6.1f}x"
              f"{w_json:>9.1f} us{w_c:>6.1f} us{r_json:>8.1f} us{r_c:>6.1f} us   | {'':19}{o_len:>5,.0f} B"
              f"{w_o:>6.1f} us{r_o:>6.1f} us{t_o:>6.1f} us{t_c:>8.1f} us")


if __name__ == "__main__":
    main()
