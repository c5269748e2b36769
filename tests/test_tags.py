"""Several tags per text: the three shapes analysts keep them in, the task type said with its reason, and every
misread refused with the lines that show it."""

from __future__ import annotations

import json

import pytest

from tests.test_label_issues import counting_forks as counting_forks_here

from core.data.ingest import read_feedback_bytes, records_from_list
from core.data.tags import (
    TagError, TagFormat, TagShape, TaskType, binary_columns, detect_task, guess_separator, read_tags,
)

LIMIT = 10_000_000
MAX_TAGS = 1000
TICKETS_CSV = ("id,created,ticket,tags,channel\n"
               "1,2026-11-03,The app crashed when I paid,bug;payments,email\n"
               "2,2026-11-03,Nobody answered my email,support,chat\n"
               "3,2026-11-04,Login fails and support is silent,login; bug ;support,email\n"
               "4,2026-11-04,Refund still missing,payments,phone\n"
               "5,2026-11-05,,,phone\n")


def test_a_delimited_tag_column_is_detected_and_read():
    table = read_feedback_bytes(TICKETS_CSV.encode(), "tickets.csv", LIMIT)
    guess = detect_task(table, "tags")
    assert guess.task is TaskType.MULTI and guess.format == TagFormat(TagShape.DELIMITED, "tags", ";")
    assert guess.reason == "'tags' holds several values separated by ';' in 2 of 4 rows"
    assert read_tags(table, guess.format, MAX_TAGS) == [
        ("bug", "payments"), ("support",), ("login", "bug", "support"), ("payments",), ()]
    single = detect_task(table, "channel")
    assert single.task is TaskType.SINGLE and single.format is None and "one value per row" in single.reason


def test_lists_in_jsonl_are_read_whether_stored_as_lists_or_as_text():
    lines = [{"text": "crashed while paying", "labels": ["bug", "payments", "bug"]},
             {"text": "great app", "labels": []}, {"text": "fine", "labels": ["praise"]}]
    table = read_feedback_bytes("\n".join(json.dumps(r) for r in lines).encode(), "f.jsonl", LIMIT)
    guess = detect_task(table, "labels")
    assert guess.task is TaskType.MULTI and guess.format.shape is TagShape.LIST
    assert read_tags(table, guess.format, MAX_TAGS) == [("bug", "payments"), (), ("praise",)]
    as_text = read_feedback_bytes(b'text,labels\nslow,"[""bug"", ""speed""]"\nok,"[]"\n', "f.csv", LIMIT)
    assert read_tags(as_text, detect_task(as_text, "labels").format, MAX_TAGS) == [("bug", "speed"), ()]


def test_yes_no_columns_are_offered_and_read_as_tags():
    csv = ("comment,bug,payments,support,channel\n"
           "crashed while paying,1,yes,0,email\n"
           "no answer,0,no,TRUE,chat\n"
           "all good,,n,false,email\n")
    table = read_feedback_bytes(csv.encode(), "f.csv", LIMIT)
    assert binary_columns(table) == ["bug", "payments", "support"]
    tags = read_tags(table, TagFormat(TagShape.COLUMNS, columns=("bug", "payments", "support")), MAX_TAGS)
    assert tags == [("bug", "payments"), ("support",), ()]


def test_a_separator_is_guessed_only_when_one_alone_splits_the_values():
    assert guess_separator(["a;b", "c", "d;e;f", "g"]) == ";"
    assert guess_separator(["a", "b", "c"]) is None
    assert guess_separator(["a;b", "c|d", "e;f", "g|h"]) is None  # two separators: ambiguous, the analyst says
    assert guess_separator(["billing", "delivery"] * 50 + ["a, b"]) is None  # one comma in 101 values is no separator


@pytest.mark.parametrize("rows, tag_format, message", [
    ([{"t": "a", "tags": ["x", "y"]}, {"t": "b", "tags": "x"}, {"t": "c", "tags": "y"}],
     TagFormat(TagShape.LIST, "tags"), r"'tags' mixes shapes: lists of tags in 1 rows but a single value in lines 2 and 3"),
    ([{"t": "a", "tags": "x;y"}, {"t": "b", "tags": ["x"]}],
     TagFormat(TagShape.DELIMITED, "tags", ";"), r"separated by ';' in 1 rows but lists in line 2"),
    ([{"t": "a", "tags": "x"}, {"t": "b", "tags": "y"}],
     TagFormat(TagShape.DELIMITED, "tags", "|"), r"the separator '\|' splits none of the values of 'tags'"),
    ([{"t": "a", "bug": "1", "ux": "0"}, {"t": "b", "bug": "maybe", "ux": "1"}, {"t": "c", "bug": "2", "ux": "0"}],
     TagFormat(TagShape.COLUMNS, columns=("bug", "ux")), r"column 'bug' should hold yes/no values .* 'maybe' on line "
                                                         r"2 \(lines 2 and 3\)"),
    ([{"t": "a", "bug": "1"}], TagFormat(TagShape.COLUMNS, columns=("bug",)), "at least two columns"),
    ([{"t": "a"}], TagFormat(TagShape.DELIMITED, "tags", ";"), "there is no field 'tags'"),
])
def test_tags_that_cannot_be_read_as_asked_are_refused_with_their_lines(rows, tag_format, message):
    with pytest.raises(TagError, match=message):
        read_tags(records_from_list(rows), tag_format, MAX_TAGS)


