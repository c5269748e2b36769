"""Predictions for everyday users: structured output, review threshold, bad rows, reload on publish."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from core.serving.monitoring import record_predictions
from core.accounts.auth import PermissionDenied
from core.platform.config import ClassifyConfig
from core.evaluation.scoring import ScoredSet, evaluate
from core.presentation.exports import escape_formula, results_frame, summarise_results, to_jsonl, to_safe_csv
from core.serving.feedback import FeedbackError, feedback_of, record_feedback
from core.models.predict import Predictor
from core.serving.publishing import publish
from core.serving.runtime import PublishedModel, predictor_for_run, serving_precision, suggested_threshold
from core.platform.store import predictions as prediction_rows
from core.training.finished import load_run_model
from tests.conftest import ANALYST, USER, save_demo_version, train_runs, workspace_store
from tests.test_training import tiny_config

MIXED = ["I was charged twice for one order", "", "   \n", None, 42, "the parcel never arrived"]


def pipeline_scorer(folder: Path, label_names: list[str], max_length: int):
    """The plain Hugging Face way, as a reference: a text-classification pipeline returning every label's score."""
    from transformers import pipeline

    classify = pipeline("text-classification", model=str(folder), top_k=None, device=-1)
    column = {name: i for i, name in enumerate(label_names)}

    def score(texts: list[str]) -> np.ndarray:
        outputs = classify(texts, batch_size=8, truncation=True, max_length=max_length)
        matrix = np.zeros((len(texts), len(label_names)), dtype=np.float32)
        for i, output in enumerate(outputs):
            for item in output:
                matrix[i, column[item["label"]]] = item["score"]
        return matrix

    return score


@pytest.fixture
def baseline_run(isolated_workspace, config):
    version = save_demo_version(isolated_workspace, config)
    (run,) = train_runs(isolated_workspace, config, version, kinds=("tfidf_logreg",))
    return run


