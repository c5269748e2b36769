"""Prediction results as tables and files people can open safely."""

from __future__ import annotations

import io
import json
from typing import Any, Sequence

import pandas as pd

from core.predict import Prediction

#: A spreadsheet treats a cell starting with one of these as a formula (CSV/formula injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def results_frame(texts: Sequence[Any], predictions: Sequence[Prediction], label_names: list[str],
                  ids: Sequence[Any] | None = None) -> pd.DataFrame:
    """One row per input: id, text, status, label, score, review flag, truncation, every label's score."""
    rows = []
    for i, (text, p) in enumerate(zip(texts, predictions)):
        row = {"id": ids[i] if ids is not None else i + 1, "text": text if isinstance(text, str) else "",
               "status": p.status, "label": p.label, "score": p.score, "needs_review": p.needs_review,
               "truncated": p.truncated, "message": p.message}
        row.update({f"score: {name}": p.scores.get(name) for name in label_names})
        rows.append(row)
    return pd.DataFrame(rows)


def summarise_results(frame: pd.DataFrame) -> dict[str, Any]:
    """Counts per label, how many need review, how many rows could not be scored."""
    scored = frame[frame["status"] == "ok"]
    return {
        "rows": len(frame), "scored": len(scored), "not_scored": int((frame["status"] != "ok").sum()),
        "needs_review": int(scored["needs_review"].sum()),
        "review_share": float(scored["needs_review"].mean()) if len(scored) else 0.0,
        "per_label": {str(k): int(v) for k, v in scored["label"].value_counts().items()},
    }


def escape_formula(value: Any) -> Any:
    """Prefix a text cell that a spreadsheet would run as a formula with a quote, so it shows as text."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
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
