import json

import pytest

from core.platform.config import load_config
from core.data.ingest import read_feedback_bytes, records_from_list
from core.models.pretrained import token_counter
from core.data.validate import Fix, Severity, describe_lines, select_fields, validate_examples


def jsonl(*rows) -> bytes:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows).encode() + b"\n"


def validate_table(table, text_field, label_field, config, count_tokens=None):
    """A freshly read table validated with the chosen fields, as preparing an upload does."""
    return validate_examples(select_fields(table, text_field, label_field), source=table.source,
                             text_field=text_field, label_field=label_field, config=config,
                             count_tokens=count_tokens, columns=table.columns, problems=table.problems)


def report_for(data: bytes, name="f.jsonl", text="text", label="label", config=None, count_tokens=None):
    table = read_feedback_bytes(data, name, 10_000_000)
    return validate_table(table, text, label, config or load_config(), count_tokens)


def balanced(n_per_class=5, labels=("a", "b")):
    return [{"text": f"example {label} number {i}", "label": label} for label in labels for i in range(n_per_class)]


def test_clean_data_has_no_findings():
    report = report_for(jsonl(*balanced()))
    assert report.findings == []
    assert report.usable_rows == 10 and report.label_counts == {"a": 5, "b": 5}
    assert not report.blocks_training


def test_malformed_lines_are_a_warning_with_lines_and_count():
    report = report_for(jsonl(*balanced(), "{not json", '"just a string"'))
    finding = report.get("malformed_lines")
    assert finding.severity is Severity.WARNING
    assert finding.count == 2 and finding.lines == [11, 12]
    assert "skipped" in finding.message and "line 11" in finding.message
    assert not report.blocks_training


def test_missing_and_empty_and_non_string_text_are_errors():
    rows = balanced() + [{"label": "a"}, {"text": "   ", "label": "a"}, {"text": 42, "label": "b"},
                         {"text": None, "label": "b"}]
    report = report_for(jsonl(*rows))
    assert report.get("missing_text").lines == [11, 14]
    assert report.get("empty_text").lines == [12]
    assert report.get("non_string_text").lines == [13]
    assert all(report.get(c).fix is Fix.DROP_INVALID_ROWS for c in ("missing_text", "empty_text"))
    assert report.blocks_training and report.usable_rows == 10


def test_missing_and_structured_labels_are_errors_numbers_are_a_note():
    rows = balanced() + [{"text": "no label here"}, {"text": "list label", "label": ["a"]},
                         {"text": "numeric label", "label": 1}]
    report = report_for(jsonl(*rows))
    assert report.get("missing_label").lines == [11]
    assert report.get("non_string_label").lines == [12]
    note = report.get("numeric_labels")
    assert note.severity is Severity.NOTE and note.lines == [13]
    assert report.label_counts["1"] == 1


def test_missing_column_names_the_fields_found():
    report = report_for(jsonl(*balanced()), label="category")
    finding = report.get("missing_column")
    assert finding.severity is Severity.ERROR
    assert "'category'" in finding.message and "text, label" in finding.message


def test_same_field_for_text_and_label_is_an_error():
    assert report_for(jsonl(*balanced()), label="text").get("same_field").severity is Severity.ERROR


def test_exact_and_normalised_duplicates_and_conflicts():
    rows = balanced() + [
        {"text": "example a number 0", "label": "a"},     # exact duplicate of line 1
        {"text": "EXAMPLE  a number 1 ", "label": "a"},   # duplicate up to case/spacing of line 2
        {"text": "example b number 0", "label": "a"},     # same text as line 6, other label
    ]
    report = report_for(jsonl(*rows))
    assert report.get("exact_duplicates").lines == [11]
    assert report.get("near_duplicates").lines == [12]
    conflict = report.get("conflicting_labels")
    assert conflict.lines == [6, 13] and conflict.fix is Fix.DROP_CONFLICTS
    assert not report.blocks_training


def test_label_variants_are_reported_with_the_merge_target():
    rows = balanced(6, ("billing", "delivery")) + [{"text": "charged twice", "label": "Billing"},
                                                   {"text": "charged again", "label": "billing "}]
    finding = report_for(jsonl(*rows)).get("label_variants")
    assert finding.severity is Severity.WARNING and finding.lines == [13, 14]
    assert finding.fix is Fix.NORMALISE_LABELS
    assert {e["detail"] for e in finding.examples} == {"would become 'billing'"}


