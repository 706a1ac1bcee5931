"""The CLI's one progress style (backend/platform/cli.py ``progress_bar``): a ``(step, done, total)`` callback
drawn with rich, one final line when the output is not a terminal, step text never read as markup."""

from __future__ import annotations

import io

from rich.console import Console

from backend.platform.cli import progress_bar
from backend.platform.ports import ProgressCallback


def _plain() -> tuple[io.StringIO, Console]:
    buf = io.StringIO()
    return buf, Console(file=buf, width=120, force_terminal=False)


def test_a_pipe_gets_one_line_with_the_last_step() -> None:
    buf, console = _plain()
    report: ProgressCallback = progress_bar("training", console=console)
    for i in range(1, 8):
        report(f"cv primary fold {i}/7", i, 7)
    lines = buf.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("training ") and " 7/7 " in lines[0] and lines[0].endswith("cv primary fold 7/7")


def test_step_text_is_shown_as_written_never_as_markup() -> None:
    buf, console = _plain()
    report = progress_bar("retraining", console=console)
    report("[bold red]not markup[/] [link=http://x]y[/link]", 1, 1)
    assert buf.getvalue().rstrip().endswith("[bold red]not markup[/] [link=http://x]y[/link]")


def test_a_report_after_the_end_starts_a_new_bar() -> None:
    buf, console = _plain()
    report = progress_bar("simulating", console=console)
    report("day 1", 1, 2)
    report("day 2", 2, 2)
    report("again 1", 1, 1)
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].endswith("day 2") and lines[1].endswith("again 1")


def test_a_terminal_sees_the_bar_move_and_the_cursor_back() -> None:
    buf = io.StringIO()
    report = progress_bar("training", console=Console(file=buf, width=120, force_terminal=True))
    for i in range(1, 4):
        report(f"step {i}", i, 3)
    text = buf.getvalue()
    assert "1/3" in text and "2/3" in text and "3/3" in text
    assert text.endswith("\x1b[?25h")  # the cursor is shown again once the bar closes


def test_a_total_that_grows_is_followed() -> None:
    """A caller that learns the total as it goes (the operations simulator counts days)."""
    buf, console = _plain()
    report = progress_bar("simulating", console=console)
    report("2025-08-01", 1, 3)
    report("2025-08-02", 2, 5)
    report("2025-08-05", 5, 5)
    assert " 5/5 " in buf.getvalue()
