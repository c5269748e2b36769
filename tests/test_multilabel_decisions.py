"""From per-tag scores to tag sets: thresholds tuned per tag on held-out texts, and the multi-label metrics."""

from __future__ import annotations

import numpy as np
import pytest

from core.models.multilabel import (
    DEFAULT_THRESHOLD, TagDecisions, best_f1_threshold, decide, indicator, multilabel_metrics, per_tag_metrics,
    tune_thresholds,
)


def test_the_best_threshold_is_found_between_the_scores_it_separates():
    scores = np.array([0.9, 0.4, 0.35, 0.3, 0.1, 0.05])
    truth = np.array([1, 1, 1, 0, 0, 0])
    threshold, f1 = best_f1_threshold(scores, truth)
    assert threshold == pytest.approx((0.35 + 0.3) / 2) and f1 == 1.0  # 0.5 would have found one of three
    assert (scores >= threshold).tolist() == truth.astype(bool).tolist()
    tied = best_f1_threshold(np.array([0.6, 0.6, 0.2]), np.array([1, 0, 0]))
    assert tied[0] == pytest.approx(0.4)  # equal scores are given together: no cut between them


def test_a_rare_tag_keeps_the_default_and_a_common_one_is_tuned():
    rng = np.random.default_rng(0)
    truth = np.zeros((200, 2), dtype=int)
    truth[:60, 0] = 1
    truth[:3, 1] = 1  # three positives: too few to tune on
    scores = np.column_stack([np.where(truth[:, 0], 0.3, 0.1) + rng.uniform(0, 0.05, 200),
                              np.where(truth[:, 1], 0.3, 0.1)])
    thresholds = tune_thresholds(scores, truth)
    assert 0.15 < thresholds[0] < 0.3 and thresholds[1] == DEFAULT_THRESHOLD
    assert multilabel_metrics(truth[:, :1], decide(scores[:, :1], thresholds[:1], False))["micro_f1"] == 1.0


def test_at_least_one_tag_gives_the_best_scoring_one_when_none_reaches_its_threshold():
    scores = np.array([[0.2, 0.4], [0.7, 0.9]])
    assert decide(scores, np.array([0.5, 0.5]), at_least_one=True).tolist() == [[0, 1], [1, 1]]
    assert decide(scores, np.array([0.5, 0.5]), at_least_one=False).tolist() == [[0, 0], [1, 1]]
    decisions = TagDecisions((0.1, 0.5), at_least_one=False, tuned=True)
    assert TagDecisions.from_dict(decisions.to_dict()) == decisions
    assert decisions.apply(scores).tolist() == [[1, 0], [1, 1]]


def test_the_metrics_match_their_definitions():
    truth = indicator([[0, 1], [1], [2], []], 3)
    given = indicator([[0], [1], [1, 2], []], 3)
    metrics = multilabel_metrics(truth, given)
    # a: right on text 1; b: true on texts 1-2, given on 2-3; c: right on text 3 (tp 3, fp 1, fn 1)
    assert metrics["micro_precision"] == pytest.approx(3 / 4) and metrics["micro_recall"] == pytest.approx(3 / 4)
    assert metrics["subset_accuracy"] == pytest.approx(2 / 4)  # text 2 and the untagged text 4
    assert metrics["hamming_loss"] == pytest.approx(2 / 12)
    assert metrics["macro_f1"] == pytest.approx((1.0 + 0.5 + 1.0) / 3)
    rows = per_tag_metrics(truth, given, ["a", "b", "c"], [0.5, 0.4, 0.3])
    assert rows[1] == {"label": "b", "precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2, "predicted": 2,
                       "threshold": 0.4}


