"""The `creditrisk` command end to end (SQLite under a tmp data dir)."""

from __future__ import annotations

import csv
import io
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from backend.cli import app

runner = CliRunner()


@pytest.fixture
def env(cli_env):
    return cli_env


def run(*args, input=None):
    return runner.invoke(app, list(args), input=input)


def _commands(group, prefix=()):
    import typer.main

    cmd = typer.main.get_command(group)
    out = []

    def walk(c, path):
        out.append(path)
        for name, sub in getattr(c, "commands", {}).items():
            walk(sub, (*path, name))

    walk(cmd, prefix)
    return out


def test_every_command_has_help(env):
    paths = _commands(app)
    assert len(paths) > 15
    for path in paths:
        res = run(*path, "--help")
        assert res.exit_code == 0, (path, res.output)
        assert "Usage" in res.output


def test_malformed_setting_is_one_clear_line(env, monkeypatch):
    monkeypatch.setenv("CREDITRISK_DATABASE__URL", "mysql://nope")
    res = run("users", "list")
    assert res.exit_code == 2
    assert "CREDITRISK_DATABASE__URL" in res.output and "Traceback" not in res.output


def test_users_lifecycle(env):
    res = run("users", "add", "carol", "--role", "risk_manager", "--name", "Carol")
    assert res.exit_code == 0 and "password (shown once)" in res.output
    assert run("users", "add", "carol", "--role", "admin").exit_code == 2
    bad = run("users", "add", "dave", "--role", "boss")
    assert bad.exit_code == 2 and "Unknown role" in bad.output
    assert run("users", "add", "erin", "--role", "admin", "--password-stdin", input="a long enough password\n").exit_code == 0
    refused = run("users", "disable", "carol")  # an admin exists now: the operator must prove who they are
    assert refused.exit_code == 2 and "manage_users" in refused.output
    assert run("users", "add", "mallory", "--role", "admin").exit_code == 2
    assert run("users", "disable", "carol", "--as", "carol", input="wrong\n").exit_code == 2
    assert run("users", "disable", "carol", "--as", "erin", input="a long enough password\n").exit_code == 0
    listing = run("users", "list", "--json")
    assert '"disabled": true' in listing.output
    assert run("users", "disable", "nobody").exit_code == 2
    assert run("audit", "verify").exit_code == 0


def test_generate_and_bad_suffix(env):
    res = run("generate", "--rows", "500", "--seed", "3", "--out", "apps.csv")
    assert res.exit_code == 0, res.output
    df = pd.read_csv(env / "apps.csv")
    assert len(df) == 500 and {"default", "sex", "applied_at"} <= set(df.columns)
    assert run("generate", "--rows", "10", "--out", "apps.xlsx").exit_code == 2
    assert run("generate", "--rows", "10", "--scenario", "meteor").exit_code == 2


def test_train_bad_input_is_one_line(env):
    pd.DataFrame({"a": [1, 2, 3, 4] * 50, "b": ["x", "y"] * 100}).to_csv(env / "d.csv", index=False)
    res = run("train", "--data", "d.csv", "--target", "missing_col")
    assert res.exit_code == 2 and "missing_col" in res.output
    assert len([line for line in res.output.strip().splitlines() if line.strip()]) <= 2


def test_score_reports_bad_rows_and_scores_good_ones(env, model_registry):
    shutil.copytree(model_registry, env / "models")
    assert run("generate", "--rows", "6", "--seed", "5", "--out", "apps.csv").exit_code == 0
    df = pd.read_csv(env / "apps.csv").astype({"annual_income": object})
    df.loc[1, "annual_income"] = "lots"
    df.loc[2, "credit_score"] = 5000
    df.loc[3, "application_id"] = "=HYPERLINK(\"http://x\")"
    df.to_csv(env / "apps.csv", index=False)
    res = run("score", "--input", "apps.csv", "--out", "out.csv")
    assert res.exit_code == 1  # some rows were rejected
    assert "row 2" in res.output and "row 3" in res.output
    rows = list(csv.DictReader(io.StringIO((env / "out.csv").read_text())))
    assert len(rows) == 4
    assert {r["recommendation"] for r in rows} <= {"approve", "deny", "manual_review"}
    assert any(r["id"].startswith("'=") for r in rows)  # formula neutralised
    ref = run("score", "--input", "apps.csv", "--engine", "reference", "--dry-run", "--out", "ref.csv")
    ref_rows = list(csv.DictReader(io.StringIO((env / "ref.csv").read_text())))
    assert [r["pd"] for r in ref_rows] == [r["pd"] for r in rows] and ref.exit_code == 1


