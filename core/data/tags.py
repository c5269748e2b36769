"""Several labels (tags) per text: how a file carries them, and reading them row by row.

Analysts keep tags in one of three shapes, all read here into one tuple of tags per row:

* a list in a JSON field: ``"labels": ["bug", "payments"]``;
* a delimited string in one field: ``bug;payments`` (the separator given, or guessed when only one of the usual
  ones splits the values);
* one yes/no column per tag (1/0, yes/no, true/false, y/n, x or empty): the tag is the column's name.

:func:`detect_task` says whether a label field is single- or multi-label, and why, in words; the analyst can
override it. Reading never guesses silently: a field that mixes shapes, a separator that splits nothing, a yes/no
column with other values or a tag count no label set has is refused with the lines that show it.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from enum import Enum
from typing import Any, Iterable, Sequence

from core.data.ingest import RawTable
from core.data.validate import describe_lines

#: Separators tried when guessing, in order of preference.
SEPARATORS = (";", "|", ",", "/")
#: A separator is guessed only when it splits at least this share of the non-empty values…
MIN_SPLIT_SHARE = 0.05
#: …and splits at least this many times as many values as the next separator does (otherwise it is ambiguous).
SEPARATOR_LEAD = 3.0
#: Cell values read as "has this tag" and "has not" in a yes/no column (compared case-insensitively).
YES = frozenset({"1", "1.0", "yes", "y", "true", "t", "x", "✓", "✔"})
NO = frozenset({"0", "0.0", "no", "n", "false", "f", ""})


class TaskType(str, Enum):
    SINGLE = "single-label"
    MULTI = "multi-label"


class TagShape(str, Enum):
    LIST = "list"            # a JSON list in one field
    DELIMITED = "delimited"  # a string split by a separator
    COLUMNS = "columns"      # one yes/no column per tag


class TagError(ValueError):
    """The tags cannot be read as asked; the message names the field and the lines."""


@dataclass(frozen=True)
class TagFormat:
    """Where a file's tags are and how to read them."""

    shape: TagShape
    field: str | None = None
    separator: str | None = None
    columns: tuple[str, ...] = ()

    def describe(self) -> str:
        """In words, for reports and saved versions."""
        if self.shape is TagShape.LIST:
            return f"lists of tags in '{self.field}'"
        if self.shape is TagShape.DELIMITED:
            return f"tags in '{self.field}' separated by '{self.separator}'"
        return f"one yes/no column per tag ({', '.join(self.columns)})"


@dataclass(frozen=True)
class TaskGuess:
    """Whether a label field looks single- or multi-label, the format when multi, and why."""

    task: TaskType
    format: TagFormat | None
    reason: str


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or (isinstance(value, str)
                                                                               and not value.strip())