def test_a_taggers_test_scores_round_trip_and_name_the_missing_and_extra_tags(tmp_path):
    from core.evaluation.tag_scoring import co_occurrence, load_tag_scores, save_tag_scores, scored, tag_mistakes

    truth = indicator([[0, 1], [1], [2], []], 3)
    scores = np.array([[0.9, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.9], [0.1, 0.1, 0.2]])
    evaluation = scored(["bug", "payments", "ux"], ["a", "b", "c", "d"], truth, scores, (0.5, 0.5, 0.5), False, 10.0)
    save_tag_scores(tmp_path, evaluation)
    again = load_tag_scores(tmp_path)
    assert again.metrics == evaluation.metrics and (again.given == evaluation.given).all()
    mistakes = tag_mistakes(again)
    assert mistakes.to_dict("records") == [
        {"text": "a", "right tags": "bug; payments", "tags given": "bug", "missing": "payments", "extra": "",
         "wrong": 1},
        {"text": "c", "right tags": "ux", "tags given": "payments; ux", "missing": "", "extra": "payments",
         "wrong": 1}]
    pairs = co_occurrence(again)
    assert pairs.loc["bug", "payments"] == 1 and pairs.loc["payments", "payments"] == 2 and pairs.loc["ux", "bug"] == 0


def test_a_tagger_with_hundreds_of_tags_keeps_each_tags_column_and_figures_in_place(config):
    """scikit-learn reads the tags of a 0/1 matrix in the matrix's number type: in 8 bits, tag 128 onwards
    wrapped round and every tag's classifier and figures landed in another tag's column (CLINC150's requests
    joined into messages, 150 tags: micro-F1 0.002 on the very texts it trained on)."""
    import threading

    from core.models.classifiers import ModelSpec, TrainingData
    from core.models.model_kinds import model_kinds

    count = 300
    names = [f"tag{i:03d}" for i in range(count)]
    texts = [f"word{i} word{(i * 7 + 3) % count}" for i in range(count) for _ in range(2)]
    tags = [sorted({i, (i * 7 + 3) % count}) for i in range(count) for _ in range(2)]
    data = TrainingData(names, texts, tags, texts[:count], tags[:count], multi_label=True)
    model = model_kinds()["tfidf_logreg"](names, None, ModelSpec.of(config))
    model.fit(data, lambda progress: None, threading.Event())
    scores = model.predict_proba(texts)
    top_two = np.sort(np.argsort(-scores, axis=1)[:, :2], axis=1)
    assert np.mean([set(top_two[i]) == set(tags[i]) for i in range(len(texts))]) > 0.95

    truth = indicator(tags, count)
    given = truth.copy()
    given[:, 200] = 0  # one late tag never given: only its own figures say so
    rows = per_tag_metrics(truth, given, names, [0.5] * count)
    assert rows[200]["label"] == "tag200" and rows[200]["recall"] == 0.0 and rows[200]["support"] == truth[:, 200].sum()
    assert all(row["recall"] == 1.0 for i, row in enumerate(rows) if i != 200)


def test_per_tag_thresholds_are_kept_only_when_they_beat_one_half_on_texts_they_were_not_tuned_on():
    from core.models.multilabel import held_out_macro_f1

    rng = np.random.default_rng(1)
    truth = (rng.uniform(size=(400, 6)) < 0.2).astype(int)
    # the model scores each tag's positives about 0.3, its negatives about 0.1: any tuned cut beats 0.5
    shifted = np.where(truth == 1, 0.3, 0.1) + rng.normal(0, 0.05, truth.shape)
    held_out = held_out_macro_f1(shifted, truth, False, seed=0)
    assert held_out["per_tag"] > held_out["one_half"] + 0.3
    # rare tags, few validation texts: thresholds scored on the texts they were tuned on look far better than on
    # texts they were not (which is what the choice between them and 0.5 must be made on)
    truth = (rng.uniform(size=(160, 12)) < 0.08).astype(int)
    scores = np.clip(np.where(truth == 1, rng.normal(0.68, 0.15, truth.shape), rng.normal(0.32, 0.15, truth.shape)),
                     0, 1)
    on_themselves = multilabel_metrics(truth, decide(scores, tune_thresholds(scores, truth), False))["macro_f1"]
    assert on_themselves > held_out_macro_f1(scores, truth, False, seed=0)["per_tag"] + 0.05