def test_models_commands(env, model_registry):
    shutil.copytree(model_registry, env / "models")
    assert "champion" in run("models", "list").output
    assert run("models", "verify", "champion").exit_code == 0
    assert run("models", "show", "champion").exit_code == 0
    assert run("models", "rollback").exit_code == 2  # no previous champion
    assert run("models", "show", "v-nope").exit_code == 2


def test_scoring_a_file_twice_rescores_and_a_changed_row_is_refused(env, model_registry):
    shutil.copytree(model_registry, env / "models")
    assert run("generate", "--rows", "3", "--seed", "8", "--out", "apps.csv").exit_code == 0
    assert run("score", "--input", "apps.csv").exit_code == 0
    assert run("score", "--input", "apps.csv").exit_code == 0  # same ids, same details: new predictions
    df = pd.read_csv(env / "apps.csv")
    df.loc[0, "loan_amount"] = df.loc[0, "loan_amount"] + 100
    df.to_csv(env / "apps.csv", index=False)
    res = run("score", "--input", "apps.csv")
    assert res.exit_code == 2 and "already exists" in res.output


def test_db_compact_gives_the_space_of_rewritten_rows_back(env):
    """After rows are rewritten smaller (an upgrade such as 0020's), the SQLite file keeps its free pages until
    `creditrisk db compact`; the book reads the same afterwards."""
    import sqlalchemy as sa

    from backend.platform.db.engine import Database, make_engine

    assert run("db", "migrate").exit_code == 0
    path = env / "var" / "creditrisk.db"
    db = Database(make_engine(f"sqlite:///{path}"))
    with db.engine.begin() as c:  # ~8 MB of rows, then gone: their pages stay in the file as free pages
        c.execute(sa.text("CREATE TABLE scratch (v BLOB)"))
        c.execute(sa.text("INSERT INTO scratch VALUES (:v)"), [{"v": bytes(4000)} for _ in range(2000)])
    with db.engine.begin() as c:
        c.execute(sa.text("DROP TABLE scratch"))
    revision = db.current_revision()
    db.dispose()
    before = path.stat().st_size
    res = run("db", "compact")
    assert res.exit_code == 0, res.output
    after = path.stat().st_size
    assert before - after > 7_000_000, (before, after)
    assert "MB given back" in res.output and f"{before / 1e6:,.1f} MB -> {after / 1e6:,.1f} MB" in res.output
    db = Database(make_engine(f"sqlite:///{path}"))
    assert db.current_revision() == revision
    db.dispose()


def test_db_compact_on_postgresql_vacuums_without_locking(env, pg_database, monkeypatch):
    monkeypatch.setenv("CREDITRISK_DATABASE__URL", pg_database.engine.url.render_as_string(hide_password=False))
    res = run("db", "compact")
    assert res.exit_code == 0, res.output
    assert "VACUUM (ANALYZE) done on postgresql" in res.output


def test_a_command_closes_what_it_opened(env):
    """The book's write-ahead log is folded back and removed when a command ends (it was left beside the file
    until the next open)."""
    assert run("db", "migrate").exit_code == 0
    assert run("users", "add", "dora", "--role", "loan_officer", "--name", "Dora").exit_code == 0
    var = env / "var"
    assert (var / "creditrisk.db").exists()
    assert not (var / "creditrisk.db-wal").exists() and not (var / "creditrisk.db-shm").exists()
