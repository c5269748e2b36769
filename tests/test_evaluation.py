"""Evaluation metrics against hand-computed values, comparison rules, reports."""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from core.experiments.comparison import ComparisonError, comparable_groups, comparison_table, recommend, transformer_verdict
from core.evaluation.scoring import (
    EvaluationError, ScoredSet, evaluate, expected_calibration_error, filter_errors, labelled_rows, load_scores,
)
from core.data.ingest import records_from_list
from core.data.preparation import prepare, save_preparation
from core.data.cleaning import CleaningOptions
from core.data.ingest import DEMO_DATASET, read_feedback_file
from core.experiments.reports import experiments_csv, experiments_json, file_evaluation, markdown_report, run_evaluation
from core.training.runs import RunState, run_folder
from core.data.split import SplitPlan
from tests.conftest import ANALYST, save_demo_version, train_runs

LABELS = ["billing", "delivery", "app"]
# Six texts, three classes; "app" (id 2) is never predicted.
Y_TRUE = [0, 0, 1, 1, 2, 2]
SCORES = [
    [0.90, 0.05, 0.05],  # true billing, predicted billing (right, 0.90)
    [0.30, 0.60, 0.10],  # true billing, predicted delivery (wrong, 0.60)
    [0.20, 0.70, 0.10],  # true delivery, predicted delivery (right, 0.70)
    [0.10, 0.80, 0.10],  # true delivery, predicted delivery (right, 0.80)
    [0.50, 0.20, 0.30],  # true app, predicted billing (wrong, 0.50)
    [0.95, 0.00, 0.05],  # true app, predicted billing (wrong, 0.95)
]


@pytest.fixture
def tiny() -> ScoredSet:
    return ScoredSet([f"text {i}" for i in range(6)], np.array(Y_TRUE), np.array(SCORES), LABELS, "hand-made",
                     lines=[10, 11, 12, 13, 14, 15], seconds=0.5)


