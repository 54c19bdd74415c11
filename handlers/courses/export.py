"""A course roster as rows and as an .xlsx workbook (the CLI and the console share this)."""
from __future__ import annotations

import re
from typing import BinaryIO, Callable

from handlers.courses import service

WIDTHS = (12, 14, 20, 12, 18, 10)


def roster_lines(render: Callable, rows: list[service.RosterRow]) -> list[list[str]]:
    """Name, phone, branch, state, signed-up time, who signed up — one list per person."""
    return [[row.name, row.phone, row.branch or "",
             render("courses/roster_state", state=row.state, position=row.position),
             row.signed_up_at.strftime("%Y-%m-%d %H:%M"),
             render("courses/roster_by", on_behalf=row.on_behalf)] for row in rows]


def write_roster_xlsx(target, render: Callable, title: str, lines: list[list[str]]) -> None:
    """Write the roster workbook to a path or a binary file object."""
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = re.sub(r"[\[\]:*?/\\]", "", title)[:31] or "roster"
    sheet.append(render("courses/roster_header").split("\t"))
    for line in lines:
        sheet.append(line)
    for row in sheet.iter_rows():
        for cell in row:
            if cell.data_type == "f":  # a name like `=HYPERLINK(…)` is text, never a formula
                cell.data_type = "s"
    for column, width in zip("ABCDEF", WIDTHS):
        sheet.column_dimensions[column].width = width
    workbook.save(target)


def roster_xlsx_bytes(render: Callable, title: str, lines: list[list[str]]) -> bytes:
    """The roster workbook in memory (for a download)."""
    import io

    buffer: BinaryIO = io.BytesIO()
    write_roster_xlsx(buffer, render, title, lines)
    return buffer.getvalue()
