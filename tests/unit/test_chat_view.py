"""The chat's reply view: answer on stdout, reasoning on stderr, folded, shown or hidden."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from rich.console import Console

from edgeoss.cli.chat_view import ReplyView


def clock() -> Iterator[float]:
    yield from (10.0, 12.5, 99.0)


def play(mode: str, terminal: bool) -> tuple[str, str, ReplyView]:
    err_file, out = io.StringIO(), io.StringIO()
    err = Console(file=err_file, force_terminal=terminal, color_system=None, width=200)
    ticks = clock()
    view = ReplyView(mode, err, out, clock=lambda: next(ticks))
    for i, piece in enumerate(["The user ", "wants ", "weather."], start=1):
        view.reasoning(piece, tokens=i * 2)
    view.answer("It is ")
    view.answer("sunny.")
    view.finish()
    return err_file.getvalue(), out.getvalue(), view


@pytest.mark.parametrize("mode", ["fold", "show", "hide"])
@pytest.mark.parametrize("terminal", [False, True])
def test_the_answer_alone_goes_to_stdout(mode: str, terminal: bool) -> None:
    _, out, view = play(mode, terminal)
    assert out == "It is sunny.\n"
    assert view.reasoning_text == "The user wants weather."


def test_fold_is_one_line_with_time_and_tokens() -> None:
    err, _, _ = play("fold", terminal=False)
    assert err == "▸ reasoned for 2.5 s, 6 tokens (/show to expand)\n"


def test_fold_on_a_terminal_counts_live_then_clears_the_line() -> None:
    err, _, _ = play("fold", terminal=True)
    assert "\r\x1b[2mthinking… 2 tokens" in err and "thinking… 6 tokens" in err
    assert "\r\x1b[K" in err  # the live line is erased before the folded one
    assert err.rstrip().endswith("▸ reasoned for 2.5 s, 6 tokens (/show to expand)")
    assert "The user" not in err


def test_show_streams_the_reasoning_and_hide_shows_nothing() -> None:
    shown, _, _ = play("show", terminal=False)
    assert shown == "The user wants weather.\n"
    hidden, _, _ = play("hide", terminal=True)
    assert hidden == ""


def test_a_reply_without_reasoning_prints_no_fold_line() -> None:
    err_file, out = io.StringIO(), io.StringIO()
    view = ReplyView("fold", Console(file=err_file, color_system=None), out)
    view.answer("Hi.")
    view.finish(stopped=True)
    assert out.getvalue() == "Hi.\n"
    assert err_file.getvalue().strip() == "[stopped]"


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="fold, show, hide"):
        ReplyView("collapse", Console(file=io.StringIO()))


def _tools(mode: str) -> tuple[str, str, ReplyView]:
    err_file, out = io.StringIO(), io.StringIO()
    view = ReplyView(mode, Console(file=err_file, color_system=None, width=200), out)
    view.tool("builtin_call", "python", "import math\nmath.factorial(20)")
    view.tool("builtin_result", "python", "2432902008176640000")
    view.answer("Done.")
    view.finish()
    return err_file.getvalue(), out.getvalue(), view


def test_a_tool_call_folds_to_one_line_and_stays_out_of_the_answer() -> None:
    err, out, view = _tools("fold")
    assert err == "▸ python: import math → 2432902008176640000\n" and out == "Done.\n"
    assert "math.factorial(20)" in view.tool_text  # /show has it all


def test_a_tool_call_shown_in_full_or_hidden() -> None:
    shown, out, _ = _tools("show")
    assert "[python]\nimport math\nmath.factorial(20)" in shown and "[python answered]\n2432902008176640000" in shown
    assert out == "Done.\n"
    hidden, _, _ = _tools("hide")
    assert hidden == ""