def test_headline_metrics_match_hand_computation(tiny):
    m = evaluate(tiny).metrics
    # billing: P 1/3, R 1/2, F1 0.4 · delivery: P 2/3, R 1, F1 0.8 · app: never predicted, R 0, F1 0
    assert m["accuracy"] == pytest.approx(3 / 6)
    assert m["macro_precision"] == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)
    assert m["macro_recall"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert m["macro_f1"] == pytest.approx((0.4 + 0.8 + 0) / 3)
    assert m["weighted_f1"] == pytest.approx((2 * 0.4 + 2 * 0.8 + 2 * 0) / 6)


def test_per_class_reports_undefined_precision_as_undefined(tiny):
    evaluation = evaluate(tiny)
    rows = {row["label"]: row for row in evaluation.per_class}
    assert rows["billing"]["precision"] == pytest.approx(1 / 3) and rows["billing"]["f1"] == pytest.approx(0.4)
    assert rows["delivery"]["recall"] == 1.0 and rows["delivery"]["support"] == 2
    assert rows["app"]["precision"] is None and rows["app"]["recall"] == 0.0 and rows["app"]["predicted"] == 0
    assert evaluation.undefined_precision == ["app"]
    assert evaluation.report["app"]["precision"] is None
    assert evaluation.report["delivery"]["f1-score"] == pytest.approx(0.8)
    assert "billing" in evaluation.report_text and "nan" in evaluation.report_text


def test_no_metric_warnings_escape(tiny):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluate(tiny)


def test_confusion_matrix_counts_and_row_shares(tiny):
    evaluation = evaluate(tiny)
    assert evaluation.confusion == [[1, 1, 0], [0, 2, 0], [2, 0, 0]]
    assert evaluation.confusion_normalised == [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]


def test_calibration_error_matches_hand_computation(tiny):
    # Every text falls in its own confidence bin, so ECE is the mean |correct - confidence|.
    expected = (0.10 + 0.60 + 0.30 + 0.20 + 0.50 + 0.95) / 6
    assert evaluate(tiny).calibration_error == pytest.approx(expected)
    perfect = expected_calibration_error(np.array([1.0, 1.0]), np.array([True, True]))
    assert perfect == 0.0


def test_threshold_curve_shows_share_kept_and_their_accuracy(tiny):
    curve = {round(row["threshold"], 2): row for row in evaluate(tiny).threshold_curve}
    assert curve[0.0] == {"threshold": 0.0, "share_kept": 1.0, "accuracy_kept": 0.5}
    assert curve[0.7]["share_kept"] == pytest.approx(4 / 6) and curve[0.7]["accuracy_kept"] == pytest.approx(3 / 4)
    assert curve[0.96]["share_kept"] == 0.0 and curve[0.96]["accuracy_kept"] is None


def test_errors_are_listed_most_confident_first_and_filterable(tiny):
    errors = evaluate(tiny).errors
    assert errors["line"].tolist() == [15, 11, 14]
    assert errors["confidence"].tolist() == [0.95, 0.60, 0.50]
    assert errors.iloc[0][["true label", "predicted"]].tolist() == ["app", "billing"]
    assert errors.iloc[0]["score of true label"] == pytest.approx(0.05)
    assert len(filter_errors(errors, true_label="app")) == 2
    assert filter_errors(errors, true_label="app", predicted="billing")["line"].tolist() == [15, 14]
    assert filter_errors(errors, predicted="app").empty


def test_labelled_rows_match_labels_ignoring_case_and_name_bad_lines():
    table = records_from_list([{"t": "late", "y": "Delivery "}, {"t": "refund", "y": "billing"}], source="new.jsonl")
    texts, ids, lines = labelled_rows(table, "t", "y", LABELS)
    assert (texts, ids, lines) == (["late", "refund"], [1, 0], [1, 2])
    unknown = records_from_list([{"t": "x", "y": "billing"}, {"t": "y", "y": "returns"}], source="new.jsonl")
    with pytest.raises(EvaluationError, match=r"new.jsonl: labels the model was not trained on: 'returns' \(line 2\)"):
        labelled_rows(unknown, "t", "y", LABELS)
    empty = records_from_list([{"t": "", "y": "billing"}], source="new.jsonl")
    with pytest.raises(EvaluationError, match=r"lack a text or a label \(line 1\)"):
        labelled_rows(empty, "t", "y", LABELS)
    with pytest.raises(EvaluationError, match="no field 'text'"):
        labelled_rows(table, "text", "y", LABELS)


def _second_split(workspace, config):
    """The demo set saved again with another split seed: same data, a different test split."""
    prepared = prepare(read_feedback_file(DEMO_DATASET, 10_000_000), "text", "label", CleaningOptions(), config)
    plan = SplitPlan(config.split.train, config.split.validation, config.split.test, seed=7)
    return save_preparation(workspace, "demo-reseeded", prepared, plan, ANALYST)


def test_runs_store_their_test_scores_and_compare_on_one_split(isolated_workspace, config):
    version = save_demo_version(isolated_workspace, config)
    logreg, bayes = train_runs(isolated_workspace, config, version)
    assert logreg.state is RunState.SUCCEEDED and bayes.state is RunState.SUCCEEDED
    stored = load_scores(run_folder(isolated_workspace, logreg.run_id))
    assert len(stored.texts) == sum(version.meta["split_counts"]["test"].values())
    evaluation = run_evaluation(isolated_workspace, logreg, config)
    assert evaluation.metrics["accuracy"] == pytest.approx(logreg.test_metrics["accuracy"])
    assert evaluation.texts_per_second and evaluation.texts_per_second > 0

    pairs = [(r, run_evaluation(isolated_workspace, r, config)) for r in (logreg, bayes)]
    table = comparison_table(pairs)
    assert set(table["run"]) == {logreg.run_id, bayes.run_id} and (table["family"] == "baseline").all()
    best = recommend(table, "macro_f1")
    assert best.run_id == table.sort_values("validation macro_f1").iloc[-1]["run"]
    assert "highest validation macro-F1" in best.reason and "on the test split it scores" in best.reason

    other = train_runs(isolated_workspace, config, _second_split(isolated_workspace, config), kinds=("tfidf_logreg",))
    with pytest.raises(ComparisonError, match="different splits"):
        comparison_table(pairs + [(other[0], run_evaluation(isolated_workspace, other[0], config))])
    groups = comparable_groups([logreg, bayes, other[0]])
    assert sorted(len(g) for g in groups.values()) == [1, 2]


def test_recommend_breaks_ties_by_speed_and_rejects_unknown_metrics():
    table = pd.DataFrame([
        {"run": "a", "model": "A", "macro_f1": 0.8, "accuracy": 0.9, "texts/s": 100.0},
        {"run": "b", "model": "B", "macro_f1": 0.8, "accuracy": 0.8, "texts/s": 900.0},
    ])
    tie = recommend(table, "macro_f1")
    assert tie.run_id == "b" and "tied with A and faster" in tie.reason
    assert recommend(table, "accuracy").run_id == "a"
    with pytest.raises(ComparisonError, match="cannot rank by"):
        recommend(table, "loss")


def test_the_recommendation_is_chosen_on_validation_and_says_when_a_baseline_wins():
    table = pd.DataFrame([
        {"run": "t", "model": "Fine-tuned transformer", "family": "transformer", "macro_f1": 0.95,
         "validation macro_f1": 0.80, "texts/s": 50.0},
        {"run": "b", "model": "TF-IDF + logistic regression", "family": "baseline", "macro_f1": 0.90,
         "validation macro_f1": 0.85, "texts/s": 900.0},
    ])
    best = recommend(table, "macro_f1")
    assert best.run_id == "b" and "highest validation macro-F1 (0.850)" in best.reason  # test scores never choose
    verdict = transformer_verdict(table)
    assert verdict.startswith("TF-IDF + logistic regression does as well as or better") and "use the baseline" in verdict
    table.loc[0, "validation macro_f1"] = 0.9
    assert "beats the best baseline" in transformer_verdict(table) and recommend(table).run_id == "t"
    assert transformer_verdict(table[table["family"] == "baseline"]) is None
    no_validation = table.assign(**{"validation macro_f1": [None, 0.85]})
    assert "test split decided" in recommend(no_validation).reason


def test_reports_and_exports_carry_settings_fingerprints_and_metrics(isolated_workspace, config):
    version = save_demo_version(isolated_workspace, config)
    (record,) = train_runs(isolated_workspace, config, version, kinds=("tfidf_logreg",))
    evaluation = run_evaluation(isolated_workspace, record, config)
    report = markdown_report(record, evaluation)
    assert record.run_id in report and f"{evaluation.metrics['accuracy']:.3f}" in report
    assert "| label | precision | recall | f1 | support |" in report
    assert record.name in report  # a baseline lists its own hyper-parameters (it used to have none of its own)
    assert "- Hyper-parameters: ngram_max=2, min_df=1, class_weighted=True, c=10.0" in report
    rows = pd.read_csv(io.StringIO(experiments_csv([(record, evaluation)])))
    assert rows.loc[0, "dataset_fingerprint"] == version.meta["fingerprint"]
    # the transformer's learning rate, epochs and preset mean nothing for a baseline: not there; its own are
    assert "hp_learning_rate" not in rows and "hp_epochs" not in rows and rows["preset"].isna().all()
    assert rows.loc[0, "hp_c"] == 10.0 and rows.loc[0, "hp_ngram_max"] == 2
    assert rows.loc[0, "test_macro_f1"] == pytest.approx(evaluation.metrics["macro_f1"])
    exported = json.loads(experiments_json([(record, evaluation)]))
    assert exported[0]["run"]["hyperparameters"] == record.hyperparameters
    assert exported[0]["test"]["confusion"] == evaluation.confusion


def test_a_run_is_evaluated_on_another_labelled_file(isolated_workspace, config):
    version = save_demo_version(isolated_workspace, config)
    (record,) = train_runs(isolated_workspace, config, version, kinds=("tfidf_logreg",))
    rows = [{"comment": "I was charged twice this month", "topic": "BILLING"},
            {"comment": "parcel never arrived", "topic": "delivery"},
            {"comment": "the app crashes at login", "topic": "app_website"}]
    evaluation, _ = file_evaluation(isolated_workspace, record.run_id, records_from_list(rows, "extra.jsonl"),
                                    "comment", "topic", config)
    assert evaluation.examples == 3 and evaluation.source == "extra.jsonl"
    assert sum(map(sum, evaluation.confusion)) == 3
    assert evaluation.labels == version.labels


def test_an_evaluation_reads_as_one_sentence_with_its_weakest_label_and_what_it_is_taken_for():
    from core.presentation.metrics_words import evaluation_in_words

    labels = ["billing", "delivery", "payments"]
    y_true = [0] * 10 + [1] * 10 + [2] * 10
    predicted = [0] * 10 + [1] * 9 + [0] + [2] * 4 + [0] * 6  # payments mostly taken for billing
    scores = np.full((30, 3), 0.1)
    scores[np.arange(30), predicted] = 0.8
    evaluation = evaluate(ScoredSet([f"t{i}" for i in range(30)], np.array(y_true), scores, labels, "test split"))
    assert evaluation_in_words(evaluation) == ("On 30 texts it had not seen, it was right 77% of the time; weakest "
                                               "on “payments” (F1 0.57), which it most often takes for “billing” "
                                               "(6 of 10 texts).")
