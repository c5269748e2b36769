"""Topic discovery on texts without labels: the demo feedback's hidden labels found again as topics named by
their keywords, texts that fit nowhere left unassigned, and texts too few to group refused in words."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sklearn.metrics import adjusted_mutual_info_score

from core.accounts.auth import Actor, PermissionDenied, Role
from core.data.ingest import DEMO_DATASET, read_feedback_file
from core.models.topics import smallest_topic
from core.services import Caller, Studio
from core.services.topics import TopicError, find_topics
from tests.test_cli import run_cli


@pytest.fixture(scope="module")
def demo_rows() -> list[dict]:
    return read_feedback_file(DEMO_DATASET, 10_000_000).records


@pytest.fixture
def studio(config):
    studio = Studio(config)
    yield studio
    studio.close()


def test_the_demo_feedback_falls_into_its_hidden_topics_named_by_their_keywords(studio, demo_rows):
    texts, hidden = [r["text"] for r in demo_rows], [r["label"] for r in demo_rows]
    found = find_topics(studio, Caller.command_line(), texts, "feedback.jsonl")
    assert 4 <= len(found.topics) <= 12, [t.name for t in found.topics]
    given = [-1 if topic is None else topic for topic in found.assignment]
    assert adjusted_mutual_info_score(hidden, given) > 0.5  # k-means told the 5 labels: 0.66 (bench.topics)
    assert 0 < found.unassigned < 0.25 * len(texts)  # left out, not forced into a topic
    assert [t.size for t in found.topics] == sorted((t.size for t in found.topics), reverse=True)
    for topic in found.topics:
        members = [text for text, t in zip(texts, found.assignment) if t == topic.id]
        assert topic.size == len(members) >= found.smallest_topic
        assert set(topic.typical) <= set(members) and set(topic.borderline) <= set(members)
        assert topic.keywords and topic.typical
    delivery = max(found.topics, key=lambda t: sum(h == "delivery" for h, g in zip(hidden, found.assignment)
                                                   if g == t.id))
    assert {"delivery", "parcel", "courier", "arrived"} & set(delivery.keywords[:4]), delivery.keywords
    assert all(m == 0.0 for m, t in zip(found.membership, found.assignment) if t is None)


def test_fewer_broader_topics_or_more_narrower_ones_are_a_control_away(config):
    assert smallest_topic(398, config.topics, 2.0) > smallest_topic(398, config.topics) > \
        smallest_topic(398, config.topics, 0.5)
    assert smallest_topic(10_525, config.topics) == 26 and smallest_topic(200_000, config.topics) == 112


@pytest.mark.parametrize("texts, words", [
    (["the app crashed", "refund missing", "parcel late", "great service", "login fails"], "5 text(s), 5 different"),
    (["Same text"] * 40 + ["same  TEXT"], "41 text(s), 1 different (they are all the same text)"),
])
def test_texts_too_few_to_group_are_refused_in_words(studio, texts, words):
    with pytest.raises(TopicError, match="too few to group") as refused:
        find_topics(studio, Caller.command_line(), texts, "few.csv")
    assert words in str(refused.value) and "at least 20 different texts" in str(refused.value)


def test_only_those_who_prepare_data_discover_topics(studio, demo_rows):
    with pytest.raises(PermissionDenied):
        find_topics(studio, Caller(Actor("uma", Role.USER), "s-1"), [r["text"] for r in demo_rows], "x.csv")


def test_the_command_line_prints_each_rows_topic_by_its_id_then_the_topics(capsys, write_file, demo_rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["ticket", "comment"])
    writer.writerows([[f"T-{i}", row["text"]] for i, row in enumerate(demo_rows)] + [["T-empty", ""]])
    path = write_file("comments.csv", buffer.getvalue())
    code, lines, err = run_cli(capsys, "topics", "--data", path, "--id-field", "ticket")
    assert code == 0, err
    *rows, summary = lines
    assert [r["id"] for r in rows] == [f"T-{i}" for i in range(len(demo_rows))] + ["T-empty"]
    assert rows[-1] == {"id": "T-empty", "line": len(demo_rows) + 2, "topic": None, "membership": None,
                        "status": "no text"}
    topics = {t["topic"]: t for t in summary["topics"]}
    assert {r["topic"] for r in rows[:-1]} == set(topics) | {None}
    assert all(sum(r["topic"] == t for r in rows) == topics[t]["size"] for t in topics)
    assert summary["unassigned"] == sum(r["topic"] is None for r in rows[:-1]) and summary["grouped"] == len(demo_rows)
    assert "embedded" in err
    code, _, err = run_cli(capsys, "topics", "--data", path, "--id-field", "nope")
    assert code == 2 and "no id field 'nope'" in err


def test_texts_left_out_can_be_placed_in_their_nearest_topic_and_say_so(capsys, write_file, demo_rows, config):
    import numpy as np

    from core.models.embeddings import shared_encoder
    from core.models.topics import discover_topics, place_unassigned

    texts = [r["text"] for r in demo_rows]
    vectors = shared_encoder(config.model.name, config.model.max_length).encode(texts)
    found = discover_topics(texts, vectors, config.topics, config.training.seed)
    placed = place_unassigned(found, vectors)
    left = [i for i, t in enumerate(found.assignment) if t is None]
    assert left and placed.unassigned == 0 and placed.placed == frozenset(left)
    assert [placed.assignment[i] for i in range(len(texts)) if i not in left] == \
        [found.assignment[i] for i in range(len(texts)) if i not in left]  # the others stay where they were
    assert sum(t.size for t in placed.topics) == len(texts)
    centres = np.stack([vectors[[a == t.id for a in found.assignment]].mean(axis=0) for t in found.topics])
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    for i in left:  # each in the topic whose centre is most like it
        assert placed.assignment[i] == found.topics[int(np.argmax(centres @ vectors[i]))].id

    path = write_file("comments.jsonl", "".join(f'{{"text": {json.dumps(t)}}}\n' for t in texts))
    code, lines, err = run_cli(capsys, "topics", "--data", path, "--place-unassigned")
    assert code == 0, err
    *rows, summary = lines
    assert summary["unassigned"] == 0 and summary["placed"] == len(left)
    assert sum(bool(r.get("placed")) for r in rows) == len(left) and all(r["topic"] is not None for r in rows)
