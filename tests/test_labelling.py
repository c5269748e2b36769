"""Label a few, well: on a version labelled in part from topics, the queue asks about uncertain texts spread over
their meaning, with the current model's guess (zero-shot by the label names before any training, then the newest
run); the answers are kept at once and, every ``retrain_every`` labels, saved as the next version with a model
trained on it by the worker; the learning curve has a point per trained run."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

from core.accounts.audit import query_events
from core.data.dataset_versions import DatasetError
from core.data.ingest import DEMO_DATASET, read_feedback_file
from core.data.split import SplitPlan
from core.data.topic_labels import TopicLabels, save_topic_labels
from core.services import Caller, Studio
from core.services.labelling import (
    ZERO_SHOT_DESCRIBED, ZERO_SHOT_NAME, describe_labels, descriptions, label_texts, labelling_versions,
    learning_curve, next_batch, save_and_retrain, waiting,
)
from core.training.runs import RunState
from tests.conftest import ANALYST, QueueWithWorker
from tests.test_topic_jobs import save_texts

ME = Caller(ANALYST)


def save_draft(workspace, config, rename: dict[str, str] | None = None):
    """The demo feedback without labels, then a draft labelled 'from topics' for 60 % of its texts (each text's
    topic standing for its true label, named as ``rename`` says), the rest left without one; the draft and the
    true labels (as named) by line."""
    rows = read_feedback_file(DEMO_DATASET, 10_000_000).records
    texts = save_texts(workspace, config, [{"text": r["text"]} for r in rows])
    truth = {r["text"]: (rename or {}).get(r["label"], r["label"]) for r in rows}
    names = sorted(set(truth.values()))
    frame = texts.frame()
    assignment = [names.index(truth[t]) if i % 5 < 3 else None for i, t in enumerate(frame["text"])]
    version = save_topic_labels(workspace, "comments", texts, assignment, [0.9] * len(frame),
                                TopicLabels(dict(enumerate(names))), SplitPlan.from_config(config.split),
                                created_by="ana", topics_job="made-up")
    return version, {int(line): truth[t] for line, t in zip(frame["line"], frame["text"])}


@pytest.fixture
def draft(isolated_workspace, config, tiny_bert):
    """A draft labelled in part (:func:`save_draft`), under a configuration reading with the tiny BERT."""
    config = dataclasses.replace(
        config, model=dataclasses.replace(config.model, name=str(tiny_bert)),
        labelling=dataclasses.replace(config.labelling, batch=6, retrain_every=10, retrain_kind="tfidf_logreg"))
    return (config, *save_draft(isolated_workspace, config))


def test_the_queue_asks_about_texts_no_person_labelled_with_zero_shot_guesses_before_any_training(draft):
    config, version, truth = draft
    studio = Studio(config)
    assert [v.ref for v in labelling_versions(studio, ME)] == [version.ref]  # not the texts-only comments/v1
    guesser, batch = next_batch(studio, ME, version.ref)
    assert guesser.name == ZERO_SHOT_NAME and guesser.run_id is None
    assert len(batch) == 6 and len({p.line for p in batch}) == 6
    frame = version.frame().set_index("line")
    for proposal in batch:
        assert proposal.guess in version.labels and 0 < proposal.score <= 1
        assert proposal.text == frame.loc[proposal.line, "text"]
        assert proposal.current == (frame.loc[proposal.line, "label"] if frame.loc[proposal.line, "label_source"]
                                    else None)
    assert waiting(studio, ME, version.ref) == (0, len(frame))  # every text is open: none labelled by a person

    answers = {p.line: truth[p.line] for p in batch[:5]} | {batch[5].line: None}  # one skipped
    kept = label_texts(studio, ME, version.ref, answers)
    assert (kept.given, kept.waiting, kept.saved, kept.run) == (5, 5, None, None)
    assert waiting(studio, ME, version.ref) == (5, len(frame) - 6)
    _, again = next_batch(studio, ME, version.ref)
    assert not {p.line for p in again} & set(answers)  # answered or skipped: not asked again

    with pytest.raises(DatasetError, match="'no such label' is not one of comments/v2's labels"):
        label_texts(studio, ME, version.ref, {again[0].line: "no such label"})
    with pytest.raises(DatasetError, match="line.* 999999 of comments/v2 are not waiting"):
        label_texts(studio, ME, version.ref, {999999: version.labels[0]})
    assert waiting(studio, ME, version.ref)[0] == 5  # nothing of the refused answers kept
    studio.close()


def test_every_retrain_every_labels_become_the_next_version_and_a_model_trained_on_it(draft, isolated_workspace):
    config, version, truth = draft
    studio = Studio(config)
    runner = QueueWithWorker(isolated_workspace, config)
    try:
        _, first = next_batch(studio, ME, version.ref)
        assert label_texts(studio, ME, version.ref, {p.line: truth[p.line] for p in first}).saved is None
        _, second = next_batch(studio, ME, version.ref)
        kept = label_texts(studio, ME, version.ref, {p.line: truth[p.line] for p in second})
        assert kept.saved is not None and kept.saved.ref == "comments/v3" and kept.waiting == 0
        assert kept.run.kind == "tfidf_logreg" and kept.run.dataset_ref == "comments/v3"
        assert runner.wait(kept.run.run_id, timeout=120).state is RunState.SUCCEEDED
    finally:
        runner.close()

    saved, before = kept.saved, version.frame().set_index("line")
    after = saved.frame().set_index("line")
    answered = {p.line: truth[p.line] for p in first + second}
    assert (after.loc[list(answered), "label"] == list(answered.values())).all()
    assert set(after.loc[list(answered), "label_source"]) == {"person"}
    was_open = [line for line in answered if pd.isna(before.loc[line, "label"])]
    assert was_open  # the queue asked about texts without a label too
    assert set(after.loc[was_open, "split"]) <= {"train"}
    for split in ("validation", "test"):  # the same texts: scores on the versions stay comparable
        assert set(after.index[after["split"] == split]) == set(before.index[before["split"] == split])
    assert saved.meta["people_labels"] == 12 and saved.meta["from_queue"]["labelled"] == 12
    assert saved.meta["labelled_rows"] == version.meta["labelled_rows"] + len(was_open)
    assert saved.meta["label_sources"]["person"] == 12 and saved.meta["from_queue"]["new"] == len(was_open)

    guesser, batch = next_batch(studio, ME, saved.ref)  # the trained run guesses now
    assert guesser.run_id == kept.run.run_id and "comments/v3" in guesser.name
    assert not {p.line for p in batch} & set(answered)
    curve = learning_curve(studio, ME, saved.ref)
    assert [(p.kind, p.people_labels) for p in curve] == [("tfidf_logreg", 12)] and 0 <= curve[0].macro_f1 <= 1

    with pytest.raises(DatasetError, match="no labels given on comments/v3 yet"):
        save_and_retrain(studio, ME, saved.ref)
    events = query_events(studio.store, event_types=["labels_given", "dataset_saved", "training_started"])
    assert events["event_type"].tolist().count("labels_given") == 2
    assert set(events["event_type"]) == {"labels_given", "dataset_saved", "training_started"}
    studio.close()


def test_the_verdict_says_when_more_labels_stopped_helping():
    from core.services.labelling import CurvePoint, more_labels_verdict

    def point(labels: int, f1: float) -> CurvePoint:
        return CurvePoint("few_shot", "Few-shot", labels, f1, f"run at {labels}")

    assert more_labels_verdict([point(0, 0.5)], "few_shot", 0.01) is None
    helping = more_labels_verdict([point(0, 0.5), point(20, 0.6), CurvePoint("x", "X", 40, 0.1, "x")], "few_shot", 0.01)
    assert helping.startswith("The last 20 labels moved Few-shot's validation macro-F1 by +0.100 (0.500 → 0.600)")
    assert helping.endswith("more labels still help.")
    assert "stopped helping much" in more_labels_verdict([point(20, 0.6), point(40, 0.605)], "few_shot", 0.01)


def test_a_large_version_is_asked_about_from_a_sample_drawn_again_when_it_is_used_up(draft):
    config, version, truth = draft
    config = dataclasses.replace(config, labelling=dataclasses.replace(config.labelling, candidates=8, batch=6))
    studio = Studio(config)
    asked = []
    for _ in range(3):
        _, batch = next_batch(studio, ME, version.ref)
        assert batch, "texts are still open: the queue goes on"
        asked.append({p.line for p in batch})
        label_texts(studio, ME, version.ref, {p.line: None for p in batch})  # skipped
    assert [len(lines) for lines in asked] == [6, 2, 6]  # 8 candidates: 6, the 2 left, then 8 drawn anew
    assert not asked[0] & asked[1] and not (asked[0] | asked[1]) & asked[2]
    studio.close()


#: What each demo label covers, in a sentence (the names the test hides behind "topic 1" … "topic 5").
DEMO_MEANINGS = {
    "app_website": "the app or the website: pages, links, log-in, notifications",
    "billing": "payments, charges, refunds, invoices and discounts",
    "customer_service": "the support staff and how they answered",
    "delivery": "parcels, couriers, late or missing deliveries",
    "product_quality": "how well the product is made: fabric, fit, breaking, shrinking",
}


def test_a_sentence_per_label_makes_the_first_guesses_better_when_the_names_say_nothing(isolated_workspace,
                                                                                        config):
    """Topics named "topic 1" … "topic 5": zero-shot by the names alone guesses near chance; with a sentence
    saying what each covers, far better (the packaged MiniLM reads them)."""
    hidden = {label: f"topic {i}" for i, label in enumerate(sorted(DEMO_MEANINGS), 1)}
    config = dataclasses.replace(config, labelling=dataclasses.replace(config.labelling, batch=60, candidates=60))
    version, truth = save_draft(isolated_workspace, config, hidden)
    studio = Studio(config)

    def guessed_right() -> float:
        _, batch = next_batch(studio, ME, version.ref)
        assert len(batch) == 60
        return sum(p.guess == truth[p.line] for p in batch) / len(batch)

    by_names = guessed_right()
    kept = describe_labels(studio, ME, version.ref, {hidden[label]: text for label, text in DEMO_MEANINGS.items()})
    assert descriptions(studio, ME, version.ref) == kept and len(kept) == 5
    guesser, _ = next_batch(studio, ME, version.ref)
    assert guesser.name == ZERO_SHOT_DESCRIBED
    described = guessed_right()
    assert described >= by_names + 0.25 and described >= 0.6, (by_names, described)

    with pytest.raises(DatasetError, match="'topic 9' is not one of comments/v2's labels"):
        describe_labels(studio, ME, version.ref, {"topic 9": "anything"})
    with pytest.raises(DatasetError, match="longer than 300 characters"):
        describe_labels(studio, ME, version.ref, {"topic 1": "word " * 100})
    assert describe_labels(studio, ME, version.ref, {"topic 1": "  "}) == {k: v for k, v in kept.items()
                                                                          if k != "topic 1"}  # emptied: removed
    events = query_events(studio.store, event_types=["labels_described"])
    assert len(events) == 2
    studio.close()


def test_a_label_added_while_labelling_is_offered_guessed_and_joins_the_next_version_once_a_text_has_it(
        draft, isolated_workspace):
    from core.services.labelling import labels_offered, new_label

    config, version, truth = draft
    studio = Studio(config)
    with pytest.raises(DatasetError, match="a new label needs a name"):
        new_label(studio, ME, version.ref, "   ")
    existing = version.labels[0]
    with pytest.raises(DatasetError, match=f"'{existing.upper()}' is already a label \\('{existing}'\\)"):
        new_label(studio, ME, version.ref, existing.upper())
    with pytest.raises(DatasetError, match="longer than 60 characters"):
        new_label(studio, ME, version.ref, "x" * 61)
    assert new_label(studio, ME, version.ref, "  gift   cards ") == [*version.labels, "gift cards"]
    new_label(studio, ME, version.ref, "never used")
    assert labels_offered(studio, ME, version.ref) == [*version.labels, "gift cards", "never used"]
    guesser, batch = next_batch(studio, ME, version.ref)
    assert guesser.labels == (*version.labels, "gift cards", "never used")  # zero-shot guesses the new names too

    answers = {p.line: truth[p.line] for p in batch}
    answers[batch[0].line] = "gift cards"  # a text that fits none of the labels
    label_texts(studio, ME, version.ref, answers)
    saved, _ = save_and_retrain(studio, ME, version.ref)
    assert saved.labels == [*version.labels, "gift cards"]  # the label no text has is left out
    after = saved.frame().set_index("line")
    assert after.loc[batch[0].line, "label"] == "gift cards"
    assert after.loc[batch[0].line, "label_id"] == len(version.labels)
    kept = after.loc[[p.line for p in batch[1:]]]
    assert (kept["label_id"] == [version.labels.index(truth[line]) for line in kept.index]).all()
    assert saved.meta["from_queue"]["labels_added"] == ["gift cards"]
    assert labels_offered(studio, ME, saved.ref) == saved.labels  # the next version starts with none added
    events = query_events(studio.store, event_types=["label_added"])
    assert [json.loads(details)["label"] for details in events["details"]] == ["never used", "gift cards"]  # newest first
    studio.close()
