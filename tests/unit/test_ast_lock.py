"""app/ast_lock.py: ``ast.parse`` serialised in the console's process (CPython 3.11's AST converter is not safe
across threads), same results, idempotent, and parsing from many threads at once fails nothing."""

from __future__ import annotations

import ast
import threading

from app import ast_lock

SOURCE = "def f(x):\n    return [y for y in range(x) if y % 2]\n" * 200


def test_the_locked_parse_gives_the_same_tree_and_installs_once() -> None:
    ast_lock.install()
    first = ast.parse
    ast_lock.install()
    assert ast.parse is first is ast_lock._locked_parse
    assert ast.dump(ast.parse(SOURCE)) == ast.dump(ast_lock._parse(SOURCE))
    assert ast.parse("x = 1", mode="exec", type_comments=True).body[0].targets[0].id == "x"


def test_many_threads_parse_at_once_without_error() -> None:
    ast_lock.install()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(30):
                ast.parse(SOURCE)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