def _as_list(value: Any) -> list | None:
    """A JSON list, given as a list or as the text of one (a CSV cell holding ["a", "b"]); else None."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, list) else None
    return None


def guess_separator(values: Iterable[Any]) -> str | None:
    """The one usual separator that splits the values (see MIN_SPLIT_SHARE, SEPARATOR_LEAD), else None."""
    texts = [str(v) for v in values if not _missing(v)]
    if not texts:
        return None
    splits = {sep: sum(len(_split(t, sep)) > 1 for t in texts) for sep in SEPARATORS}
    ranked = sorted(SEPARATORS, key=lambda sep: -splits[sep])
    best, runner_up = ranked[0], splits[ranked[1]]
    if splits[best] < max(2, MIN_SPLIT_SHARE * len(texts)):
        return None
    return best if splits[best] >= SEPARATOR_LEAD * runner_up else None


def detect_task(table: RawTable, label_field: str, sample: int = 2_000) -> TaskGuess:
    """Single- or multi-label, from the label field's values: lists make it multi-label, and so does a separator
    that splits enough of them; the reason says which rows showed it."""
    values = [(line, record.get(label_field)) for line, record in zip(table.lines[:sample], table.records[:sample])]
    present = [(line, value) for line, value in values if not _missing(value)]
    lists = [line for line, value in present if _as_list(value) is not None]
    if lists:
        share = len(lists) / len(present)
        return TaskGuess(TaskType.MULTI, TagFormat(TagShape.LIST, label_field),
                         f"'{label_field}' holds lists of tags ({share:.0%} of the rows read)")
    separator = guess_separator(value for _, value in present)
    if separator is not None:
        split = sum(separator in str(value) for _, value in present)
        return TaskGuess(TaskType.MULTI, TagFormat(TagShape.DELIMITED, label_field, separator),
                         f"'{label_field}' holds several values separated by '{separator}' in {split:,} of "
                         f"{len(present):,} rows")
    return TaskGuess(TaskType.SINGLE, None, f"'{label_field}' holds one value per row")


def binary_columns(table: RawTable, sample: int = 2_000) -> list[str]:
    """The columns whose values (in the first ``sample`` rows) are all yes/no values: candidate tag columns."""
    rows = table.records[:sample]
    found = []
    for column in table.columns:
        cells = [str(r.get(column, "")).strip().casefold() for r in rows if not _missing(r.get(column))]
        if cells and all(cell in YES or cell in NO for cell in cells) and any(cell in YES for cell in cells):
            found.append(column)
    return found


def _split(value: Any, separator: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in str(value).split(separator) if part.strip())


def _unique(tags: Iterable[Any]) -> tuple[str, ...]:
    """Tags in their order, each once, as trimmed text (an empty tag dropped)."""
    seen: dict[str, None] = {}
    for tag in tags:
        text = str(tag).strip()
        if text:
            seen.setdefault(text, None)
    return tuple(seen)


def read_tags(table: RawTable, tag_format: TagFormat, max_tags: int) -> list[tuple[str, ...]]:
    """Each record's tags (an empty tuple: no tag), read as ``tag_format`` says; refused with the lines when the
    field mixes shapes, the separator splits nothing, a yes/no column holds something else, or the tags number
    more than ``max_tags``."""
    if tag_format.shape is TagShape.COLUMNS:
        tags = _read_columns(table, tag_format.columns)
    else:
        tags = _read_field(table, tag_format)
    distinct = Counter(tag for row in tags for tag in row)
    if len(distinct) > max_tags:
        raise TagError(f"the rows carry {len(distinct):,} different tags, more than the {max_tags:,} a tag set can "
                       f"have (data.max_tags): is '{tag_format.field or 'these columns'}' the text rather than the "
                       "tags?")
    return tags


def _read_field(table: RawTable, tag_format: TagFormat) -> list[tuple[str, ...]]:
    field, separator = tag_format.field, tag_format.separator
    if field not in table.columns:
        raise TagError(f"there is no field '{field}'; the fields are: {', '.join(table.columns)}")
    lists, plain, tags = [], [], []
    for line, record in zip(table.lines, table.records):
        value = record.get(field)
        if _missing(value):
            tags.append(())
            continue
        as_list = _as_list(value)
        if as_list is not None:
            lists.append(line)
            tags.append(_unique(as_list))
        else:
            plain.append(line)
            tags.append(_split(value, separator) if separator else _unique([value]))
    if tag_format.shape is TagShape.LIST and plain:
        raise TagError(f"'{field}' mixes shapes: lists of tags in {len(lists):,} rows but a single value in "
                       f"{describe_lines(plain)}; write every row's tags as a list (a one-tag row as [\"tag\"])")
    if tag_format.shape is TagShape.DELIMITED:
        if lists:
            raise TagError(f"'{field}' mixes shapes: tags separated by '{separator}' in {len(plain):,} rows but "
                           f"lists in {describe_lines(lists)}; write every row's tags the same way")
        if plain and not any(len(row) > 1 for row in tags):
            raise TagError(f"the separator '{separator}' splits none of the values of '{field}' (every row has one "
                           "tag); check the separator, or treat the data as single-label")
    return tags


def _read_columns(table: RawTable, columns: Sequence[str]) -> list[tuple[str, ...]]:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise TagError(f"there is no column {', '.join(repr(c) for c in missing)}; the columns are: "
                       f"{', '.join(table.columns)}")
    if len(columns) < 2:
        raise TagError("tags in yes/no columns need at least two columns (one column is one yes/no label)")
    tags = []
    for line, record in zip(table.lines, table.records):
        row = []
        for column in columns:
            cell = "" if _missing(record.get(column)) else str(record.get(column)).strip().casefold()
            if cell in YES:
                row.append(column)
            elif cell not in NO:
                others = [n for n, r in zip(table.lines, table.records)
                          if not _missing(r.get(column))
                          and str(r.get(column)).strip().casefold() not in YES | NO]
                raise TagError(f"column '{column}' should hold yes/no values (1/0, yes/no, true/false) but holds "
                               f"'{record.get(column)}' on line {line} ({describe_lines(others)}); fix those cells or "
                               "leave the column out of the tags")
        tags.append(tuple(row))
    return tags


def join_tags(tags: Sequence[str], separator: str = ";") -> str:
    """Tags as one cell (downloads, tables)."""
    return separator.join(tags)
