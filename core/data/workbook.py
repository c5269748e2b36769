"""Reading one sheet of a spreadsheet (Excel .xlsx/.xlsm/.xls/.xlsb, OpenDocument .ods) as a table of records.

The cells are read by python-calamine (Rust's calamine: fast, no formulas evaluated, the values a spreadsheet
program last saved). Rows are numbered as the spreadsheet shows them, so a message's "row 7" is row 7 on screen.
What stops the read names the sheet and the cells: merged cells in the header row, a header that repeats a name,
an empty sheet. A formula whose result was never saved (a file written by a program rather than saved by a
spreadsheet program) reads as empty and is reported with its cell, as is a row shorter than the header.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods")
#: The file types whose sheet XML can be read for formulas (the zipped Office Open XML ones).
OPEN_XML_SUFFIXES = (".xlsx", ".xlsm")
#: At most this many formula cells are listed one by one; the rest are counted.
LISTED_CELLS = 20

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_DOC_RELS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"


class WorkbookError(ValueError):
    """The workbook or the chosen sheet cannot be read as a table; the message says where and what to do."""


def is_spreadsheet(name: str) -> bool:
    return Path(name).suffix.lower() in SPREADSHEET_SUFFIXES


def column_letters(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA: a column as the spreadsheet names it."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def cell_name(row: int, column: int) -> str:
    """A 0-based (row, column) as the spreadsheet names the cell (B7)."""
    return f"{column_letters(column)}{row + 1}"


def cell_value(value: Any) -> Any:
    """A cell as a record's value: whole numbers as int (1, not 1.0), dates and times as ISO text, "" for empty."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    return "" if value is None else value


def open_workbook(data: bytes, name: str):
    """The workbook in ``data``; a file that is not a readable spreadsheet is refused in words."""
    from python_calamine import CalamineWorkbook

    try:
        return CalamineWorkbook.from_filelike(io.BytesIO(data))
    except Exception as exc:  # calamine raises its own kinds for zip, XML and password problems
        raise WorkbookError(f"{name}: this spreadsheet cannot be opened ({type(exc).__name__}: {exc}); save it "
                            "again from the spreadsheet program, or as CSV, and upload that") from exc


def sheet_names(data: bytes, name: str) -> list[str]:
    """The workbook's sheets in their order."""
    return list(open_workbook(data, name).sheet_names)


def _merged_in_header(sheet, header_row: int) -> list[str]:
    """The merged cell ranges that touch the header row, as A1:C1."""
    ranges = []
    for (top, left), (bottom, right) in sheet.merged_cell_ranges or []:
        if top <= header_row <= bottom:
            ranges.append(f"{cell_name(top, left)}:{cell_name(bottom, right)}")
    return ranges


def _sheet_part(archive: zipfile.ZipFile, sheet: str) -> str | None:
    """The path inside an .xlsx of the sheet called ``sheet``."""
    workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
    rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    targets = {r.get("Id"): r.get("Target") for r in rels.iter(f"{_RELS}Relationship")}
    for entry in workbook.iter(f"{_MAIN}sheet"):
        if entry.get("name") == sheet:
            target = targets.get(entry.get(f"{_DOC_RELS}id"), "")
            return target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
    return None


def formulas_without_results(data: bytes, sheet: str) -> list[str]:
    """The cells of an .xlsx sheet that hold a formula but no saved result (they read as empty)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            part = _sheet_part(archive, sheet)
            if part is None:
                return []
            cells = []
            with archive.open(part) as stream:
                for _, element in ElementTree.iterparse(stream):
                    if element.tag == f"{_MAIN}c":
                        result = element.find(f"{_MAIN}v")
                        if element.find(f"{_MAIN}f") is not None and (result is None or not result.text):
                            cells.append(element.get("r", "?"))
                        element.clear()
            return cells
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError):
        return []  # not the usual layout: the values read are still right, only this hint is lost


def _filled_rows(workbook, sheet: str) -> tuple[list[list], list[int]]:
    """A sheet's rows from A1 on, and the indices of the rows with at least one value."""
    rows = workbook.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
    return rows, [i for i, row in enumerate(rows) if any(cell_value(v) != "" for v in row)]


def read_sheet(data: bytes, name: str, sheet: str | None = None) -> tuple[str, list[str], list[tuple[int, dict]],
                                                                            list[tuple[int, str]]]:
    """Read ``sheet`` (when None, the first sheet with a header and a data row): its name, the header, each data
    row with its row number as shown (1-based), and (row number, message) for each cell that reads wrongly."""
    workbook = open_workbook(data, name)
    names = list(workbook.sheet_names)
    if not names:
        raise WorkbookError(f"{name}: the workbook has no sheets")
    if sheet is not None and sheet not in names:
        raise WorkbookError(f"{name}: there is no sheet called '{sheet}'; its sheets are: {', '.join(names)}")
    for chosen in [sheet] if sheet is not None else names:  # by default the first with a header and a data row
        rows, filled = _filled_rows(workbook, chosen)
        if len(filled) > 1:
            break
    else:
        if sheet is None:  # none has data: the first one's problem is reported
            chosen = names[0]
            rows, filled = _filled_rows(workbook, chosen)
    worksheet = workbook.get_sheet_by_name(chosen)
    others = [n for n in names if n != chosen]
    if not filled:
        hint = f"; pick another sheet ({', '.join(others)})" if others else ""
        raise WorkbookError(f"{name}: sheet '{chosen}' is empty{hint}")
    header_row = filled[0]
    if merged := _merged_in_header(worksheet, header_row):
        raise WorkbookError(f"{name}, sheet '{chosen}': the header row {header_row + 1} has merged cells "
                            f"({', '.join(merged)}); unmerge them so that every column has its own name in one cell")
    header = [str(cell_value(v)).strip() or f"column_{column_letters(i)}" for i, v in enumerate(rows[header_row])]
    while header and header[-1].startswith("column_") and not any(
            len(row) >= len(header) and cell_value(row[len(header) - 1]) != "" for row in rows[header_row + 1:]):
        header.pop()  # trailing columns with neither a name nor a value
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise WorkbookError(f"{name}, sheet '{chosen}': the header row {header_row + 1} repeats the column name(s) "
                            f"{', '.join(repeated)}; give every column its own name")
    records, problems = [], []
    for index in filled[1:]:
        values = [cell_value(v) for v in rows[index][:len(header)]]
        records.append((index + 1, dict(zip(header, values + [""] * (len(header) - len(values))))))
    if Path(name).suffix.lower() in OPEN_XML_SUFFIXES:
        cells = formulas_without_results(data, chosen)
        for cell in cells[:LISTED_CELLS]:
            row = int("".join(ch for ch in cell if ch.isdigit()) or 0)
            problems.append((row, f"cell {cell} holds a formula whose result was never saved, so it reads as "
                                  "empty; open the file in a spreadsheet program, save it, and upload it again"))
        if len(cells) > LISTED_CELLS:
            problems.append((0, f"{len(cells) - LISTED_CELLS:,} more formula cell(s) without a saved result"))
    return chosen, header, records, problems
