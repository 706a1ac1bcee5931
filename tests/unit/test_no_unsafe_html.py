"""No page renders user or LLM text as HTML.

Every file under ``pages/`` and ``app/`` is parsed (ast). A call fails the test when it
* passes ``unsafe_allow_html=True`` (``st.markdown``, ``st.write``, ``st.caption``...) with any
  argument that is not a constant string literal, or passes a non-constant ``unsafe_allow_html``;
* calls ``st.html(...)`` or ``streamlit.components.v1.html(...)`` with a non-constant argument.
Constant literals are allowed (fixed markup written in the code cannot carry user or LLM text).
Imports are followed (``import streamlit.components.v1 as components``, ``from streamlit import html``).
A non-constant use that was reviewed is listed in ``REVIEWED`` with why it is safe; an entry that no
longer matches the code fails too, so the list cannot outlive the code it excuses.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML_SINKS = frozenset({"streamlit.html", "streamlit.components.v1.html"})
#: (file, call, argument) → why it is safe.
REVIEWED: dict[tuple[str, str, str], str] = {
    ("pages/drift.py", "streamlit.components.v1.html", "report[2]"):
        "evidently's self-contained drift report, built from the feature catalogue's names and validated "
        "numeric/categorical values (closed category sets), no free text, no LLM output; rendered inside "
        "the components iframe.",
    ("app/auth.py", "streamlit.html", "script"):
        "the cookie script of app.auth.cookie_script: fixed JavaScript around JSON-escaped literals (with <, > and "
        "& escaped too) of the configured cookie name and our own signed session token; no user or LLM text.",
}


def _aliases(tree: ast.AST) -> dict[str, str]:
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    out[a.asname] = a.name
                else:
                    out[a.name.split(".")[0]] = a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _dotted(func: ast.expr, aliases: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        return None
    return ".".join([aliases.get(func.id, func.id), *reversed(parts)])


def _constant_str(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def unsafe_calls(source: str) -> list[tuple[int, str, str]]:
    """``(line, call, offending argument source)`` for each unsafe call in ``source``."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func, aliases) or ast.unparse(node.func)
        content = [*node.args[:1], *(k.value for k in node.keywords if k.arg in ("body", "html"))]
        flag = next((k.value for k in node.keywords if k.arg == "unsafe_allow_html"), None)
        if flag is not None and not (isinstance(flag, ast.Constant) and flag.value is False):
            if not isinstance(flag, ast.Constant):
                found.append((node.lineno, name, "unsafe_allow_html=" + ast.unparse(flag)))
            else:
                shown = [*node.args, *(k.value for k in node.keywords if k.arg == "body")]  # st.write(a, b, ...)
                found += [(node.lineno, name, ast.unparse(v)) for v in shown if not _constant_str(v)]
        if name in HTML_SINKS:
            found += [(node.lineno, name, ast.unparse(v)) for v in content if not _constant_str(v)]
    return found


def _files() -> list[Path]:
    return sorted([*(ROOT / "pages").rglob("*.py"), *(ROOT / "app").rglob("*.py")])


def test_no_page_renders_non_constant_html() -> None:
    assert _files(), "no pages found"
    seen: set[tuple[str, str, str]] = set()
    bad = []
    for path in _files():
        rel = path.relative_to(ROOT).as_posix()
        for line, call, arg in unsafe_calls(path.read_text(encoding="utf-8")):
            key = (rel, call, arg)
            if key in REVIEWED:
                seen.add(key)
            else:
                bad.append(f"{rel}:{line}: {call}(... {arg} ...) renders non-constant HTML")
    assert not bad, "\n".join(bad)
    assert seen == set(REVIEWED), f"stale REVIEWED entries (remove them): {set(REVIEWED) - seen}"


@pytest.mark.parametrize(("source", "expected"), [
    ("import streamlit as st\nst.markdown(text, unsafe_allow_html=True)", [(2, "streamlit.markdown", "text")]),
    ("import streamlit as st\nst.markdown(f'<b>{name}</b>', unsafe_allow_html=True)",
     [(2, "streamlit.markdown", "f'<b>{name}</b>'")]),
    ("import streamlit as st\nst.write('<br>', reply, unsafe_allow_html=True)", [(2, "streamlit.write", "reply")]),
    ("import streamlit as st\nst.write('<br>', unsafe_allow_html=flag)",
     [(2, "streamlit.write", "unsafe_allow_html=flag")]),
    ("import streamlit as st\nst.html(answer)", [(2, "streamlit.html", "answer")]),
    ("from streamlit import html as h\nh(body=llm_text)", [(2, "streamlit.html", "llm_text")]),
    ("import streamlit.components.v1 as components\ncomponents.html(page, height=h)",
     [(2, "streamlit.components.v1.html", "page")]),
    ("import streamlit as st\nst.components.v1.html(x)", [(2, "streamlit.components.v1.html", "x")]),
    ("import streamlit as st\nst.markdown('<hr>' '<br>', unsafe_allow_html=True)\nst.html('<p>fixed</p>')\n"
     "st.markdown(text)\nst.markdown(text, unsafe_allow_html=False)", []),
])
def test_checker(source: str, expected: list[tuple[int, str, str]]) -> None:
    assert unsafe_calls(source) == expected