def test_ten_thousand_distinct_tags_are_refused_as_the_wrong_field():
    rows = [{"text": f"comment {i}", "tags": f"tag {i};other {i}"} for i in range(5_000)]
    with pytest.raises(TagError, match=r"10,000 different tags, more than the 1,000 .*is 'tags' the text"):
        read_tags(records_from_list(rows), TagFormat(TagShape.DELIMITED, "tags", ";"), MAX_TAGS)


def test_each_multi_label_problem_is_a_finding_with_its_lines(config):
    from core.data.tag_checks import tag_findings

    rows = [("the app crashed when I paid", ("bug", "payments")),     # line 1
            ("no reply from support", ("support",)),                   # 2
            ("love the new design", ()),                               # 3: no tag
            ("refund missing", ("Payments",)),                         # 4: a rarer spelling of payments
            ("refund missing", ("payments", "support")),               # 5: same text as 4, other tags
            ("export to pdf please", ("feature-request", "export")),   # 6
            ("pdf export", ("feature-request", "export")),             # 7
            ("csv export please", ("feature-request", "export")),      # 8
            ("dark mode", ("ui",)),                                    # 9: ui on one text only
            ("crash on start", ("bug",)), ("crash on login", ("bug", "login")), ("payment failed", ("payments",)),
            ("support never answered", ("support",)), ("support is slow", ("support",)),
            ("the login page hangs", ("login",)), ("cannot log in", ("login",))]
    lines = list(range(1, len(rows) + 1))
    findings = {f.code: f for f in tag_findings(lines, [t for t, _ in rows], [tags for _, tags in rows], config)}
    assert findings["untagged"].lines == [3]
    assert findings["tag_variants"].lines == [4] and "'payments' (3) = 'Payments' (1)" in findings["tag_variants"].message
    assert findings["rare_tags"].lines == [4, 9] and "'Payments' (1), 'ui' (1)" in findings["rare_tags"].message
    assert findings["conflicting_tags"].lines == [4, 5]
    assert findings["tags_together"].lines == [6, 7, 8]
    assert "'export' + 'feature-request' (3 texts)" in findings["tags_together"].message
    per_text = findings["tags_per_text"].message
    assert per_text.startswith("On average 1.31 tags per text:") and "no tag 6%" in per_text and "2 tags 38%" in per_text
    assert findings["untagged"].examples[0] == {"line": 3, "text": "love the new design", "label": ""}


def ticket_rows(count: int = 60) -> list[dict]:
    """Support tickets with one to three tags each (delimited by ';'), one without a tag and one without text."""
    topics = {"bug": "the app crashed", "payments": "my card was charged twice", "support": "nobody answered",
              "login": "I cannot log in"}
    names = list(topics)
    rows = []
    for i in range(count):
        tags = [names[i % 4]] + ([names[(i + 1) % 4]] if i % 3 == 0 else []) + ([names[(i + 2) % 4]] if i % 7 == 0 else [])
        rows.append({"id": i, "ticket": " and ".join(topics[t] for t in tags) + f", ticket {i}", "tags": ";".join(tags)})
    rows.append({"id": 900, "ticket": "just saying hello", "tags": ""})
    rows.append({"id": 901, "ticket": "", "tags": "bug"})
    return rows


def test_a_tagged_file_is_prepared_and_saved_as_a_multi_label_version(config, isolated_workspace):
    from core.accounts.auth import command_line_actor
    from core.data.dataset_versions import load_dataset_version
    from core.data.split import SplitPlan
    from core.data.tag_preparation import prepare_tags, save_tag_preparation

    table = records_from_list(ticket_rows(), source="tickets.csv")
    tag_format = detect_task(table, "tags").format
    prepared = prepare_tags(table, "ticket", tag_format, config)
    assert prepared.ready and len(prepared.rows) == 60  # the untagged row and the row without text left out
    findings = {f.code: f for f in prepared.report.findings}
    assert findings["no_text"].lines == [62] and findings["untagged"].lines == [61]
    assert "They are left out; tick 'Keep texts without a tag'" in findings["untagged"].message
    assert prepared.report.label_field == "tags in 'tags' separated by ';'"
    kept = prepare_tags(table, "ticket", tag_format, config, keep_untagged=True)
    assert len(kept.rows) == 61 and {f.code: f for f in kept.report.findings}["untagged"].severity.value == "note"

    version = save_tag_preparation(isolated_workspace, "tickets", prepared, SplitPlan(0.8, 0.1, 0.1, 3),
                                   command_line_actor())
    again = load_dataset_version(isolated_workspace, version.ref)
    assert again.multi_label and again.labels == ["bug", "login", "payments", "support"]
    frame = again.frame()
    assert frame["tags"][0] == ["bug", "payments", "support"] and frame["label"][0] == "bug; payments; support"
    assert frame["tag_ids"][0] == [0, 2, 3]
    counts = again.meta["split_counts"]
    assert all(counts[split].get(tag, 0) >= 1 for split in counts for tag in again.labels)
    assert prepared.split_preview(SplitPlan(0.8, 0.1, 0.1, 3)) == counts  # the preview is what is saved
    reordered = records_from_list(list(reversed(ticket_rows())), source="tickets.csv")
    other = save_tag_preparation(isolated_workspace, "tickets", prepare_tags(reordered, "ticket", tag_format, config),
                                 SplitPlan(0.8, 0.1, 0.1, 3), command_line_actor())
    assert other.meta["fingerprint"] == version.meta["fingerprint"]  # the same examples, another order
    assert other.meta["split_fingerprint"] == version.meta["split_fingerprint"]


