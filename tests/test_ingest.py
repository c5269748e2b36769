import io

import pytest

from core.data.ingest import (
    IngestError, guess_columns, read_feedback_bytes, read_feedback_file, read_feedback_stream,
    records_from_list,
)

LIMIT = 10_000_000


def test_jsonl_records_keep_their_line_numbers():
    table = read_feedback_bytes(b'{"text": "a", "label": "x"}\n\n{"text": "b", "label": "y"}\n', "f.jsonl", LIMIT)
    assert table.format == "jsonl"
    assert [r["text"] for r in table.records] == ["a", "b"]
    assert table.lines == [1, 3]
    assert table.columns == ["text", "label"]


def test_bad_json_lines_are_skipped_and_reported_with_their_line():
    data = b'{"text": "ok", "label": "x"}\n{"text": "broken", \n[1, 2]\n{"text": "fine", "label": "y"}\n'
    table = read_feedback_bytes(data, "f.jsonl", LIMIT)
    assert len(table.records) == 2
    assert [(p.line, p.kind) for p in table.problems] == [(2, "malformed_json"), (3, "not_an_object")]
    assert table.skipped == 2
    assert "not valid JSON" in table.problems[0].message


def test_csv_with_quoted_newlines_and_a_broken_row():
    data = b'id,review,sentiment\n1,"hello, world",pos\n2,"two\nlines",neg\n3,too,many,fields\n4,last,pos\n'
    table = read_feedback_bytes(data, "f.csv", LIMIT)
    assert [r["review"] for r in table.records] == ["hello, world", "two\nlines", "last"]
    assert table.lines == [2, 3, 6]
    assert [(p.line, p.kind) for p in table.problems] == [(5, "csv_row")]
    assert "4 fields but the header has 3" in table.problems[0].message


def test_semicolon_csv_is_sniffed():
    table = read_feedback_bytes(b"text;label\nnice;pos\nbad;neg\n", "f.csv", LIMIT)
    assert table.records == [{"text": "nice", "label": "pos"}, {"text": "bad", "label": "neg"}]


def test_non_utf8_bytes_are_reported_not_fatal():
    table = read_feedback_bytes('text,label\ncaf\xe9,pos\nok,neg\n'.encode("latin-1"), "f.csv", LIMIT)
    assert len(table.records) == 2
    assert table.records[0]["text"] == "caf\ufffd"
    assert [(p.line, p.kind, p.skipped) for p in table.problems] == [(2, "encoding", False)]


def test_utf8_bom_is_ignored():
    table = read_feedback_bytes(b'\xef\xbb\xbftext,label\na,b\n', "f.csv", LIMIT)
    assert table.columns == ["text", "label"]


@pytest.mark.parametrize("data, name, message", [
    (b"", "empty.jsonl", "the file is empty"),
    (b"   \n\n", "blank.csv", "the file is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image.csv", "binary file"),
    ("text,label\n".encode("utf-16"), "wide.csv", "UTF-16"),
    (b"text,label\n", "header.csv", "no data rows"),
    (b"{oops\n{also bad\n", "bad.jsonl", "none of the 2 non-empty lines could be read; line 1"),
    # Other kinds of file are named in words, with what to do and the endings that work.
    (b"PK\x03\x04\x14\x00\x06\x00", "tickets.xlsx", r"this spreadsheet cannot be opened.*save it again"),
    (b"PK\x03\x04\x14\x00\x06\x00", "export", r"a zip archive \(an Excel file is one: name it \.xlsx\)"),
    (b"%PDF-1.7\n", "tickets.numbers", r"a Numbers spreadsheet.*\.jsonl, .*\.csv, .*\.xlsx"),
    (b"%PDF-1.7\n", "report.csv", "this is a PDF document"),
])
def test_files_that_cannot_be_used_raise_a_clear_error(data, name, message):
    with pytest.raises(IngestError, match=message) as info:
        read_feedback_bytes(data, name, LIMIT)
    assert name in str(info.value)


def test_size_limit_is_enforced_while_streaming():
    stream = io.BytesIO(b'{"text": "x", "label": "y"}\n' * 10_000)
    with pytest.raises(IngestError, match="larger than the upload limit"):
        read_feedback_stream(stream, "big.jsonl", max_bytes=100_000)


def test_missing_file(tmp_path):
    with pytest.raises(IngestError, match="no such file"):
        read_feedback_file(tmp_path / "absent.csv", LIMIT)


def test_format_is_sniffed_without_a_known_suffix():
    assert read_feedback_bytes(b'{"a": 1}\n', "data.dat", LIMIT).format == "jsonl"
    assert read_feedback_bytes(b"a,b\n1,2\n", "data.dat", LIMIT).format == "csv"


def test_plain_text_is_one_feedback_per_line():
    table = read_feedback_bytes(b"first complaint\n\nsecond, with a comma\r\n", "notes.txt", LIMIT)
    assert table.format == "text" and table.columns == ["text"]
    assert [r["text"] for r in table.records] == ["first complaint", "second, with a comma"]
    assert table.lines == [1, 3]


def test_list_sources():
    table = records_from_list([{"text": "a", "label": "x"}, "not a dict", {"text": "b"}])
    assert table.lines == [1, 3] and table.problems[0].line == 2


@pytest.mark.parametrize("columns, expected", [
    (["id", "text", "label"], ("text", "label")),
    (["review", "sentiment", "source"], ("review", "sentiment")),
    (["Comment", "Category"], ("Comment", "Category")),
])
def test_column_guesses_by_name(columns, expected):
    table = records_from_list([{c: f"{c} value {i}" for c in columns} for i in range(3)])
    guess = guess_columns(table)
    assert (guess.text, guess.label) == expected and guess.label_reason == "from its name"


def test_a_ticket_export_gets_its_tags_not_its_channel_as_the_label():
    """A ticket CSV (id, created, ticket, tags, channel) got 'channel' as its label: the fewest distinct values
    won, as 'tags' was not a known name. Names come first, with the reason shown; ids and dates never win."""
    rows = [{"id": str(1000 + i), "created": f"2026-11-{1 + i % 28:02d} 10:{i % 60:02d}",
             "ticket": f"my parcel number {i} has not arrived and nobody answers the phone",
             "tags": ["delivery", "billing", "account", "app"][i % 4], "channel": ["email", "chat", "phone"][i % 3]}
            for i in range(40)]
    guess = guess_columns(records_from_list(rows))
    assert (guess.text, guess.label) == ("ticket", "tags")
    assert guess.text_reason == guess.label_reason == "from its name"
    unnamed = [{"ref": r["id"], "when": r["created"], "what": r["ticket"], "kind": r["channel"]} for r in rows]
    guess = guess_columns(records_from_list(unnamed))
    assert (guess.text, guess.label) == ("what", "kind")  # not the id nor the date, though both repeat less
    assert "fewest different values (3 in the first 40 rows): check it" in guess.label_reason


def test_column_guess_by_shape_when_names_are_unknown():
    rows = [{"f1": f"this is a fairly long piece of feedback number {i}", "f2": "pos" if i % 2 else "neg",
             "f3": str(i)} for i in range(20)]
    guess = guess_columns(records_from_list(rows))
    assert (guess.text, guess.label) == ("f1", "f2")
