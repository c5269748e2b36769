"""Reading labelled feedback from JSONL, CSV, plain text, a spreadsheet's sheet or a list.

Files are read as a stream of lines, so a large upload is never held twice in
memory. A broken line never stops the read: it is recorded as a
:class:`LineProblem` with its line number and the rest of the file loads.
Only problems with the file as a whole (empty, binary, too large, unknown
format) raise :class:`IngestError`.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

import pandas as pd

from core.data.workbook import SPREADSHEET_SUFFIXES, WorkbookError, is_spreadsheet, read_sheet, sheet_names
from core.platform.config import PROJECT_ROOT

DEMO_DATASET = PROJECT_ROOT / "assets" / "demo" / "feedback.jsonl"

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
CSV_SUFFIXES = (".csv", ".tsv")
#: Plain text: one feedback per line, read into a ``text`` field.
TEXT_SUFFIXES = (".txt",)
SNIFF_BYTES = 64 * 1024
EXCERPT_CHARS = 120

#: Names a text field goes by, most telling first (matched whole, then as a word of the name: "ticket_text").
TEXT_FIELD_GUESSES = (
    "text", "review", "review_text", "feedback", "comment", "comments", "message", "body", "content", "sentence",
    "description", "utterance", "tweet", "ticket", "complaint", "query", "question", "request", "summary",
)
#: Names a label field goes by, most telling first.
LABEL_FIELD_GUESSES = (
    "label", "labels", "sentiment", "category", "categories", "class", "target", "topic", "topics", "intent",
    "tag", "tags", "department", "type", "reason",
)
#: A value that reads as a date or a time: such a field is never guessed as the label from its values.
DATE_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}.*)?$|^\d{1,2}/\d{1,2}/\d{2,4}")


class IngestError(ValueError):
    """The file as a whole cannot be read; the message says which file and why."""


@dataclass
class LineProblem:
    """One line (or CSV row) that was skipped or read with a defect."""

    line: int
    kind: str  # malformed_json | not_an_object | csv_row | encoding | formula
    message: str
    excerpt: str = ""
    skipped: bool = True


@dataclass
class RawTable:
    """The records of one source before any column is chosen."""

    source: str
    format: str
    records: list[dict[str, Any]] = field(default_factory=list)
    #: The 1-based line (or row) number of each record in the source.
    lines: list[int] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    problems: list[LineProblem] = field(default_factory=list)
    #: A spreadsheet's sheets, and the one read (empty and None for other files).
    sheets: list[str] = field(default_factory=list)
    sheet: str | None = None
    #: Records read in all (``records`` keeps only those not yet handed to ``spill``).
    count: int = 0
    #: For files too big to hold: ``spill(lines, records)`` takes every ``spill_every`` records as they are read.
    spill: Callable[[list[int], list[dict[str, Any]]], None] | None = field(default=None, repr=False)
    spill_every: int = 0

    @property
    def skipped(self) -> int:
        """How many lines could not be read at all."""
        return sum(1 for p in self.problems if p.skipped)

    def preview(self, rows: int = 20) -> pd.DataFrame:
        """The first rows as a table, with the source line number first."""
        head = [{"line": n, **rec} for n, rec in zip(self.lines[:rows], self.records[:rows])]
        return pd.DataFrame(head, columns=["line", *self.columns])

    def _add(self, line: int, record: dict[str, Any]) -> None:
        for key in record:
            if key not in self._seen_columns:
                self._seen_columns.add(key)
                self.columns.append(key)
        self.records.append(record)
        self.lines.append(line)
        self.count += 1
        if self.spill is not None and len(self.records) >= self.spill_every:
            self.flush()

    def flush(self) -> None:
        """Hand the records read since the last spill to ``spill`` (nothing without one)."""
        if self.spill is not None and self.records:
            self.spill(self.lines, self.records)
            self.records, self.lines = [], []

    def __post_init__(self) -> None:
        self._seen_columns: set[str] = set(self.columns)


def _excerpt(text: str) -> str:
    text = text.strip()
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def _decode_line(raw: bytes, line_no: int, table: RawTable) -> str:
    """Decode one line as UTF-8; invalid bytes are replaced and reported, never fatal."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = raw.decode("utf-8", errors="replace")
        table.problems.append(LineProblem(
            line_no, "encoding",
            f"byte 0x{raw[exc.start]:02x} at position {exc.start} is not valid UTF-8; "
            "it was replaced by '\ufffd' (save the file as UTF-8 to keep these characters)",
            _excerpt(text), skipped=False,
        ))
        return text