def test_tags_that_cannot_be_read_block_saving_with_the_reason(config):
    from core.data.tag_preparation import prepare_tags

    table = records_from_list([{"t": "a", "tags": "x"}, {"t": "b", "tags": "y"}])
    prepared = prepare_tags(table, "t", TagFormat(TagShape.DELIMITED, "tags", "|"), config)
    assert not prepared.ready
    (error,) = prepared.report.errors
    assert error.code == "tags_unreadable" and "splits none of the values" in error.message
    one_tag = prepare_tags(records_from_list([{"t": "a", "tags": ["x"]}, {"t": "b", "tags": ["x"]}]), "t",
                           TagFormat(TagShape.LIST, "tags"), config)
    assert [f.code for f in one_tag.report.errors] == ["single_class"]


def test_tag_spellings_are_merged_into_the_most_common_one_when_asked(config):
    from core.data.tag_preparation import prepare_tags

    rows = [{"t": f"text {i}", "tags": tags} for i, tags in enumerate(
        ["bug;payments", "Bug", "bug", "payments", "bug ;Payments", "feature-request", "feature request", "bug"])]
    table = records_from_list(rows)
    tag_format = TagFormat(TagShape.DELIMITED, "tags", ";")
    as_read = prepare_tags(table, "t", tag_format, config)
    finding = as_read.report.get("tag_variants")
    assert finding.lines == [2, 5, 6] and "tick 'Merge tag spellings'" in finding.message
    merged = prepare_tags(table, "t", tag_format, config, merge_spellings=True)
    assert merged.report.get("tag_variants") is None
    assert merged.rows["tags"].tolist()[:5] == [("bug", "payments"), ("bug",), ("bug",), ("payments",),
                                                ("bug", "payments")]
    assert set(merged.report.label_counts) == {"bug", "payments", "feature request"}  # a tie: the first in sort order


def test_texts_whose_tags_the_other_texts_disagree_with_are_found_with_a_suggestion(config):
    import pandas as pd

    from core.data.tag_issues import apply_tag_decisions, find_suspicious_tags

    rows = ticket_rows(150)[:150]
    frame = pd.DataFrame({"line": range(1, 151), "text": [r["ticket"] for r in rows],
                          "tags": [tuple(r["tags"].split(";")) for r in rows]})
    wrong = {4: ("support",), 40: ("payments",), 77: ("bug", "login")}  # planted: tags the text does not speak of
    true = {line: frame.loc[line - 1, "tags"] for line in wrong}
    for line, tags in wrong.items():
        frame.at[line - 1, "tags"] = tags
    with counting_forks_here() as forks:
        check = find_suspicious_tags(frame, config)
    assert forks == []
    top = {issue.line: issue for issue in check.issues[:len(wrong)]}
    assert set(top) == set(wrong)
    assert all(set(top[line].suggested) == set(true[line]) for line in wrong)
    assert top[40].added == ("bug", "login") and top[40].dropped == ("payments",)
    fixed = apply_tag_decisions(frame, [top[4]], drop=[40])
    assert len(fixed) == 149 and set(fixed.loc[fixed["line"] == 4, "tags"].iloc[0]) == set(true[4])


def test_decisions_on_suspicious_tags_are_saved_with_the_version(config, isolated_workspace):
    from core.accounts.auth import command_line_actor
    from core.data.split import SplitPlan
    from core.data.tag_issues import TagIssue
    from core.data.tag_preparation import prepare_tags, save_tag_preparation

    table = records_from_list(ticket_rows(60), source="tickets.csv")
    prepared = prepare_tags(table, "ticket", detect_task(table, "tags").format, config)
    first = prepared.rows.iloc[0]
    decided = prepared.with_decisions([TagIssue(int(first["line"]), first["text"], first["tags"], ("login",), 0.1)],
                                      drop=[int(prepared.rows.iloc[1]["line"])])
    assert len(decided.rows) == len(prepared.rows) - 1 and decided.rows.iloc[0]["tags"] == ("login",)
    version = save_tag_preparation(isolated_workspace, "tickets", decided, SplitPlan(0.8, 0.1, 0.1, 1),
                                   command_line_actor())
    assert version.meta["tag_review"] == {"tags_changed": 1, "rows_removed": 1}
