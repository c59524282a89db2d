"""Cells for CSV files that people open in a spreadsheet."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from typing import Any

# A cell starting with one of these is run as a formula by spreadsheets (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(text: str) -> str:
    """The text, with a leading quote if a spreadsheet would read it as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_records(
    reader: Any, on_error: Callable[[int, str], None]
) -> Iterator[tuple[int, list[str]]]:
    """The records of a csv.reader with the line each starts on, blank lines left out
    (spreadsheets leave them); a record that cannot be read goes to `on_error` (line,
    what is wrong) and ends the file."""
    while True:
        line = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            on_error(line, str(e))
            return
        if any(cell.strip() for cell in record):
            yield line, record
