import pandas as pd

from core.data.cleaning import CleaningOptions, RareClassAction, apply_cleaning
from core.platform.config import load_config
from core.data.ingest import records_from_list
from core.data.preparation import prepare


def frame(rows):
    return pd.DataFrame({"line": range(1, len(rows) + 1), "text": pd.Series([r[0] for r in rows], dtype=object),
                         "label": pd.Series([r[1] for r in rows], dtype=object)})


ROWS = [("late parcel", "delivery"), ("Late  parcel", "delivery"), ("charged twice", "Billing"),
        ("charged twice", "delivery"), ("", "billing"), ("refund please", "billing "), (None, "x"),
        ("app crashed", "app"), ("fine", 3)]


def test_nothing_changes_without_options():
    result = apply_cleaning(frame(ROWS), CleaningOptions())
    assert result.steps == [] and len(result.frame) == len(ROWS)


def test_each_step_reports_its_effect():
    result = apply_cleaning(frame(ROWS), CleaningOptions(
        drop_invalid_rows=True, normalise_labels=True, drop_conflicts=True, drop_duplicates=True))
    effects = {s.name: (s.rows_removed, s.labels_changed) for s in result.steps}
    assert effects == {"drop_invalid_rows": (2, 0), "normalise_labels": (0, 3),
                       "drop_conflicts": (2, 0), "drop_duplicates": (1, 0)}
    assert result.frame["text"].tolist() == ["late parcel", "refund please", "app crashed", "fine"]
    assert result.frame["label"].tolist() == ["delivery", "billing", "app", "3"]
    assert result.frame["line"].tolist() == [1, 6, 8, 9]  # source lines survive cleaning


def test_rare_classes_can_be_dropped_or_merged():
    rows = [(f"a{i}", "a") for i in range(4)] + [("b0", "b"), ("c0", "c"), ("c1", "c")]
    dropped = apply_cleaning(frame(rows), CleaningOptions(rare_classes=RareClassAction.DROP, min_class_size=3))
    assert set(dropped.frame["label"]) == {"a"} and dropped.rows_removed == 3
    merged = apply_cleaning(frame(rows), CleaningOptions(rare_classes=RareClassAction.MERGE, min_class_size=3))
    assert merged.frame["label"].tolist() == ["a"] * 4 + ["other"] * 3


def test_prepare_revalidates_after_cleaning():
    records = ([{"text": f"good {i}", "label": "pos"} for i in range(6)]
               + [{"text": f"bad {i}", "label": "neg"} for i in range(6)]
               + [{"text": "meh", "label": "neutral"}, {"label": "pos"}])
    table = records_from_list(records)
    raw = prepare(table, "text", "label", CleaningOptions(), load_config())
    assert {f.code for f in raw.report.errors} == {"missing_text", "rare_classes"} and not raw.ready
    fixed = prepare(table, "text", "label", CleaningOptions(
        drop_invalid_rows=True, rare_classes=RareClassAction.DROP), load_config())
    assert fixed.ready and fixed.report.findings == []
    assert fixed.raw_report.get("missing_text") is not None  # the original report is kept
    assert len(fixed.training_frame()) == 12