def test_a_mixed_batch_gets_structured_results_and_a_status_per_row(isolated_workspace, config, baseline_run):
    predictor, record = predictor_for_run(isolated_workspace, baseline_run.run_id, config, threshold=0.5)
    results = predictor.predict(MIXED)
    assert [r.status for r in results] == ["ok", "empty", "empty", "not_text", "not_text", "ok"]
    assert results[3].message == "expected text, got nothing" and results[4].message == "expected text, got int"
    first = results[0]
    assert set(first.scores) == set(record.labels) and sum(first.scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert first.label == max(first.scores, key=first.scores.get) and first.score == max(first.scores.values())
    assert first.label == "billing" and results[5].label == "delivery"
    assert first.needs_review == (first.score < 0.5)
    strict = Predictor(predictor.scorer, predictor.label_names, 1.01).predict(MIXED)
    assert all(r.needs_review for r in strict if r.status == "ok")
    assert not any(r.needs_review for r in strict if r.status != "ok")
    assert first.at_threshold(0.0).needs_review is False


def test_batches_are_scored_in_chunks_with_progress(isolated_workspace, config, baseline_run):
    model, _ = load_run_model(isolated_workspace, baseline_run.run_id, config)
    calls = []
    predictor = Predictor.for_model(model, chunk_size=4)
    texts = [f"refund for order {i} please" for i in range(10)] + [""]
    results = predictor.predict(texts, lambda done, total: calls.append((done, total)))
    assert calls == [(4, 10), (8, 10), (10, 10)]
    assert len(results) == 11 and results[-1].status == "empty"
    # Rows are grouped by length across chunks, yet every result lands at its own input position.
    varied = ["my parcel never came " * (i % 5 + 1) if i % 2 else f"charged twice, refund {i} " * (4 - i % 4)
              for i in range(10)]
    expected = [model.label_names[j] for j in model.predict_proba(varied).argmax(axis=1)]
    assert [r.label for r in predictor.predict(varied)] == expected


@pytest.mark.slow
def test_transformer_runs_are_served_by_the_fast_path_that_agrees_with_the_pipeline(isolated_workspace, config_file,
                                                                                      tiny_bert):
    config = tiny_config(config_file, tiny_bert, epochs=1, extra="[inference]\nprecision = \"fp32\"")
    version = save_demo_version(isolated_workspace, config)
    (run,) = train_runs(isolated_workspace, config, version, kinds=("transformer",))
    check = run.inference
    assert set(check["accuracy"]) >= {"fp32", "onnx-int8"} and check["chosen"] in check["accuracy"]
    assert check["passed"]["fp32"] and all(
        check["accuracy"]["fp32"] - check["accuracy"][p] <= 0.005 + 1e-9 for p, ok in check["passed"].items() if ok)
    predictor, record = predictor_for_run(isolated_workspace, run.run_id, config)
    assert predictor.scorer.__qualname__ == "FineTunedTransformer.score"  # the fast path, one tokenisation
    folder = isolated_workspace.runs / run.run_id / "model"
    reference = pipeline_scorer(folder, record.labels, max_length=64)  # the plain Hugging Face way
    texts = ["late parcel again", "refund still missing after three weeks", "word " * 200, "ok"]
    scores, truncated = predictor.scorer(texts)
    np.testing.assert_allclose(scores, reference(texts), atol=1e-4)
    assert truncated == [False, False, True, False]
    results = predictor.predict(texts)
    assert [r.truncated for r in results] == [False, False, True, False]  # max_length is 64 tokens here


@pytest.mark.slow
def test_onnx_runtime_variants_are_saved_beside_the_weights_checked_and_served_only_when_they_passed(
        isolated_workspace, config_file, tiny_bert):
    import onnx

    config = tiny_config(config_file, tiny_bert, epochs=1)
    version = save_demo_version(isolated_workspace, config)
    (run,) = train_runs(isolated_workspace, config, version, kinds=("transformer",))
    check = run.inference
    assert set(check["texts_per_second"]) >= {"fp32", "onnx-fp32", "onnx-int8"}
    assert check["agreement"]["fp32"] == 1.0 and check["min_agreement"] == config.inference.min_label_agreement
    assert check["passed"][check["chosen"]] and serving_precision(run, config) == check["chosen"]
    assert serving_precision(replace(run, inference={**check, "chosen": "int8"}), config) == "fp32"  # retired

    folder = isolated_workspace.runs / run.run_id / "model"
    int8_ops = {node.op_type for node in onnx.load(str(folder / "onnx" / "model_int8.onnx")).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} & int8_ops  # weights int8, activations quantised on the fly
    model, _ = load_run_model(isolated_workspace, run.run_id, config)
    texts = ["refund please", "the parcel is late", "app crashed", "word " * 100]
    full = model.predict_proba(texts)
    model.use_precision("onnx-fp32")
    assert model.runtime is not None and model.runtime.path == folder / "onnx" / "model.onnx"
    np.testing.assert_allclose(model.predict_proba(texts), full, atol=1e-4)
    model.use_precision("onnx-int8")
    reduced = model.predict_proba(texts)
    assert reduced.shape == full.shape and np.allclose(reduced.sum(axis=1), 1.0, atol=1e-5)
    model.use_precision("fp32")  # back to the untouched full-precision weights
    assert model.runtime is None
    np.testing.assert_allclose(model.predict_proba(texts), full, atol=1e-6)
    model.folder = None  # a model saved before the ONNX files were: exported once, elsewhere
    model.use_precision("onnx-fp32")
    assert folder not in model.runtime.path.parents
    np.testing.assert_allclose(model.predict_proba(texts), full, atol=1e-4)


def test_the_published_model_is_loaded_once_and_reloaded_after_publishing(isolated_workspace, config):
    version = save_demo_version(isolated_workspace, config)
    first, second = train_runs(isolated_workspace, config, version)
    served = PublishedModel(isolated_workspace, config)
    assert served.current() is None
    publish(isolated_workspace, first.run_id, ANALYST)
    _, record = served.current()
    served.current()
    assert record.run_id == first.run_id and served.loads == 1
    publish(isolated_workspace, second.run_id, ANALYST)
    predictor, record = served.current()
    assert record.run_id == second.run_id and served.loads == 2
    assert predictor.predict(["my card was charged twice"])[0].status == "ok"


def test_the_default_threshold_reaches_the_target_accuracy_on_the_test_split():
    scores = np.array([[0.9, 0.05, 0.05], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.5, 0.2, 0.3],
                       [0.95, 0.0, 0.05]])
    evaluation = evaluate(ScoredSet([str(i) for i in range(6)], np.array([0, 0, 1, 1, 2, 2]), scores,
                                    ["a", "b", "c"], "hand-made"))
    settings = ClassifyConfig(target_accuracy=0.75, review_threshold=0.5, min_test_texts=1)
    # kept at >= 0.61: 0.9 (right), 0.7 (right), 0.8 (right), 0.95 (wrong) -> 3/4
    suggested = suggested_threshold(evaluation, settings)
    assert suggested.value == pytest.approx(0.61) and "75%" in suggested.note
    assert suggested_threshold(evaluation, replace(settings, target_accuracy=1.0)).value == 0.5  # never reached
    assert suggested_threshold(None, replace(settings, review_threshold=0.42)).value == 0.42


