"""The shape of the code, checked on every run (the rules are in docs/architecture.md and the brief).

``lint-imports`` (.importlinter) holds the import order between packages; this file holds what it cannot
express or what would let a new file escape it:

* every module under ``backend/`` and ``app/`` stays at or under 400 lines, every page at or under 150; the
  modules still over are listed below with the reason and their size today, and a listed one may not grow,
  and must leave the list once it is split (so the list only shrinks);
* pages and the console shell import only ``backend.container``, ``backend.domain``, feature packages
  (never one of their modules), ``app.*``, the standard library and third-party packages; they build no
  service (everything comes from ``app.services``), and ``app/`` has no import cycle;
* no module in ``backend/`` imports ``backend.container`` except the entry points and the container itself;
* no test writes into a ``Services`` bundle (``__dict__``, or ``setattr`` of one of its services): tests
  pass overrides to ``build_services``;
* ``.importlinter`` has a "used through its package" contract for every feature package that exists, and
  the layers contract places every package of ``backend/``.

Imports are read with :mod:`ast`, function-level ones included. Each failure names the file, the line and
the rule it breaks.
"""

from __future__ import annotations

import ast
import configparser
import dataclasses
import importlib
import inspect
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULE_LIMIT = 400
PAGE_LIMIT = 150
#: Packages of backend/ that are not features: the shared base, the composition root and the entry points.
INFRASTRUCTURE = frozenset({"platform", "container"})
ENTRY_POINTS = frozenset({"api", "cli", "serving", "simulation"})
#: Files outside the entry-point packages allowed to import backend.container, and why.
CONTAINER_IMPORTERS = {
    "backend/platform/db/migrations/env.py": "the `alembic` command line's environment: an entry point of its own "
                                             "(the app hands Alembic its engine and never runs this branch)",
}
#: Modules over the limit today, each with its size now (it may not grow) and the reason. Remove an entry once
#: its module is split; an entry whose module is back under the limit fails, so the list only shrinks.
OVERSIZED: dict[str, tuple[int, str]] = {}
#: Class-name endings of what the composition root builds: a page or the shell that calls one builds a service.
BUILT_BY_THE_CONTAINER = ("Service", "Services", "Admin", "Registry", "Repository", "Retrainer", "Deployer",
                          "Engine", "Router", "Provider", "Store", "Simulator")


