"""Texts without labels: validated without label checks, saved as an unlabelled version whose rows sit in no
split, and refused for training in words until they carry labels."""

from __future__ import annotations

import pytest

from core.data.cleaning import CleaningOptions
from core.data.dataset_versions import UNLABELLED_SPLIT, DatasetError, load_dataset_version
from core.data.ingest import read_feedback_bytes
from core.data.preparation import prepare_texts, save_unlabelled
from core.platform.config import load_config
from core.training.execution import training_data
from tests.conftest import ANALYST

COMMENTS = (b"id,comment\n"
            b"a1,The app crashes when I pay\n"
            b"a2,   \n"
            b"a3,Refund still not here after two weeks\n"
            b"a4,the app crashes when I pay\n"
            + b"".join(f"b{i},Delivery number {i} came late\n".encode() for i in range(30)))


def comments(options: CleaningOptions = CleaningOptions()):
    table = read_feedback_bytes(COMMENTS, "comments.csv", 10_000_000)
    return prepare_texts(table, "comment", options, load_config())


def test_a_file_of_texts_alone_is_checked_for_text_problems_only_with_their_lines():
    prepared = comments()
    report = prepared.raw_report
    assert report.label_field == "" and report.label_counts == {}
    codes = {finding.code for finding in report.findings}
    assert "empty_text" in codes and "near_duplicates" in codes, codes
    assert not codes & {"missing_label", "too_few_classes", "same_field", "single_class"}, codes
    assert report.get("empty_text").lines == [3]
    assert report.get("near_duplicates").lines == [5]
    assert not prepared.ready  # an empty text blocks saving until it is dropped


def test_dropping_empties_and_copies_makes_texts_ready_to_save_as_an_unlabelled_version(isolated_workspace):
    prepared = comments(CleaningOptions(drop_invalid_rows=True, drop_duplicates=True))
    assert prepared.ready and prepared.report.usable_rows == 32
    saved = save_unlabelled(isolated_workspace, "comments", prepared, ANALYST)
    version = load_dataset_version(isolated_workspace, saved.ref)
    assert version.unlabelled and version.labels == []
    frame = version.frame()
    assert len(frame) == 32 and set(frame["split"]) == {UNLABELLED_SPLIT}
    assert frame["label"].isna().all()
    assert version.meta["labelled_rows"] == 0 and version.meta["unlabelled_rows"] == 32
    assert version.meta["text_field"] == "comment" and len(version.meta["fingerprint"]) == 64


def test_texts_with_problems_left_in_are_not_saved(isolated_workspace):
    with pytest.raises(DatasetError, match="Rows with empty text"):
        save_unlabelled(isolated_workspace, "comments", comments(), ANALYST)


def test_training_on_texts_without_labels_is_refused_in_words(isolated_workspace):
    prepared = comments(CleaningOptions(drop_invalid_rows=True, drop_duplicates=True))
    version = save_unlabelled(isolated_workspace, "comments", prepared, ANALYST)
    with pytest.raises(DatasetError, match="comments/v1 has no labelled texts yet"):
        training_data(version)


def test_a_run_on_texts_without_labels_is_refused_before_it_is_queued(isolated_workspace):
    from core.platform.config import load_config as config_of
    from core.training.runs import RunError, RunRequest, create_run

    prepared = comments(CleaningOptions(drop_invalid_rows=True, drop_duplicates=True))
    version = save_unlabelled(isolated_workspace, "comments", prepared, ANALYST)
    with pytest.raises(RunError, match="has no labelled texts yet"):
        create_run(isolated_workspace, RunRequest(dataset_ref=version.ref, kind="tfidf_logreg", preset="balanced",
                                                       hyperparameters={}), config_of(), ANALYST)
