"""The review queue: what gets queued (and whose text is kept), the ranking, labelling into the feedback loop."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.accounts.auth import PermissionDenied
from core.platform.config import ModelConfig, ReviewConfig
from core.serving.feedback import list_feedback
from core.models.predict import Prediction
from core.serving.review_queue import BELOW_THRESHOLD, CONFIDENT_SAMPLE, enqueue, expire_old, ranked, to_queue
from core.services import Caller, Studio
from core.services.classification import classify
from core.services.publishing import publish_run
from core.services.review import figures, label_item, queue
from core.platform.store import predictions, review_queue, utc_now
from tests.conftest import ADMIN, ANALYST, USER, save_demo_version, train_runs


def scored(label: str, top: float, second: float, threshold: float = 0.6) -> Prediction:
    """A prediction over three labels with the given top two scores."""
    rest = max(0.0, 1.0 - top - second)
    scores = {label: top, "other": second, "third": rest}
    return Prediction("ok", label, top, scores).at_threshold(threshold)


def test_uncertain_predictions_are_queued_and_a_sample_of_confident_ones():
    results = [("torn", scored("billing", 0.45, 0.40)), ("sure", scored("billing", 0.97, 0.02)),
               ("", Prediction("empty"))]
    never = to_queue(results, ReviewConfig(confident_sample_rate=0.0))
    assert [(text, reason) for text, _, reason in never] == [("torn", BELOW_THRESHOLD)]
    always = to_queue(results, ReviewConfig(confident_sample_rate=1.0))
    assert [(text, reason) for text, _, reason in always] == [("torn", BELOW_THRESHOLD), ("sure", CONFIDENT_SAMPLE)]
    sampled = to_queue([("sure", scored("billing", 0.97, 0.02))] * 1000, ReviewConfig(confident_sample_rate=0.02),
                       random.Random(3))
    assert 5 <= len(sampled) <= 40  # about 2 %


def test_the_queue_shows_the_most_uncertain_first_and_spreads_near_copies(store):
    settings = ReviewConfig(spread_by="words")
    enqueue(store, "run-a", "uma", [
        ("the parcel is late again", scored("delivery", 0.90, 0.05), CONFIDENT_SAMPLE),
        ("refund or parcel, which is it", scored("billing", 0.41, 0.40), BELOW_THRESHOLD),
        ("refund or parcel, which is it?", scored("billing", 0.42, 0.40), BELOW_THRESHOLD),
        ("the app logs me out at checkout", scored("app", 0.50, 0.35), BELOW_THRESHOLD),
    ], settings)
    order = [item.text for item in ranked(store, settings, ModelConfig())]
    # smallest margin first; its near-copy waits behind a different text
    assert order == ["refund or parcel, which is it", "the app logs me out at checkout",
                     "refund or parcel, which is it?", "the parcel is late again"]


def test_near_copies_are_told_apart_by_meaning_in_the_embedding_space(store, tmp_path):
    """Two wordings of one complaint share almost no words: only the sentence embeddings (the packaged MiniLM)
    see them as near-copies and put another text between them."""
    enqueue(store, "run-a", "uma", [
        ("the app crashes when I open it", scored("app", 0.41, 0.40), BELOW_THRESHOLD),
        ("app keeps crashing on start", scored("app", 0.42, 0.40), BELOW_THRESHOLD),
        ("where is my refund", scored("billing", 0.45, 0.40), BELOW_THRESHOLD),
    ], ReviewConfig())
    by_words = [item.text for item in ranked(store, ReviewConfig(spread_by="words"), ModelConfig())]
    by_meaning = [item.text for item in ranked(store, ReviewConfig(), ModelConfig())]
    assert by_words == ["the app crashes when I open it", "app keeps crashing on start", "where is my refund"]
    assert by_meaning == ["the app crashes when I open it", "where is my refund", "app keeps crashing on start"]
    missing = ModelConfig(name=str(tmp_path / "no-such-model"))
    assert [item.text for item in ranked(store, ReviewConfig(), missing)] == by_words  # still shown, by words


def test_queued_texts_expire_and_are_deleted_but_labels_stay_counted(store):
    settings = ReviewConfig(keep_text_days=30)
    enqueue(store, "run-a", "uma", [("old text", scored("billing", 0.4, 0.3), BELOW_THRESHOLD),
                                    ("labelled text", scored("billing", 0.4, 0.3), BELOW_THRESHOLD)], settings)
    with store.writing() as connection:
        connection.execute(review_queue.update().where(review_queue.c.text == "labelled text")
                           .values(status="labelled", label="delivery"))
    assert expire_old(store, settings) == 0
    assert expire_old(store, settings, now=utc_now() + timedelta(days=31)) == 2
    rows = {row["id"]: row for row in store.rows(select(review_queue))}
    assert {row["text"] for row in rows.values()} == {None} and ranked(store, ReviewConfig(), ModelConfig()) == []
    assert sorted(row["status"] for row in rows.values()) == ["expired", "labelled"]
    from core.serving.review_queue import queue_figures

    assert queue_figures(store)["labelled"] == 1  # expiry deleted the text, not the label


def test_queueing_lets_old_texts_expire_now_and_then_not_on_every_call(store, monkeypatch):
    from core.serving import review_queue as queue_module

    monkeypatch.setattr(queue_module, "_last_expiry", {})
    settings = ReviewConfig(keep_text_days=30)
    item = [("old text", scored("billing", 0.4, 0.3), BELOW_THRESHOLD)]

    def age_everything() -> None:
        with store.writing() as connection:
            connection.execute(review_queue.update().values(time=utc_now() - timedelta(days=31)))

    enqueue(store, "run-a", "uma", item, settings)
    age_everything()
    enqueue(store, "run-a", "uma", item, settings)  # within EXPIRE_EVERY_S of the first call: nothing expires
    assert [row["status"] for row in store.rows(select(review_queue).order_by(review_queue.c.id))] == ["open", "open"]
    monkeypatch.setattr(queue_module, "EXPIRE_EVERY_S", 0.0)
    age_everything()
    enqueue(store, "run-a", "uma", item, settings)  # due: the old texts go, the new one stays
    assert [row["status"] for row in store.rows(select(review_queue).order_by(review_queue.c.id))] == ["expired", "expired",
                                                                                                 "open"]


def test_texts_without_words_are_queued_and_ranked_without_a_crash(store):
    settings = ReviewConfig()
    enqueue(store, "run-a", "uma", [(text, scored("billing", 0.4, 0.3), BELOW_THRESHOLD)
                                    for text in ("??", "😡", "a")], settings)
    assert [item.text for item in ranked(store, settings, ModelConfig())] == ["??", "😡", "a"]


@pytest.fixture
def published_studio(config_file, isolated_workspace):
    config = config_file("[review]\nconfident_sample_rate = 0.0\n[classify]\nreview_threshold = 0.9\n")
    studio = Studio(config)
    version = save_demo_version(isolated_workspace, config)
    (run,) = train_runs(isolated_workspace, config, version, kinds=("tfidf_nb",))
    publish_run(studio, Caller(ANALYST), run.run_id)
    yield studio, run
    studio.close()


def test_only_queued_texts_are_kept_and_a_label_becomes_a_correction(published_studio):
    studio, run = published_studio
    done = classify(studio, Caller(USER, "s1"), ["my parcel never came and the courier was rude",
                                                 "refund", "hello there"], threshold=0.9)
    flagged = [p.needs_review for p in done.predictions]
    assert any(flagged)
    assert {row["text"] for row in studio.store.rows(select(predictions))} == {None}  # the log keeps no text
    queued = queue(studio, Caller(ANALYST, "s2"))
    assert len(queued) == sum(flagged)  # sample rate 0: only the uncertain ones, with their text
    first = queued[0]
    label = next(lab for lab in run.labels if lab != first.predicted)
    with pytest.raises(PermissionDenied, match="may not label the review queue"):
        label_item(studio, Caller(USER, "s1"), first.id, label)
    assert label_item(studio, Caller(ANALYST, "s2"), first.id, label)
    assert not label_item(studio, Caller(ADMIN, "s3"), first.id, run.labels[0])  # labelled already
    (correction,) = list_feedback(studio.store, "pending")
    assert (correction.text, correction.correct_label, correction.username) == (first.text, label, "ana")
    assert first.id not in {item.id for item in queue(studio, Caller(ANALYST, "s2"))}
    shown = figures(studio, Caller(ADMIN))
    assert (shown["labelled"], shown["agreement"], shown["open"]) == (1, 0.0, len(queued) - 1)


def test_monitoring_says_how_the_next_model_does_on_the_labelled_texts(published_studio, isolated_workspace):
    studio, run = published_studio
    classify(studio, Caller(USER, "s1"), ["my parcel never came", "refund my card", "app crashes"], threshold=1.0)
    for item in queue(studio, Caller(ANALYST, "s2")):
        assert label_item(studio, Caller(ANALYST, "s2"), item.id, item.predicted)  # the model was right
    assert figures(studio, Caller(ADMIN))["next_model_texts"] == 0  # labelled under the model still serving
    (newer,) = train_runs(studio.workspace, studio.config, save_demo_version(isolated_workspace, studio.config),
                          kinds=("tfidf_logreg",))
    publish_run(studio, Caller(ANALYST), newer.run_id)
    shown = figures(studio, Caller(ADMIN))
    assert shown["next_model_texts"] == 3 and 0.0 <= shown["next_model_accuracy"] <= 1.0
    assert shown["agreement"] == 1.0


def test_the_embedding_cache_returns_each_texts_own_vector_in_order_and_forgets_the_oldest():
    import numpy as np

    from core.models.embeddings import EmbeddingCache, shared_encoder

    model = ModelConfig()
    cache = EmbeddingCache(capacity=2)
    texts = ["where is my refund", "the app crashes", "where is my refund"]
    direct = shared_encoder(model.name, model.max_length).encode(texts)
    assert np.allclose(cache.embed(texts, model.name, model.max_length), direct, atol=1e-5)
    cache.embed(["a third text"], model.name, model.max_length)
    assert [key[2] for key in cache._vectors] == ["where is my refund", "a third text"]