# ------------------------------------------------------------------------------------------ helpers
def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _py(*dirs: str) -> list[Path]:
    return sorted(p for d in dirs for p in (ROOT / d).rglob("*.py"))


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(source: str, module: str, is_package: bool = False) -> Iterator[tuple[int, str]]:
    """``(line, imported module or module.name)`` for every import in ``source``, function-level ones and
    relative ones (resolved against ``module``) included, and ``importlib.import_module("...")`` calls."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            yield node.lineno, base
            for a in node.names:
                if a.name != "*":
                    yield node.lineno, f"{base}.{a.name}"
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ast.unparse(node.func) in ("importlib.import_module", "import_module", "__import__")):
            yield node.lineno, node.args[0].value


def _imports_of(path: Path) -> Iterator[tuple[int, str]]:
    return imports(path.read_text(encoding="utf-8"), _module_name(path), path.name == "__init__.py")


def _packages() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "backend").glob("*/__init__.py"))


def _features() -> list[str]:
    """Feature packages of backend/ (``domain`` included): what the console may import, each behind its
    package ``__init__``."""
    return [p for p in _packages() if p not in INFRASTRUCTURE | ENTRY_POINTS]


def _is_module(dotted: str) -> bool:
    """``dotted`` names a module or package (not a name defined in one) in this checkout."""
    base = ROOT / Path(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


# ------------------------------------------------------------------------------------------ sizes
def _sized() -> list[tuple[str, int, int]]:
    """(file, lines, limit) of every module the size rules cover."""
    out = [(_rel(p), _lines(p), MODULE_LIMIT) for p in _py("backend", "app")]
    return out + [(_rel(p), _lines(p), PAGE_LIMIT) for p in _py("pages")]


def test_modules_and_pages_stay_small() -> None:
    bad = []
    for rel, n, limit in _sized():
        kind = "page" if limit == PAGE_LIMIT else "module"
        if rel in OVERSIZED:
            allowed, why = OVERSIZED[rel]
            if n > allowed:
                bad.append(f"{rel}: {n} lines, more than the {allowed} it is allowed while listed in OVERSIZED "
                           f"({why}): split it instead of growing it")
        elif n > limit:
            bad.append(f"{rel}: {n} lines; a {kind} stays at or under {limit} lines: split it along its seams "
                       f"(a new big {kind} is never added to OVERSIZED)")
    assert not bad, "\n".join(bad)


def test_the_oversized_list_only_shrinks() -> None:
    sizes = {rel: (n, limit) for rel, n, limit in _sized()}
    stale = [f"{rel}: listed in OVERSIZED but " + (f"now {sizes[rel][0]} lines, within the limit of {sizes[rel][1]}"
                                                    if rel in sizes else "gone") + ": remove its entry"
             for rel in OVERSIZED if rel not in sizes or sizes[rel][0] <= sizes[rel][1]]
    assert not stale, "\n".join(stale)


# ------------------------------------------------------------------------------------------ the console
def console_import_problem(imported: str, features: list[str]) -> str | None:
    """Why a page or a console module may not import ``imported`` (None: it may)."""
    top = imported.split(".")[0]
    if top == "pages":
        return "pages are scripts Streamlit runs, never imported"
    if top != "backend":
        return None  # app.*, the standard library, third-party packages
    parts = imported.split(".")
    if len(parts) == 1:
        return "import what it needs from backend.container, backend.domain or a feature package"
    allowed = {"container", "domain", *features}
    if parts[1] not in allowed:
        return (f"backend.{parts[1]} is not for the console (it uses backend.container, backend.domain and the "
                "feature packages only)")
    if len(parts) > 2 and _is_module(imported):
        return f"{imported} is a module inside a package: import it from backend.{parts[1]} (its __init__)"
    return None


def test_the_console_imports_only_the_container_the_domain_and_feature_packages() -> None:
    features = _features()
    bad = []
    for path in _py("pages", "app"):
        flagged: set[int] = set()
        for line, imported in _imports_of(path):
            why = console_import_problem(imported, features)
            if why and line not in flagged:  # one message per import statement
                flagged.add(line)
                bad.append(f"{_rel(path)}:{line}: imports {imported}: {why}")
    assert not bad, "\n".join(bad)


def _called_backend_classes(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, backend name)`` of each call in ``path`` to a class imported from ``backend``, and of each
    ``.from_services(...)`` call."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("backend"):
            for a in node.names:
                names[a.asname or a.name] = f"{node.module}.{a.name}"
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Attribute) and node.func.attr == "from_services":
            yield node.lineno, ast.unparse(node.func)
        elif isinstance(node.func, ast.Name) and node.func.id in names:
            module, _, name = names[node.func.id].rpartition(".")
            obj = getattr(importlib.import_module(module), name, None)
            if name == "build_services" or (inspect.isclass(obj) and name.endswith(BUILT_BY_THE_CONTAINER)):
                yield node.lineno, names[node.func.id]


def test_pages_and_the_shell_build_no_service() -> None:
    bad = [f"{_rel(p)}:{line}: calls {name}: pages and the shell build no service; take it from "
           "app.services.get_services() (the container builds it)"
           for p in _py("pages", "app") if _rel(p) != "app/services.py"
           for line, name in _called_backend_classes(p)]
    assert not bad, "\n".join(bad)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_console_shell_has_no_import_cycle() -> None:
    modules = {_module_name(p): p for p in _py("app")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name] = {m for _, imported in _imports_of(path)
                       for m in (imported, imported.rpartition(".")[0]) if m in modules and m != name}
    found = _cycle(graph)
    assert found is None, ("app/ has an import cycle (function-level imports count): " + " -> ".join(found or [])
                           + "; move what both need into a module both import (e.g. session keys into app/guard.py)")


# ------------------------------------------------------------------------------------------ backend
def test_only_entry_points_import_the_container() -> None:
    bad = []
    for path in _py("backend"):
        rel = _rel(path)
        package = rel.split("/")[1] if rel.count("/") > 1 else ""
        if package in ENTRY_POINTS | {"container"} or rel in CONTAINER_IMPORTERS:
            continue
        for line, imported in _imports_of(path):
            if imported == "backend.container" or imported.startswith("backend.container."):
                bad.append(f"{rel}:{line}: imports {imported}: only the entry points ({', '.join(sorted(ENTRY_POINTS))})"
                           " import the composition root; a service receives what it needs in its constructor")
                break
    assert not bad, "\n".join(bad)


def test_the_container_importers_allowance_is_not_stale() -> None:
    stale = [rel for rel in CONTAINER_IMPORTERS
             if not (ROOT / rel).is_file() or not any(i.startswith("backend.container")
                                                      for _, i in _imports_of(ROOT / rel))]
    assert not stale, f"CONTAINER_IMPORTERS lists files that no longer import backend.container: {stale}"


# ------------------------------------------------------------------------------------------ tests
def _services_members() -> frozenset[str]:
    from backend.container import Services

    fields = {f.name for f in dataclasses.fields(Services)}
    return frozenset(fields | {n for n, v in vars(Services).items() if isinstance(v, cached_property | property)})


def bundle_writes(source: str, members: frozenset[str]) -> Iterator[tuple[int, str]]:
    """``(line, code)`` of each ``x.__dict__`` and each ``setattr(bundle, "<service>", ...)`` on something
    named like a Services bundle (``svc``, ``services``, ``x.svc``, ``x.services``)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr == "__dict__":
            yield node.lineno, ast.unparse(node)
        elif (isinstance(node, ast.Call) and ast.unparse(node.func).endswith("setattr") and len(node.args) >= 2
              and isinstance(node.args[1], ast.Constant) and node.args[1].value in members):
            target = node.args[0]
            last = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
            if last in ("svc", "services", "services_", "bundle"):
                yield node.lineno, ast.unparse(node)


