"""Users' corrections back into training: review, export, merge into a new version, train on it."""

from __future__ import annotations

import json

import pytest

from core.accounts.auth import PermissionDenied
from core.services import Caller, Studio
from core.services.feedback import review
from core.data.cleaning import CleaningOptions
from core.serving.feedback import accepted_examples, accepted_jsonl, list_feedback, merged_table, record_feedback, review_feedback
from core.data.preparation import prepare, save_preparation
from core.training.runs import RunState
from core.data.split import SplitPlan
from tests.conftest import ADMIN, ANALYST, USER, save_demo_version, train_runs, workspace_store

CORRECTIONS = [  # text, predicted, what the user says it should be
    ("The courier left my parcel at the wrong house again", "customer_service", "delivery"),
    ("Refund for the broken kettle never arrived on my card", "product_quality", "billing"),
    ("Login page keeps rejecting my new password", "customer_service", "app_website"),
]


def test_accepted_corrections_become_a_new_version_that_trains(isolated_workspace, config):
    store = workspace_store(isolated_workspace)
    version = save_demo_version(isolated_workspace, config)
    (run,) = train_runs(isolated_workspace, config, version, kinds=("tfidf_nb",))
    items = [record_feedback(store, USER, run.run_id, version.labels, text, predicted, 0.4, label)
             for text, predicted, label in CORRECTIONS]
    record_feedback(store, USER, run.run_id, version.labels, "Great fast delivery", "delivery", 0.9, "delivery")

    with pytest.raises(PermissionDenied, match="may not review feedback"):
        review(Studio(config, store=store), Caller(ANALYST), [items[0].id], True)
    assert review_feedback(store, ADMIN, [i.id for i in items[:2]], accept=True) == 2
    assert review_feedback(store, ADMIN, [items[2].id], accept=False) == 1
    assert [f.status for f in list_feedback(store)] == ["pending", "rejected", "accepted", "accepted"]
    assert sorted(e["label"] for e in accepted_examples(store)) == ["billing", "delivery"]
    lines = [json.loads(line) for line in accepted_jsonl(store).splitlines()]
    assert {tuple(sorted(line)) for line in lines} == {("label", "text")}

    table = merged_table(version, accepted_examples(store))
    assert len(table.records) == version.meta["rows"] + 2
    prepared = prepare(table, "text", "label", CleaningOptions(drop_duplicates=True), config)
    assert prepared.ready, prepared.report.errors
    merged = save_preparation(isolated_workspace, "demo", prepared, SplitPlan(**version.meta["split_plan"]), ADMIN)
    assert merged.ref == "demo/v2" and merged.meta["rows"] == version.meta["rows"] + 2
    assert "The courier left my parcel at the wrong house again" in merged.frame()["text"].tolist()
    (retrained,) = train_runs(isolated_workspace, config, merged, kinds=("tfidf_nb",))
    assert retrained.state is RunState.SUCCEEDED and retrained.dataset_ref == "demo/v2"


def test_merging_reports_conflicts_with_the_existing_data(isolated_workspace, config):
    store = workspace_store(isolated_workspace)
    version = save_demo_version(isolated_workspace, config)
    existing = version.frame().iloc[0]
    wrong_label = next(label for label in version.labels if label != existing["label"])
    item = record_feedback(store, USER, "run", version.labels, existing["text"], existing["label"], 0.5, wrong_label)
    review_feedback(store, ADMIN, [item.id], True)
    prepared = prepare(merged_table(version, accepted_examples(store)), "text", "label", CleaningOptions(), config)
    conflict = prepared.report.get("conflicting_labels")
    assert conflict is not None and conflict.count >= 1


def test_corrected_tag_sets_merge_into_a_tagged_version_as_tags(isolated_workspace, config):
    from core.accounts.auth import command_line_actor
    from core.data.ingest import records_from_list
    from core.data.tag_preparation import prepare_tags, save_tag_preparation
    from core.data.tags import detect_task
    from core.serving.feedback import examples_new_to
    from core.services.feedback import merge_preview, save_merged
    from tests.test_tags import ticket_rows

    store = workspace_store(isolated_workspace)
    table = records_from_list(ticket_rows(120), source="tickets.csv")
    version = save_tag_preparation(isolated_workspace, "tickets", prepare_tags(
        table, "ticket", detect_task(table, "tags").format, config), SplitPlan(0.8, 0.1, 0.1, 3), command_line_actor())
    (run,) = train_runs(isolated_workspace, config, version, kinds=("tfidf_logreg",))
    text = "the app froze while paying and support never answered"
    item = record_feedback(store, USER, run.run_id, version.labels, text, "bug; payments", 0.7,
                           "bug; payments; support", tags=True)
    known = version.frame()["text"][0]
    repeat = record_feedback(store, USER, run.run_id, version.labels, known, "bug", 0.9,
                             "; ".join(reversed(version.frame()["tags"][0])), tags=True)  # its own tags, reordered
    review_feedback(store, ADMIN, [item.id, repeat.id], accept=True)
    assert examples_new_to(version, accepted_examples(store)) == [{"text": text, "label": "bug; payments; support"}]
    studio = Studio(config, store=store)
    preview = merge_preview(studio, Caller(ADMIN), version.ref, CleaningOptions())
    assert preview.prepared.ready and preview.labels == version.labels
    merged = save_merged(studio, Caller(ADMIN), "tickets", preview)
    assert merged.multi_label and merged.ref == "tickets/v2"
    frame = merged.frame()
    assert frame[frame["text"] == text]["tags"].tolist() == [["bug", "payments", "support"]]
