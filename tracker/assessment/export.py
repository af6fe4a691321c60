"""CSV and XLSX files of the reports: one sheet per report, units in the headers."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from openpyxl import Workbook
from openpyxl.utils import get_column_letter

from .tables import Column


@dataclass(frozen=True, slots=True)
class Sheet:
    """A report as a sheet: its title, its columns and its rows of facts."""

    title: str
    columns: Sequence[Column]
    rows: Sequence[dict[str, Any]]

    def header(self) -> list[str]:
        """Return the column headers in the current language."""
        return [str(c.header) for c in self.columns]

    def values(self) -> list[list[Any]]:
        """Return the cells of every row."""
        return [[c.value(row) for c in self.columns] for row in self.rows]


# A cell a spreadsheet would run as a formula: names and notes come from people's input.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _inert(value: Any) -> Any:
    """Return a text cell that starts like a formula with a quote before it (CSV)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(sheet: Sheet) -> bytes:
    """Return a sheet as CSV in UTF-8 with a byte-order mark, so Excel reads the Chinese."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(sheet.header())
    writer.writerows([_inert(v) for v in values] for values in sheet.values())
    return out.getvalue().encode("utf-8-sig")


def to_xlsx(sheets: Sequence[Sheet]) -> bytes:
    """Return sheets as an XLSX workbook, one worksheet each, headers frozen."""
    book = Workbook()
    book.remove(book.active)
    for sheet in sheets:
        ws = book.create_sheet(sheet.title[:31])
        ws.append(sheet.header())
        for values in sheet.values():
            ws.append(values)
            for cell in ws[ws.max_row]:
                if isinstance(cell.value, str) and cell.value.startswith("="):
                    cell.data_type = "s"  # text, never a formula
        ws.freeze_panes = "A2"
        for i, header in enumerate(sheet.header(), start=1):
            ws.column_dimensions[get_column_letter(i)].width = max(10, min(40, len(header) * 2))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
