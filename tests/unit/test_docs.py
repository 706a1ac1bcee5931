"""The guides in docs/ match the tree: every feature package, console page and command group is in the
feature map, every path they name exists, every fixture they recommend exists, and the README links them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARCH = (ROOT / "docs" / "architecture.md").read_text()
TESTING = (ROOT / "docs" / "testing.md").read_text()
README = (ROOT / "README.md").read_text()


def _feature_map_rows() -> list[str]:
    section = ARCH.split("## Feature map", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ") and "`backend/" in line]


def _packages() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "backend").glob("*/__init__.py"))


@pytest.mark.parametrize("package", _packages())
def test_every_feature_package_has_a_row_in_the_feature_map(package: str) -> None:
    assert any(f"`backend/{package}/`" in row for row in _feature_map_rows()), package


def test_every_package_in_the_map_exists() -> None:
    named = {m for row in _feature_map_rows() for m in re.findall(r"`backend/([a-z_]+)/`", row.split("|")[2])}
    assert named and named <= set(_packages())


def test_every_console_page_is_in_the_feature_map() -> None:
    from app.navigation import PAGES

    rows = "\n".join(_feature_map_rows())
    missing = [p.title for p in PAGES if p.title not in rows]
    assert not missing, f"pages not in docs/architecture.md's feature map: {missing}"


def test_every_command_group_is_in_the_feature_map() -> None:
    import typer

    from backend.cli import app

    group = typer.main.get_command(app)
    names = sorted(group.commands)  # type: ignore[attr-defined]
    rows = "\n".join(_feature_map_rows())
    missing = [n for n in names if f"`{n}`" not in rows and f"`{n} " not in rows]
    assert names and not missing, f"commands not in docs/architecture.md's feature map: {missing}"


def test_the_tables_in_the_map_are_the_schema() -> None:
    import backend.platform.db.schema  # noqa: F401 - registers every table on Base.metadata
    from backend.platform.db.base import Base

    tables = set(Base.metadata.tables)
    owned = {t for row in _feature_map_rows() for t in re.findall(r"`([a-z_]+)`", row.split("|")[5])}
    unknown = owned - tables
    assert not unknown, f"docs/architecture.md names tables the schema does not have: {sorted(unknown)}"
    unowned = tables - owned - {"alembic_version"}
    assert not unowned, f"tables with no owner in docs/architecture.md: {sorted(unowned)}"


@pytest.mark.parametrize("doc", ["architecture.md", "testing.md"])
def test_every_path_the_guides_name_exists(doc: str) -> None:
    text = (ROOT / "docs" / doc).read_text()
    paths = {m.split(":")[0] for m in re.findall(r"`((?:backend|app|pages|tests|bench|docs)/[^`\s]*)`", text)}
    paths.add(".importlinter")
    missing = sorted(p for p in paths if "<" not in p and not (ROOT / p).exists())
    assert not missing, f"{doc} names paths that do not exist: {missing}"


def test_the_fixtures_the_testing_guide_recommends_exist() -> None:
    conftests = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("conftest.py"))
    recommended = ["db", "sqlite_database", "pg_database", "pg_template", "model_registry", "scoring_services",
                   "sim_services", "cli_env", "api", "api_sqlite", "console", "console_server",
                   "console_server_factory"]
    for name in recommended:
        assert f"`{name}`" in TESTING, name
        assert re.search(rf"^def {name}\(", conftests, re.M), f"fixture {name} is not defined in any conftest.py"


def test_the_layers_in_the_guide_are_the_contract() -> None:
    contract = (ROOT / ".importlinter").read_text()
    layers = re.findall(r"^\s+(backend\.[a-z_]+)\s*$", contract.split("type = layers", 1)[1].split("[", 1)[0], re.M)
    documented = re.findall(r"backend\.[a-z_]+", ARCH.split("## Layers", 1)[1].split("```", 2)[1])
    assert layers and documented == layers


def test_the_readme_points_to_the_guides_and_names_no_old_paths() -> None:
    assert "docs/architecture.md" in README and "docs/testing.md" in README
    for old in ("backend/services/", "backend/db/repo_", "backend/adapters/", "backend/model/", "config_"):
        assert old not in README, f"README still names {old!r}, which no longer exists"
