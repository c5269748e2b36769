"""Classified files and downloads: the upload's own columns kept, nothing a spreadsheet would run."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from core.presentation.exports import (
    escape_formula, on_page, results_frame, summarise_results, to_jsonl, to_safe_csv,
)
from core.models.predict import Prediction


def prediction(label: str, score: float, review: bool = False, status: str = "ok") -> Prediction:
    return Prediction(status, label, score, {label: score, "other": 1 - score}, needs_review=review)


def test_a_classified_file_keeps_every_column_and_never_overwrites_one():
    rows = [{"id": "A-17", "comment": "late again", "status": "open"}, {"id": "A-18", "comment": "", "status": "new"}]
    frame = results_frame(rows, [prediction("delivery", 0.9), prediction("", 0.0, status="empty")],
                          ["delivery", "other"], lines=[2, 3])
    assert frame.columns[:3].tolist() == ["id", "comment", "status"]
    assert frame["id"].tolist() == ["A-17", "A-18"] and frame["status"].tolist() == ["open", "new"]  # theirs
    assert frame["model_status"].tolist() == ["ok", "empty"]  # ours, renamed rather than overwriting theirs
    assert frame["predicted_label"].iloc[0] == "delivery" and frame["line"].tolist() == [2, 3]
    assert frame["score: delivery"].iloc[0] == pytest.approx(0.9)
    summary = summarise_results([prediction("delivery", 0.9), prediction("delivery", 0.4, review=True),
                                 prediction("", 0.0, status="empty")])
    assert (summary["scored"], summary["needs_review"], summary["not_scored"]) == (2, 1, 1)
    assert summary["per_label"] == {"delivery": 2}


def test_the_page_shows_the_columns_that_say_something_and_the_downloads_keep_all():
    """The file results ran off the right of the page ("Cut at the length limit", "Line in the file" out of
    sight): a score column per label and two columns empty on every row. A page keeps only those that say
    something; an upload column that looks like ours stays."""
    rows = [{"id": "A-17", "comment": "late again", "score: delivery": "5 stars"}, {"id": "A-18", "comment": "hi"}]
    ok = [prediction("delivery", 0.9), prediction("other", 0.7)]
    frame = results_frame(rows, ok, ["delivery", "other"])
    shown = on_page(frame)
    assert shown.columns.tolist() == ["id", "comment", "score: delivery", "predicted_label", "confidence",
                                      "needs_review", "status", "line"]
    assert shown.attrs["words"]["predicted_label"] == "Predicted label" and "message" not in shown.attrs["words"]
    assert len(frame.columns) == len(shown.columns) + 4  # the downloads: both scores, message, truncated
    empty = Prediction("empty", message="expected text, got nothing")  # as a blank row is judged
    one_empty = on_page(results_frame(rows, [ok[0], empty], ["delivery", "other"]))
    assert "message" in one_empty.columns and "truncated" not in one_empty.columns


@pytest.mark.parametrize("cell", ["=1+1", "+SUM(A1)", "-2", "@cmd", " =HYPERLINK(\"x\")", "\u3000=1",
                                  "\uff1dHYPERLINK(\"x\")", "\uff0b1", "\t=1"])
def test_formula_like_cells_are_escaped_wherever_the_formula_starts(cell):
    """A leading space before '=' and the full-width '＝' used to pass unescaped."""
    assert escape_formula(cell) == "'" + cell
    read_back = pd.read_csv(io.StringIO(to_safe_csv(pd.DataFrame({"text": [cell], "n": [3]}))), dtype={"text": str})
    assert read_back["text"].iloc[0].startswith("'") and read_back["n"].iloc[0] == 3


@pytest.mark.parametrize("cell", ["plain text", "a = b", "3-2", "", "email@example.com"])
def test_ordinary_cells_are_left_alone(cell):
    assert escape_formula(cell) == cell


def test_jsonl_keeps_values_as_they_are():
    assert to_jsonl(pd.DataFrame({"text": ["=1+1"], "score": [None]})) == '{"text": "=1+1", "score": null}\n'


def test_a_taggers_results_say_tags_and_count_each_tag():
    from core.models.predict import Prediction
    from core.presentation.exports import results_frame, summarise_results

    predictions = [Prediction("ok", "bug; payments", 0.9, {"bug": 0.95, "payments": 0.9, "ux": 0.1},
                              labels=["bug", "payments"]),
                   Prediction("ok", "bug", 0.8, {"bug": 0.9, "payments": 0.2, "ux": 0.1}, labels=["bug"]),
                   Prediction("ok", "", 0.7, {"bug": 0.3, "payments": 0.2, "ux": 0.1}, labels=[])]
    frame = results_frame([{"text": "a"}, {"text": "b"}, {"text": "c"}], predictions, ["bug", "payments", "ux"])
    assert frame["predicted_tags"].tolist() == ["bug; payments", "bug", ""]  # a tags column, not a "label"
    assert "predicted_label" not in frame.columns
    assert frame.attrs["words"]["predicted_tags"] == "Predicted tags" and frame["score: payments"][0] == 0.9
    assert summarise_results(predictions)["per_label"] == {"bug": 2, "payments": 1}


def test_a_taggers_file_results_join_tags_with_the_training_files_separator():
    from core.models.predict import Prediction
    from core.presentation.exports import results_frame

    predictions = [Prediction("ok", "bug; payments", 0.9, {"bug": 0.95, "payments": 0.9}, labels=["bug", "payments"])]
    assert results_frame([{"text": "a"}], predictions, ["bug", "payments"],
                         tag_separator="|")["predicted_tags"].tolist() == ["bug|payments"]
