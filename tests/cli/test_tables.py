from __future__ import annotations

import io

from rich.console import Console

from archdesign.cli.common import Column, print_table


def _print(width: int, columns: list[Column], rows: list[list[str]],
           terminal: bool = False) -> tuple[str, list[str]]:
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=terminal, color_system=None)
    dropped = print_table(console, "a title", columns, rows)
    return out.getvalue(), dropped


_COLUMNS = [Column("name", kind="name"), Column("latency"), Column("params", drop=1),
            Column("note", kind="text", drop=2)]
_ROWS = [["resnet-bottleneck-ratio", "12.345 ms", "25.557M", "a long note that wraps"],
         ["mobilenet", "0.5 ms", "3.5M", "short"]]


def test_a_wide_console_shows_every_column_as_plain_aligned_text() -> None:
    text, dropped = _print(120, _COLUMNS, _ROWS)
    assert dropped == []
    assert text.splitlines() == [
        "a title",
        "name                       latency   params  note                  ",
        "resnet-bottleneck-ratio  12.345 ms  25.557M  a long note that wraps",
        "mobilenet                   0.5 ms     3.5M  short                 "]


def test_text_wraps_then_columns_are_dropped_highest_first() -> None:
    text, dropped = _print(52, _COLUMNS, _ROWS)
    assert dropped == []  # the note wraps
    lines = text.splitlines()
    assert all(len(line) <= 52 for line in lines)
    assert lines[2].startswith("resnet-bottleneck-ratio  12.345 ms  25.557M  a long")
    assert " ".join(" ".join(line.split()) for line in lines[2:-1]).endswith(
        "a long note that wraps")  # the note wraps over the lines below
    text, dropped = _print(46, _COLUMNS, _ROWS)
    assert dropped == ["note"]
    assert "resnet-bottleneck-ratio  12.345 ms  25.557M" in text
    assert "(left out to fit 46 columns: note)" in text
    text, dropped = _print(34, _COLUMNS, _ROWS)
    assert dropped == ["note", "params"]
    assert "resnet-bottleneck-ratio  12.345 ms" in text and "…" not in text


def test_names_wrap_only_when_nothing_is_left_to_drop() -> None:
    text, dropped = _print(20, _COLUMNS, _ROWS)
    assert dropped == ["note", "params"]
    assert all(len(line) <= 20 for line in text.splitlines())
    assert "12.345 ms" in text and "…" not in text  # numbers stay whole
    lines = text.splitlines()
    # the name folds over lines, whole when read down its column
    assert "".join(line[:10].strip() for line in lines[2:5]) == "resnet-bottleneck-ratio"


def test_a_terminal_gets_borders_that_fit() -> None:
    text, _ = _print(60, _COLUMNS, _ROWS, terminal=True)
    assert "┃" in text and all(len(line) <= 60 for line in text.splitlines())
    assert "12.345 ms" in text and "…" not in text