def detect_format(name: str, head: bytes) -> str:
    """``jsonl``, ``csv`` or ``text``, from the file name or else from the first character."""
    suffix = Path(name).suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return "text"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in CSV_SUFFIXES:
        return "csv"
    first = head.lstrip(codecs.BOM_UTF8).lstrip()[:1]
    if first in (b"{", b"["):
        return "jsonl"
    if first:
        return "csv"
    raise IngestError(f"{name}: cannot tell whether this is JSONL or CSV; use a .jsonl or .csv name")


#: Files people try that the studio does not read, by name ending or first bytes: what to call them.
OTHER_FORMATS_BY_SUFFIX = {
    ".numbers": "a Numbers spreadsheet", ".pdf": "a PDF document",
    ".docx": "a Word document", ".doc": "a Word document", ".zip": "a zip archive", ".gz": "a compressed file",
    ".parquet": "a Parquet file", ".xml": "an XML file", ".html": "a web page",
}
OTHER_FORMATS_BY_SIGNATURE = {b"PK\x03\x04": "a zip archive (an Excel file is one: name it .xlsx)",
                              b"\xd0\xcf\x11\xe0": "an Office file of the older kind", b"%PDF": "a PDF document",
                              b"\x1f\x8b": "a compressed file", b"PAR1": "a Parquet file"}


def readable_types() -> str:
    """The file endings the studio reads, as a person reads a list."""
    return ", ".join((*JSONL_SUFFIXES, *CSV_SUFFIXES, *TEXT_SUFFIXES, *SPREADSHEET_SUFFIXES))


def _other_format(name: str, head: bytes) -> str | None:
    """What a file the studio cannot read is, in words (from its name, else its first bytes), or None."""
    if what := OTHER_FORMATS_BY_SUFFIX.get(Path(name).suffix.lower()):
        return what
    return next((what for signature, what in OTHER_FORMATS_BY_SIGNATURE.items() if head.startswith(signature)), None)


def _check_head(name: str, head: bytes) -> None:
    """Refuse files that are empty, binary, of a kind we do not read, or in an encoding we do not read."""
    if what := _other_format(name, head):
        raise IngestError(f"{name}: this is {what}, which the studio cannot read. Save it as CSV, JSONL or an Excel "
                          f"workbook and upload that; files that work: {readable_types()}")
    if not head.strip():
        raise IngestError(f"{name}: the file is empty; export the data again and upload the saved file")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise IngestError(f"{name}: the file is UTF-16 encoded; save it as UTF-8 and upload again")
    if b"\x00" in head:
        raise IngestError(
            f"{name}: this looks like a binary file (it contains NUL bytes), not JSONL or CSV text"
        )


class _SizeLimitedReader(io.RawIOBase):
    """Wraps a binary stream and fails once more than ``limit`` bytes are read."""

    def __init__(self, stream: IO[bytes], limit: int, name: str) -> None:
        self._stream, self._limit, self._name, self._read = stream, limit, name, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._stream.read(len(buffer))
        self._read += len(chunk)
        if self._read > self._limit:
            raise IngestError(
                f"{self._name}: the file is larger than the upload limit of "
                f"{self._limit / 1_000_000:g} MB (setting data.max_upload_mb)"
            )
        buffer[: len(chunk)] = chunk
        return len(chunk)


def _read_jsonl(lines: Iterable[bytes], table: RawTable) -> None:
    for line_no, raw in enumerate(lines, start=1):
        if line_no == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)
        if not raw.strip():
            continue
        text = _decode_line(raw, line_no, table)
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            table.problems.append(LineProblem(
                line_no, "malformed_json", f"not valid JSON ({exc.msg} at column {exc.colno})",
                _excerpt(text),
            ))
            continue
        if not isinstance(value, dict):
            table.problems.append(LineProblem(
                line_no, "not_an_object",
                f"expected a JSON object like {{\"text\": ..., \"label\": ...}}, got a {type(value).__name__}",
                _excerpt(text),
            ))
            continue
        table._add(line_no, value)


def _read_text_lines(lines: Iterable[bytes], table: RawTable) -> None:
    for line_no, text in enumerate(_numbered_text_lines(lines, table), start=1):
        if text.strip():
            table._add(line_no, {"text": text.rstrip("\r\n")})


def _numbered_text_lines(lines: Iterable[bytes], table: RawTable) -> Iterator[str]:
    """Decode lines one by one for the csv module, reporting encoding defects."""
    for line_no, raw in enumerate(lines, start=1):
        if line_no == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)
        yield _decode_line(raw, line_no, table)