def test_tests_pass_overrides_instead_of_writing_into_services() -> None:
    members = _services_members()
    me = Path(__file__).resolve()
    bad = [f"{_rel(p)}:{line}: {code}: tests never write into a Services bundle; pass the fake to "
           "build_services(settings, <name>=fake)"
           for p in _py("tests") if p.resolve() != me
           for line, code in bundle_writes(p.read_text(encoding="utf-8"), members)]
    assert not bad, "\n".join(bad)


# ------------------------------------------------------------------------------------------ .importlinter
def _contracts() -> dict[str, configparser.SectionProxy]:
    cfg = configparser.ConfigParser()
    assert cfg.read(ROOT / ".importlinter"), ".importlinter is missing"
    return {name: cfg[name] for name in cfg.sections() if name.startswith("importlinter:contract:")}


def _values(section: configparser.SectionProxy, key: str) -> list[str]:
    return [v.strip() for v in section.get(key, "").splitlines() if v.strip() and not v.strip().startswith("#")]


def test_every_feature_package_is_protected_by_a_contract() -> None:
    contracts = _contracts()
    bad = []
    for feature in _features():
        pkg = f"backend.{feature}"
        found = [name for name, c in contracts.items() if c.get("type") == "protected"
                 and f"{pkg}.*" in _values(c, "protected_modules") and pkg in _values(c, "allowed_importers")]
        if not found:
            bad.append(f".importlinter: no protected contract for {pkg} (protected_modules = {pkg}.*, "
                       f"allowed_importers = {pkg}): backend/{feature}/ could be used through its modules")
            continue
        for name in found:
            extra = [i for i in _values(contracts[name], "ignore_imports") if i != f"backend.cli -> {pkg}.cli"]
            if extra:
                bad.append(f".importlinter [{name}]: ignore_imports {extra}: a feature's only exception is the "
                           f"root command registering its commands (backend.cli -> {pkg}.cli)")
    assert not bad, "\n".join(bad)