def test_the_threshold_never_drops_below_its_floor_and_ignores_a_too_small_test_split():
    """A run right on 95 % of 40 test texts was given 0.00, badging 43 %-confident answers 'confident'."""
    rng = np.random.default_rng(0)
    top = rng.uniform(0.5, 1.0, 200)
    scores = np.column_stack([top, 1 - top])
    evaluation = evaluate(ScoredSet([str(i) for i in range(200)], np.zeros(200, dtype=int), scores, ["a", "b"],
                                    "all right"))  # every text right, whatever its confidence
    settings = ClassifyConfig()
    assert suggested_threshold(evaluation, settings).value == settings.min_review_threshold == 0.5
    small = evaluate(ScoredSet([str(i) for i in range(40)], np.zeros(40, dtype=int), scores[:40], ["a", "b"], "small"))
    too_small = suggested_threshold(small, settings)
    assert too_small.value == settings.review_threshold
    assert "only 40 texts" in too_small.note


def test_csv_export_escapes_formula_prefixes_and_jsonl_keeps_values(isolated_workspace, config, baseline_run):
    predictor, record = predictor_for_run(isolated_workspace, baseline_run.run_id, config)
    texts = ["=HYPERLINK(\"http://evil\")", "+1 refund", "-2 stars", "@admin parcel lost", "plain words"]
    predictions = predictor.predict(texts)
    frame = results_frame([{"text": text} for text in texts], predictions, record.labels)
    parsed = pd.read_csv(io.StringIO(to_safe_csv(frame)))
    assert parsed["text"].tolist() == ["'=HYPERLINK(\"http://evil\")", "'+1 refund", "'-2 stars",
                                       "'@admin parcel lost", "plain words"]
    assert parsed["confidence"].dtype == float and (parsed["confidence"] > 0).all()  # numbers are left alone
    assert escape_formula(-3.5) == -3.5
    lines = [json.loads(line) for line in to_jsonl(frame).splitlines()]
    assert lines[0]["text"] == texts[0] and set(lines[0]) >= {"predicted_label", "confidence", "needs_review",
                                                             "status"}
    summary = summarise_results(predictions)
    assert summary["rows"] == 5 and sum(summary["per_label"].values()) == 5


def test_served_predictions_are_logged_without_text_unless_configured(isolated_workspace, config, baseline_run):
    store = workspace_store(isolated_workspace)
    predictor, record = predictor_for_run(isolated_workspace, baseline_run.run_id, config)
    batch = ["charged twice", "parcel lost"]
    results = predictor.predict(batch)
    assert record_predictions(store, USER, "s1", record.run_id, list(zip(batch, results)), "batch", keep_text=False) == 2
    record_predictions(store, USER, "s1", record.run_id, [(batch[0], results[0])], "single", keep_text=True)
    rows = store.rows(select(prediction_rows).order_by(prediction_rows.c.id))
    assert [r["text"] for r in rows] == [None, None, "charged twice"]
    assert {r["username"] for r in rows} == {"uma"} and rows[0]["label"] == results[0].label