def _sniff_dialect(name: str, head: bytes) -> type[csv.Dialect] | csv.Dialect:
    if Path(name).suffix.lower() == ".tsv":
        return csv.excel_tab
    sample = head.decode("utf-8", errors="replace")
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        return csv.excel


def _read_csv(lines: Iterable[bytes], head: bytes, table: RawTable) -> None:
    csv.field_size_limit(16 * 1024 * 1024)
    reader = csv.reader(_numbered_text_lines(lines, table), dialect=_sniff_dialect(table.source, head))
    header: list[str] | None = None
    last_line = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            table.problems.append(LineProblem(reader.line_num, "csv_row", f"cannot parse this row ({exc})"))
            last_line = reader.line_num
            continue
        start_line, last_line = last_line + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = [cell.strip() or f"column_{i + 1}" for i, cell in enumerate(row)]
            if len(set(header)) != len(header):
                raise IngestError(f"{table.source}: the header row repeats a column name: {header}; give every "
                                  "column its own name and upload again")
            table.columns = list(header)
            table._seen_columns = set(header)
            continue
        if len(row) != len(header):
            table.problems.append(LineProblem(
                start_line, "csv_row",
                f"row has {len(row)} fields but the header has {len(header)} (check quotes and delimiters)",
                _excerpt(",".join(row)),
            ))
            continue
        table._add(start_line, dict(zip(header, row)))
    if header is None:
        raise IngestError(f"{table.source}: no header row found; the first line of a CSV file must name "
                          "the columns (for example text,label)")


def _read_spreadsheet(data: bytes, table: RawTable, sheet: str | None) -> None:
    """One sheet's rows as records, numbered as the spreadsheet numbers its rows."""
    try:
        table.sheets = sheet_names(data, table.source)
        table.sheet, header, rows, problems = read_sheet(data, table.source, sheet)
    except WorkbookError as exc:
        raise IngestError(str(exc)) from exc
    table.columns, table._seen_columns = list(header), set(header)
    for row, record in rows:
        table._add(row, record)
    table.problems.extend(LineProblem(row, "formula", message, skipped=False) for row, message in problems)


def read_feedback_stream(stream: IO[bytes], name: str, max_bytes: int, sheet: str | None = None,
                         spill: Callable[[list[int], list[dict[str, Any]]], None] | None = None,
                         spill_every: int = 0) -> RawTable:
    """Read JSONL, CSV or text from a binary stream, line by line, within a size limit; or one sheet of a
    spreadsheet (``sheet``, else the first), which is read whole. With ``spill``, the records go to it
    ``spill_every`` at a time as they are read instead of staying in the table (a file too big to hold)."""
    limited = io.BufferedReader(_SizeLimitedReader(stream, max_bytes, name), buffer_size=SNIFF_BYTES)
    if is_spreadsheet(name):
        table = RawTable(source=name, format="spreadsheet", spill=spill, spill_every=spill_every)
        _read_spreadsheet(limited.read(), table, sheet)
        table.flush()
        if not table.count:
            others = [other for other in table.sheets if other != table.sheet]
            hint = f"; pick another sheet ({', '.join(others)})" if others else ""
            raise IngestError(f"{name}, sheet '{table.sheet}': the sheet has a header row but no data rows{hint}")
        return table
    head = limited.peek(SNIFF_BYTES)[:SNIFF_BYTES]
    _check_head(name, head)
    fmt = detect_format(name, head)
    table = RawTable(source=name, format=fmt, spill=spill, spill_every=spill_every)
    if fmt == "jsonl":
        _read_jsonl(limited, table)
    elif fmt == "text":
        _read_text_lines(limited, table)
    else:
        _read_csv(limited, head, table)
    table.flush()
    if not table.count:
        raise _no_records_error(table)
    return table


def _no_records_error(table: RawTable) -> IngestError:
    skipped = [p for p in table.problems if p.skipped]
    if not skipped:
        return IngestError(f"{table.source}: the file has a header but no data rows")
    first = skipped[0]
    return IngestError(
        f"{table.source}: none of the {len(skipped)} non-empty lines could be read; "
        f"line {first.line}: {first.message}"
    )