def test_single_class_blocks_training():
    report = report_for(jsonl(*balanced(5, ("only",))))
    assert report.get("single_class").severity is Severity.ERROR and report.blocks_training


def test_class_with_one_example_cannot_be_stratified():
    rows = balanced(5, ("a", "b")) + [{"text": "lonely", "label": "c"}]
    finding = report_for(jsonl(*rows)).get("rare_classes")
    assert finding.severity is Severity.ERROR and finding.lines == [11]
    assert "'c' (1)" in finding.message and finding.fix is Fix.HANDLE_RARE_CLASSES


def test_heavy_imbalance_is_a_warning():
    rows = balanced(40, ("big",)) + balanced(3, ("small",))
    finding = report_for(jsonl(*rows)).get("imbalanced_classes")
    assert finding.severity is Severity.WARNING and "'small' (3)" in finding.message


def test_texts_longer_than_max_length_are_counted_with_the_real_tokenizer(write_file):
    config = load_config(write_file("c.toml", "[model]\nmax_length = 16\n"), environ={})
    long_text = "the parcel arrived late and the box was crushed " * 3
    rows = balanced() + [{"text": long_text, "label": "a"}]
    finding = report_for(jsonl(*rows), config=config, count_tokens=token_counter(config.model.name)).get(
        "truncated_texts")
    assert finding.count == 1 and finding.lines == [11]
    assert finding.severity is Severity.WARNING  # 1 in 11 is above the 5% warning share
    assert finding.examples[0]["detail"].endswith("tokens") and int(finding.examples[0]["detail"].split()[0]) > 16


def test_encoding_problems_are_reported_with_lines():
    data = b'{"text": "caf\xe9 was cold", "label": "a"}\n' + jsonl(*balanced())
    finding = report_for(data).get("encoding")
    assert finding.lines == [1] and "UTF-8" in finding.message


def test_report_round_trips_through_json():
    report = report_for(jsonl(*balanced(), {"text": "x"}))
    from core.data.validate import ValidationReport
    again = ValidationReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report


def test_report_from_python_records():
    table = records_from_list([{"review": "great", "sentiment": "pos"}] * 3 + [{"review": "bad", "sentiment": "neg"}] * 3)
    report = validate_table(table, "review", "sentiment", load_config())
    assert report.get("exact_duplicates").count == 4


@pytest.mark.parametrize("lines, text", [
    ([4], "line 4"), ([4, 9, 17], "lines 4, 9 and 17"), (list(range(1, 11)), "lines 1, 2, 3, 4, 5, 6 and 4 more"),
])
def test_line_lists_read_naturally(lines, text):
    assert describe_lines(lines) == text


def test_a_field_that_makes_most_repeated_texts_conflict_is_called_probably_not_the_label():
    """With 'channel' taken as the label of a ticket export, the report said "Same text, different labels · 71 …
    correct the labels in the file": the file was blamed for the wrong column."""
    rows = [{"ticket": f"parcel {i % 10} never arrived", "tags": "delivery" if i % 10 < 5 else "billing",
             "channel": ["email", "chat", "phone"][i % 3]} for i in range(60)]
    table = records_from_list(rows, source="tickets.csv")
    wrong = validate_table(table, "ticket", "channel", load_config())
    codes = [f.code for f in wrong.findings]
    assert "label_field_doubtful" in codes and "conflicting_labels" not in codes
    doubtful = next(f for f in wrong.findings if f.code == "label_field_doubtful")
    assert doubtful.title == "'channel' is probably not the label"
    assert "10 of the 10 texts that appear more than once" in doubtful.message
    right = validate_table(table, "ticket", "tags", load_config())
    assert not {"label_field_doubtful", "conflicting_labels"} & {f.code for f in right.findings}
    rows[0]["tags"], rows[10]["tags"] = "billing", "delivery"  # one text mislabelled twice: the file is blamed
    few = validate_table(records_from_list(rows), "ticket", "tags", load_config())
    assert "conflicting_labels" in {f.code for f in few.findings}
    assert "label_field_doubtful" not in {f.code for f in few.findings}