def test_the_layers_contract_places_every_package() -> None:
    layers = [c for c in _contracts().values() if c.get("type") == "layers"
              and any(v.startswith("backend.") for v in _values(c, "layers"))]
    assert len(layers) == 1, ".importlinter: expected one layers contract over backend/"
    placed = set(_values(layers[0], "layers"))
    missing = [f"backend.{p}" for p in _packages() if f"backend.{p}" not in placed]
    assert not missing, (f".importlinter: the layers contract does not place {missing}: a package outside the "
                         "order escapes it; add it at its level")


def test_the_console_contract_forbids_the_platform_and_every_entry_point() -> None:
    console = [c for c in _contracts().values() if c.get("type") == "forbidden"
               and {"app", "pages"} <= set(_values(c, "source_modules"))]
    assert console, ".importlinter: no forbidden contract with source_modules app and pages"
    forbidden = set(_values(console[0], "forbidden_modules"))
    missing = sorted({f"backend.{p}" for p in ENTRY_POINTS | {"platform"}} - forbidden)
    assert not missing, f".importlinter: the console contract does not forbid {missing}"


def test_the_entry_point_and_infrastructure_lists_match_the_tree() -> None:
    unknown = sorted((ENTRY_POINTS | INFRASTRUCTURE) - set(_packages()))
    assert not unknown, f"test_architecture lists packages that are not in backend/: {unknown}"


# ------------------------------------------------------------------------------------------ the checkers
@pytest.mark.parametrize(("imported", "expected"), [
    ("streamlit", None), ("app.components.text", None), ("backend.container", None),
    ("backend.container.Services", None), ("backend.domain.Perm", None), ("backend.rollout.Phase", None),
    ("backend.container.settings", "a module inside a package"), ("backend.rollout.service", "a module inside"),
    ("backend.platform.db", "not for the console"), ("backend.api", "not for the console"),
    ("backend.simulation.operations", "not for the console"), ("backend", "import what it needs"),
    ("pages.home", "never imported"),
])
def test_console_import_rule(imported: str, expected: str | None) -> None:
    why = console_import_problem(imported, _features())
    assert (why is None) if expected is None else (why is not None and expected in why), why


def test_imports_sees_function_level_relative_and_dynamic_imports() -> None:
    src = ("import os\n"
           "def f():\n    from backend.container.settings import load_settings\n"
           "from . import sso\nfrom .guard import USER_KEY\n"
           "importlib.import_module('backend.container')\n")
    found = set(imports(src, "app.auth"))
    assert {(3, "backend.container.settings"), (4, "app.sso"), (5, "app.guard.USER_KEY"),
            (6, "backend.container"), (1, "os")} <= found


def test_bundle_writes_catches_dict_and_setattr_but_not_fault_injection() -> None:
    members = frozenset({"drift", "scoring"})
    src = ("svc.__dict__['drift'] = fake\n"
           "monkeypatch.setattr(a.svc, 'drift', fake)\n"
           "setattr(services, 'scoring', x)\n"
           "monkeypatch.setattr(a.svc.scoring, 'prepare', boom)\n"
           "monkeypatch.setattr(module, 'drift', x)\n")
    assert sorted(line for line, _ in bundle_writes(src, members)) == [1, 2, 3]


def test_cycle_finder() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert _cycle({"app.auth": {"app.sso"}, "app.sso": {"app.auth"}}) == ["app.auth", "app.sso", "app.auth"]


def test_sys_path_sees_this_checkout() -> None:
    """The rules read this checkout's files; the imports they resolve must come from it too (PYTHONPATH)."""
    import backend

    assert Path(backend.__file__).resolve().parent == ROOT / "backend", (
        f"backend imported from {backend.__file__}, not from {ROOT}: export PYTHONPATH={ROOT}")