def read_feedback_file(path: str | Path, max_bytes: int, sheet: str | None = None,
                       spill: Callable[[list[int], list[dict[str, Any]]], None] | None = None,
                       spill_every: int = 0, name: str | None = None) -> RawTable:
    """Read a file from disk (see :func:`read_feedback_stream`; ``name``: what to call it, if not its own)."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return read_feedback_stream(handle, name or path.name, max_bytes, sheet, spill, spill_every)
    except FileNotFoundError as exc:
        raise IngestError(f"{path}: no such file; check the path") from exc
    except IsADirectoryError as exc:
        raise IngestError(f"{path}: is a folder, not a file") from exc


def read_feedback_bytes(data: bytes, name: str, max_bytes: int, sheet: str | None = None, **spilling: Any) -> RawTable:
    """Read an upload already in memory (see :func:`read_feedback_stream`)."""
    return read_feedback_stream(io.BytesIO(data), name, max_bytes, sheet, **spilling)


class _Enough(Exception):
    def __init__(self, lines: list[int], records: list[dict[str, Any]]) -> None:
        super().__init__("read enough")
        self.lines, self.records = lines, records


def read_head(data: bytes, name: str, max_bytes: int, rows: int, sheet: str | None = None) -> tuple[RawTable, bool]:
    """An upload read up to its first ``rows`` records, and whether that was all of it: a big file is not read
    further (its fields and first rows, for a page to show before it becomes a job)."""
    kept: list[tuple[list[int], list[dict[str, Any]]]] = []

    def spill(lines: list[int], records: list[dict[str, Any]]) -> None:
        if len(records) > rows:
            raise _Enough(lines[:rows], records[:rows])
        kept.append((list(lines), list(records)))

    try:
        table = read_feedback_bytes(data, name, max_bytes, sheet, spill=spill, spill_every=rows + 1)
    except _Enough as enough:
        head = records_from_list(enough.records, source=name)
        head.lines = enough.lines
        return head, False
    table.lines, table.records = kept[0] if kept else ([], [])
    table.spill = None  # the table outlives this reading (a page caches it)
    return table, True


def records_from_list(rows: Iterable[dict[str, Any]], source: str = "list") -> RawTable:
    """Build a table from Python dicts; numbering starts at 1 like lines of a file."""
    table = RawTable(source=source, format="records")
    for index, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            table.problems.append(LineProblem(index, "not_an_object", f"expected a dict, got {type(row).__name__}"))
            continue
        table._add(index, dict(row))
    return table


@dataclass(frozen=True)
class ColumnGuess:
    """The fields most likely to hold the text and the label (either may be None), and why each was guessed,
    in words, so the page can show a guess as a guess."""

    text: str | None
    label: str | None
    text_reason: str = ""
    label_reason: str = ""


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _named(columns: list[str], names: tuple[str, ...], taken: str | None = None) -> str | None:
    """The column named like one of ``names`` (the whole name first, then a word of it), in their order."""
    words = {c: [w for w in re.split(r"[^a-z0-9]+", c.lower()) if w] for c in columns if c != taken}
    for name in names:
        for column, parts in words.items():
            if "_".join(parts) == name or column.lower().strip() == name:
                return column
    for name in names:
        for column, parts in words.items():
            if name in parts:
                return column
    return None


def guess_columns(table: RawTable, sample: int = 500) -> ColumnGuess:
    """Offer the text and label fields: by their names first, then by their values (the longest values for the
    text; for the label, the fewest distinct values among fields that are not an id or a date)."""
    rows = table.records[:sample]
    stats = {}
    for column in table.columns:
        values = [str(r[column]) for r in rows if column in r and not _is_missing(r[column])]
        if values:
            stats[column] = (sum(map(len, values)) / len(values), len(set(values)), len(values),
                             sum(bool(DATE_LIKE.match(v.strip())) for v in values) / len(values))
    text = _named(table.columns, TEXT_FIELD_GUESSES)
    text_reason = "from its name" if text else ""
    if text is None and stats:
        text = max(stats, key=lambda c: stats[c][0])
        text_reason = f"the longest values, {stats[text][0]:.0f} characters on average"
    label = _named(table.columns, LABEL_FIELD_GUESSES, taken=text)
    label_reason = "from its name" if label else ""
    if label is None:
        # an id (a different value on every row) or a date is never the label
        candidates = [c for c, (_, distinct, count, dates) in stats.items()
                      if c != text and 2 <= distinct < count and dates < 0.5]
        if candidates:
            label = min(candidates, key=lambda c: (stats[c][1], stats[c][0]))
            label_reason = (f"no field is named like a label; '{label}' has the fewest different values "
                            f"({stats[label][1]} in the first {len(rows):,} rows): check it")
    return ColumnGuess(text, label, text_reason, label_reason)
