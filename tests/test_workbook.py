"""Spreadsheets (Excel workbooks) read as tables: any sheet, rows numbered as the spreadsheet shows them, and
every way a sheet goes wrong named by its cells. The workbooks are real .xlsx files written by openpyxl."""

from __future__ import annotations

import io
from datetime import datetime

import pytest

from core.data.ingest import IngestError, guess_columns, read_feedback_bytes, read_feedback_file

LIMIT = 10_000_000


def workbook(**sheets: list[list]) -> bytes:
    """An .xlsx with one sheet per keyword (its rows), in order."""
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


TICKETS = [["id", "created", "ticket", "tags"],
           [1, datetime(2026, 11, 3, 9, 30), "The app crashed when I paid", "bug;payments"],
           [2, datetime(2026, 11, 4, 10, 0), "Nobody answered my email", "support"],
           [None, None, None, None],
           [3, datetime(2026, 11, 5, 8, 15), "Refund still missing", "payments"]]


def test_a_sheet_reads_as_records_numbered_like_its_rows():
    data = workbook(Notes=[["just a note"]], Tickets=[[], *TICKETS])
    table = read_feedback_bytes(data, "tickets.xlsx", LIMIT, sheet="Tickets")
    assert table.format == "spreadsheet" and table.sheets == ["Notes", "Tickets"] and table.sheet == "Tickets"
    assert table.columns == ["id", "created", "ticket", "tags"]
    assert table.lines == [3, 4, 6]  # row 1 empty, header in row 2, row 5 empty: as the spreadsheet shows them
    assert table.records[0] == {"id": 1, "created": "2026-11-03T09:30:00", "ticket": "The app crashed when I paid",
                                "tags": "bug;payments"}  # whole numbers stay whole, dates read as ISO text
    guess = guess_columns(table)
    assert (guess.text, guess.label) == ("ticket", "tags")


def test_the_first_sheet_with_data_rows_is_read_when_none_is_named(tmp_path):
    path = tmp_path / "tickets.xlsx"
    path.write_bytes(workbook(Notes=[["exported on 3 Nov"]], Tickets=TICKETS, Other=[["a"], ["b"]]))
    table = read_feedback_file(path, LIMIT)
    assert table.sheet == "Tickets" and len(table.records) == 3
    with pytest.raises(IngestError, match=r"sheet 'Notes': the sheet has a header row but no data rows; pick "
                                          r"another sheet \(Tickets, Other\)"):
        read_feedback_file(path, LIMIT, sheet="Notes")


@pytest.mark.parametrize("sheets, sheet, message", [
    ({"Empty": [], "Tickets": TICKETS}, "Empty", r"tickets\.xlsx: sheet 'Empty' is empty; pick another sheet \(Tickets\)"),
    ({"Tickets": TICKETS}, "Missing", r"there is no sheet called 'Missing'; its sheets are: Tickets"),
    ({"Tickets": [["text", "text", "label"], ["a", "b", "c"]]}, None, r"header row 1 repeats the column name\(s\) text"),
    ({"Tickets": [["text", "label"]]}, None, r"sheet 'Tickets': the sheet has a header row but no data rows"),
])
def test_sheets_that_cannot_be_used_say_why_and_where(sheets, sheet, message):
    with pytest.raises(IngestError, match=message):
        read_feedback_bytes(workbook(**sheets), "tickets.xlsx", LIMIT, sheet=sheet)


def test_merged_header_cells_are_named_by_their_range():
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(workbook(Tickets=[["feedback", None, "label"], ["a", "b", "c"]])))
    book["Tickets"].merge_cells("A1:B1")
    buffer = io.BytesIO()
    book.save(buffer)
    with pytest.raises(IngestError, match=r"header row 1 has merged cells \(A1:B1\); unmerge them"):
        read_feedback_bytes(buffer.getvalue(), "tickets.xlsx", LIMIT)


def test_a_formula_without_a_saved_result_is_reported_by_its_cell():
    """openpyxl writes formulas without results, as any program (not a spreadsheet program) does."""
    data = workbook(Tickets=[["ticket", "label"], ["late parcel", "delivery"], ['=CONCAT("double ", "charge")',
                                                                                "billing"]])
    table = read_feedback_bytes(data, "tickets.xlsx", LIMIT)
    assert table.records[1]["ticket"] == ""
    (problem,) = table.problems
    assert (problem.line, problem.kind, problem.skipped) == (3, "formula", False)
    assert "cell A3 holds a formula whose result was never saved" in problem.message


def test_trailing_unnamed_empty_columns_are_dropped_but_a_named_one_is_kept():
    data = workbook(Tickets=[["ticket", "label", None, "note"], ["a", "x", None, None], ["b", "y", None, None]])
    table = read_feedback_bytes(data, "tickets.xlsx", LIMIT)
    assert table.columns == ["ticket", "label", "column_C", "note"]


def test_the_validation_report_lists_the_formula_cells(config):
    from core.data.cleaning import CleaningOptions
    from core.data.preparation import prepare

    rows = [["ticket", "label"], *[[f"late parcel number {i}", "delivery"] for i in range(6)],
            *[[f"double charge number {i}", "billing"] for i in range(6)], ['=CONCAT("a", "b")', "billing"]]
    table = read_feedback_bytes(workbook(Tickets=rows), "tickets.xlsx", LIMIT)
    prepared = prepare(table, "ticket", "label", CleaningOptions(), config)
    finding = next(f for f in prepared.report.findings if f.code == "formula")
    assert finding.lines == [14] and "Formulas without a saved result" == finding.title
    assert "cell A14" in finding.examples[0]["detail"]