def test_feedback_is_stored_with_text_run_user_and_time(isolated_workspace, baseline_run):
    store = workspace_store(isolated_workspace)
    labels = baseline_run.labels
    item = record_feedback(store, USER, baseline_run.run_id, labels, "parcel came late", "billing", 0.55, "delivery")
    assert (item.username, item.run_id, item.text, item.predicted, item.correct_label) == (
        "uma", baseline_run.run_id, "parcel came late", "billing", "delivery")
    assert not item.is_correct and item.status == "pending" and item.time.tzinfo is not None
    right = record_feedback(store, USER, baseline_run.run_id, labels, "refund", "billing", 0.9, "billing")
    assert right.is_correct
    assert [f.id for f in feedback_of(store, "uma")] == [right.id, item.id]
    with pytest.raises(FeedbackError, match="not one of the model's labels"):
        record_feedback(store, USER, baseline_run.run_id, labels, "x", "billing", 0.9, "refunds")
    from core.platform.config import load_config
    from core.services import Caller, Studio
    from core.services.classification import give_feedback

    with pytest.raises(PermissionDenied, match="sign in to give feedback"):
        give_feedback(Studio(load_config(), store=store), Caller(None), baseline_run, "x", "billing", 0.9, "billing")


def test_precision_check_keeps_only_variants_within_the_tolerance_that_label_as_fp32_does():
    """A fake scorer per variant: onnx-int8 flips one label of 100 (1 point of accuracy), bf16 none."""
    from core.models.precision import check_precisions

    truth = [i % 3 for i in range(100)]
    right = np.eye(3)[truth]
    flipped = right.copy()
    flipped[0] = np.eye(3)[(truth[0] + 1) % 3]
    current = {}
    scores = {"fp32": right, "onnx-int8": flipped, "bf16": right}

    def check(max_loss: float, min_agreement: float, variants: list[str]):
        return check_precisions(lambda p: current.update(p=p), lambda texts: scores[current["p"]][:len(texts)],
                                [str(i) for i in range(100)], truth, max_loss, min_agreement, variants)

    strict = check(0.005, 0.0, ["fp32", "onnx-int8", "bf16"])
    assert strict.accuracy == {"fp32": 1.0, "onnx-int8": 0.99, "bf16": 1.0}
    assert strict.agreement == {"fp32": 1.0, "onnx-int8": 0.99, "bf16": 1.0}
    assert 0.98 < strict.macro_f1["onnx-int8"] < 0.995
    assert strict.passed == {"fp32": True, "onnx-int8": False, "bf16": True}
    assert strict.chosen in ("fp32", "bf16")
    assert check(0.02, 0.99, ["fp32", "onnx-int8"]).passed["onnx-int8"]
    assert not check(0.02, 0.995, ["fp32", "onnx-int8"]).passed["onnx-int8"]  # F1 close enough, labels not


@pytest.mark.slow
def test_a_run_timed_on_another_cpu_is_timed_again_where_it_is_published(isolated_workspace, config_file, tiny_bert):
    from core.models.precision import this_cpu
    from core.services.publishing import publish_run
    from core.services.studio import Caller, Studio
    from core.serving.runtime import serving_check, serving_model
    from core.training.runs import load_record, save_record

    config = tiny_config(config_file, tiny_bert, epochs=1)
    (run,) = train_runs(isolated_workspace, config, save_demo_version(isolated_workspace, config),
                        kinds=("transformer",))
    assert run.inference["cpu"] == this_cpu() and serving_check(isolated_workspace, run).cpu == this_cpu()
    elsewhere = {**run.inference, "cpu": "Some Xeon (avx2)", "chosen": "fp32",
                 "texts_per_second": {variant: 1.0 for variant in run.inference["texts_per_second"]}}
    save_record(isolated_workspace, replace(run, inference=elsewhere))  # as if trained on an AVX2 machine
    moved = load_record(isolated_workspace, run.run_id)
    publish_run(Studio(config), Caller(ANALYST, "s-ana"), run.run_id)
    here = serving_check(isolated_workspace, moved)
    assert here.cpu == this_cpu() and here.texts_per_second["fp32"] > 1.0  # timed again on this machine
    assert set(here.texts_per_second) == set(elsewhere["texts_per_second"]) and here.passed[here.chosen]
    assert load_record(isolated_workspace, run.run_id).inference == elsewhere  # the run's own record is untouched
    model, _ = serving_model(isolated_workspace, run.run_id, config)
    assert (model.runtime is not None) == here.chosen.startswith("onnx")
