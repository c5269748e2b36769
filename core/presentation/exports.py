"""Prediction results as tables and files people can open safely."""

from __future__ import annotations

import io
import json
from collections import Counter
from typing import TYPE_CHECKING, Any, Sequence

import pandas as pd

if TYPE_CHECKING:
    from core.models.predict import Prediction

#: How a tagger's tags are joined into one label (a prediction's, a verdict's), and in a classified file when its
#: training file's separator is unknown.
TAG_JOIN = "; "

#: A spreadsheet treats a cell starting with one of these as a formula (CSV/formula injection), also after
#: leading spaces, and in their full-width forms (＝ ＋ － ＠), which some spreadsheets read as the ASCII ones.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


#: Columns appended to a classified file, after every column of the upload.
LABEL, SCORE, REVIEW, STATUS, MESSAGE, TRUNCATED, LINE = (
    "predicted_label", "confidence", "needs_review", "status", "message", "truncated", "line")
#: How those columns read on the page; the downloads keep the stable machine names above (README: Classify).
COLUMN_WORDS = {LABEL: "Predicted label", SCORE: "Confidence", REVIEW: "Needs review", STATUS: "Status",
                MESSAGE: "Why it was not classified", TRUNCATED: "Cut at the length limit", LINE: "Line in the file"}

#: A tagger's results name their first column for what it holds: the tags, joined by the training file's separator.
TAGS = "predicted_tags"
#: The same for a tagger's results: its tags and the certainty of its least certain tag.
TAG_WORDS = {LABEL: "Predicted tags", SCORE: "Certainty"}


def _free_name(name: str, taken: set[str]) -> str:
    """``name``, or ``model_<name>`` (…) when the upload already has a column of that name."""
    while name in taken:
        name = f"model_{name}"
    return name


def results_frame(rows: Sequence[dict[str, Any]], predictions: Sequence[Prediction], label_names: list[str],
                  lines: Sequence[int] | None = None, tag_separator: str | None = None) -> pd.DataFrame:
    """Every column of the upload as it was, then the prediction: label, confidence, review flag, status,
    the file line number, and every label's score; an appended name that clashes with an upload column
    gets a ``model_`` prefix, so nothing the user sent is overwritten. ``attrs["words"]`` maps each appended
    column to the words a page shows as its header. A tagger's tags go in ``predicted_tags``, joined by
    ``tag_separator`` (the one its training file used; "; " when unknown)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    taken = set(columns)
    tagger = any(p.labels is not None for p in predictions)
    names = {name: _free_name(TAGS if tagger and name == LABEL else name, taken)
             for name in (LABEL, SCORE, REVIEW, STATUS, MESSAGE, TRUNCATED, LINE)}
    score_names = {label: _free_name(f"score: {label}", taken) for label in label_names}
    records = []
    for i, (row, p) in enumerate(zip(rows, predictions)):
        record = {column: row.get(column) for column in columns}
        label = (tag_separator or TAG_JOIN).join(p.labels) if p.labels is not None else p.label
        record.update({names[LABEL]: label, names[SCORE]: p.score, names[REVIEW]: p.needs_review,
                       names[STATUS]: p.status, names[MESSAGE]: p.message, names[TRUNCATED]: p.truncated,
                       names[LINE]: lines[i] if lines is not None else i + 1})
        record.update({score_names[label]: p.scores.get(label) for label in label_names})
        records.append(record)
    frame = pd.DataFrame(records, columns=[*columns, *names.values(), *score_names.values()])
    frame.attrs["words"] = {names[name]: words for name, words in COLUMN_WORDS.items()}  # for the page's headers
    if tagger:  # a tagger's: its tags joined by the separator, each scored
        frame.attrs["words"].update({names[name]: words for name, words in TAG_WORDS.items()})
    frame.attrs["scores"] = list(score_names.values())
    return frame


def on_page(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns of a results frame a page shows: the upload's and the prediction's, without the score of every
    label (one column per label: wide with many labels) nor "why it was not classified" / "cut at the length
    limit" when no row has one, so the table fits its width; the downloads keep every column."""
    words = frame.attrs.get("words", {})
    by_words = {text: name for name, text in words.items()}
    dropped = list(frame.attrs.get("scores", []))
    for quiet in (COLUMN_WORDS[MESSAGE], COLUMN_WORDS[TRUNCATED]):
        name = by_words.get(quiet)
        if name is not None and not frame[name].fillna(False).astype(bool).any():
            dropped.append(name)
    shown = frame.drop(columns=dropped)
    shown.attrs["words"] = {name: text for name, text in words.items() if name in shown.columns}
    shown.attrs["scores"] = []
    return shown


def summarise_results(predictions: Sequence[Prediction]) -> dict[str, Any]:
    """Counts per label (a tagger's: texts per tag, a text counted once for each of its tags), how many need
    review, how many rows could not be scored."""
    scored = [p for p in predictions if p.status == "ok"]
    review = sum(p.needs_review for p in scored)
    given = Counter(tag for p in scored for tag in (p.labels if p.labels is not None else [p.label]))
    return {
        "rows": len(predictions), "scored": len(scored), "not_scored": len(predictions) - len(scored),
        "needs_review": review, "review_share": review / len(scored) if scored else 0.0,
        "per_label": dict(given.most_common()),
    }


def escape_formula(value: Any) -> Any:
    """Prefix a text cell that a spreadsheet would run as a formula with a quote, so it shows as text."""
    if isinstance(value, str) and value.lstrip(" \u3000").startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def to_safe_csv(frame: pd.DataFrame) -> str:
    """CSV text with every formula-like text cell escaped (numbers stay numbers)."""
    buffer = io.StringIO()
    frame.map(escape_formula).to_csv(buffer, index=False)
    return buffer.getvalue()


def to_jsonl(frame: pd.DataFrame) -> str:
    """One JSON object per row, values as they are (JSON is not interpreted by spreadsheets)."""
    records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    return "".join(json.dumps(record, ensure_ascii=False, default=str) + "\n" for record in records)
