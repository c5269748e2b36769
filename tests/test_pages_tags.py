"""Runs that give tags on the Evaluate page: compared by micro-F1, one run's tags with their thresholds, and
publishable; classifying with a published tagger gives the tags."""

from __future__ import annotations

import re

import pytest

from core.accounts.auth import command_line_actor
from core.data.ingest import records_from_list
from core.data.split import SplitPlan
from core.data.tag_preparation import prepare_tags, save_tag_preparation
from core.data.tags import detect_task
from core.services import Caller
from core.services.studio import Studio
from tests.conftest import ANALYST as ANALYST_ACTOR
from tests.conftest import train_runs
from tests.test_pages import explanations, open_page, texts
from tests.test_tags import ticket_rows


def tickets_csv(rows: list[dict]) -> bytes:
    return ("id,ticket,tags\n" + "".join(f'{r["id"]},"{r["ticket"]}",{r["tags"]}\n' for r in rows)).encode()


def test_the_data_page_detects_tags_reports_them_and_saves_a_tagged_version(isolated_workspace):
    from core.data.dataset_versions import list_dataset_versions

    rows = ticket_rows(120)
    rows[3] = {**rows[3], "tags": "support"}  # a crash and a login, tagged as a support matter
    app = open_page("pages/views/data.py")
    app.file_uploader[0].set_value(("tickets.csv", tickets_csv(rows), "text/csv")).run()
    assert not app.exception, app.exception
    task = next(r for r in app.radio if r.label == "Labels or tags?")
    assert task.value == "several tags per text, in the label field"
    page = texts(app)
    assert "Detected from 'tags': multi-label ('tags' holds several values separated by ';'" in page
    assert next(t for t in app.text_input if t.label == "Tags separated by").value == ";"
    assert "Texts without a tag" in page and "Tags per text" in page and "Tagged texts per split" in page
    app.button(key="check_tags").click().run()
    assert not app.exception, app.exception
    assert "carry tags the rest of the data disagrees with" in texts(app)
    suspicious = next(d.value for d in app.dataframe if "suggested" in d.value.columns)
    assert suspicious["line"].iloc[0] == 5 and suspicious["tags"].iloc[0] == "support"
    assert set(suspicious["suggested"].iloc[0].split("; ")) == {"bug", "login"}
    app.button(key="save_version").click().run()
    assert "Saved tickets/v1: 120 examples" in texts(app) and "each with its tags (4 tags)" in texts(app)
    (version,) = list_dataset_versions(isolated_workspace)
    assert version.multi_label and version.labels == ["bug", "login", "payments", "support"]

    task.set_value("one label per text").run()  # the analyst says otherwise: each tag set is one label again
    assert "120 usable, 16 labels" in texts(app)  # every tag combination counted as a label of its own
    next(r for r in app.radio if r.label == "Labels or tags?").set_value(
        "several tags per text, in the label field").run()
    next(t for t in app.text_input if t.label == "Tags separated by").set_value("|").run()
    assert "The tags cannot be read as asked" in texts(app) and "Saving is blocked" in texts(app)


def test_the_evaluate_page_compares_taggers_and_shows_one_runs_tags(isolated_workspace, config):
    table = records_from_list(ticket_rows(120), source="tickets.csv")
    prepared = prepare_tags(table, "ticket", detect_task(table, "tags").format, config)
    version = save_tag_preparation(isolated_workspace, "tickets", prepared, SplitPlan(0.8, 0.1, 0.1, 3),
                                   command_line_actor())
    train = open_page("pages/views/train.py")
    assert not train.exception, train.exception
    assert "tickets/v1" in str(next(s for s in train.selectbox).value)
    records = train_runs(isolated_workspace, config, version)
    assert all(r.state.value == "succeeded" for r in records), [r.error for r in records]
    assert {r.fit_info["tag_separator"] for r in records} == {";"}  # a classified file joins tags the same way
    app = open_page("pages/views/evaluate.py")
    assert not app.exception, app.exception
    page = texts(app)
    assert "These runs give tags" in page and "Recommended:" in page
    # two taggers right on nearly every text of a small validation split: judged on their paired bootstrap
    assert "no clear winner: the validation micro-F1 of" in page or "clearly above" in page
    compared = next(d.value for d in app.dataframe if "validation micro_f1" in d.value.columns)
    assert compared["validation micro_f1"].str.fullmatch(r"\d\.\d{3} \(\d\.\d{2}–\d\.\d{2}\)").all()  # intervals
    assert [m.label for m in app.metric][:5] == ["Micro-F1", "Macro-F1", "Samples F1", "Exact tag sets",
                                                  "Hamming loss"]
    assert "gave exactly the right tags to" in page and f"tested on {version.meta['split_sizes']['test']}" in page
    per_tag = next(d.value for d in app.dataframe if "threshold" in d.value.columns)
    assert sorted(per_tag["label"]) == ["bug", "login", "payments", "support"]
    record_csv = next(b for b in app.get("download_button") if b.proto.label == "Experiment record (CSV)")
    assert record_csv is not None
    from core.experiments.reports import experiments_csv

    from core.experiments.reports import tag_markdown_report
    from core.services.evaluation import tag_evaluation as stored_tag_evaluation

    report = tag_markdown_report(records[0], stored_tag_evaluation(Studio(config), Caller(ANALYST_ACTOR, "s"),
                                                                     records[0]))
    assert report.startswith(f"# {records[0].name}") and "micro-F1 **" in report and "| threshold |" in report
    exported = experiments_csv([(record, None) for record in records])
    assert "test_micro_f1" in exported.splitlines()[0] and "test_hamming_loss" in exported.splitlines()[0]
    mistakes = next(d.value for d in app.dataframe if "missing" in d.value.columns)
    assert list(mistakes.columns) == ["text", "right tags", "tags given", "missing", "extra", "wrong"]
    assert "test texts got a tag set that is not quite right" in texts(app)
    pairs = next(chart.proto.spec for chart in app.get("plotly_chart") if "Tags together" in chart.proto.spec)
    assert "bug" in pairs and "payments" in pairs
    # another tagged file, scored by the recommended tagger at its own thresholds
    other = next(u for u in app.file_uploader if "text and a label field" in u.label)
    other.set_value(("more.csv", tickets_csv(ticket_rows(40)), "text/csv")).run()
    app.button(key="evaluate_other").click().run()
    assert not app.exception, app.exception
    assert "41 tagged texts from more.csv" in texts(app)  # 40 tagged, one kept without a tag, one without text out

    publish = next(b for b in app.button if b.label.startswith("Publish this run"))
    publish.click().run()
    next(b for b in app.button if b.label == "Yes, publish").click().run()
    assert "now the model used for classification" in texts(app)
    from core.services.classification import classify
    from tests.conftest import USER

    result = classify(Studio(config), Caller(USER, "s1"), ["the app crashed and my card was charged twice"])
    assert result.predictions[0].labels == ["bug", "payments"] and result.predictions[0].label == "bug; payments"
    home = open_page(as_user="uma", role="user")
    assert "tags feedback with any of 4 topics (none, one or several per text)" in texts(home)

    page = open_page("pages/views/classify.py", as_user="uma", role="user")
    page.text_area(key="single_text").input("the app crashed and my card was charged twice")
    page.button(key="classify_text").click().run()
    assert not page.exception, page.exception
    headline = next(m.value for m in page.markdown if m.value.startswith("### "))
    assert "bug · payments" in headline
    bars = [p.proto.text for p in page.get("progress")]
    assert any(bar.startswith("payments") and "· given (threshold" in bar for bar in bars)
    assert any("· not given (threshold" in bar for bar in bars)
    assert "Certainty of the least certain tag" in texts(page)
    assert page.selectbox(key="explain_tag").options[:2] == ["bug", "payments"]  # the tags given first
    page.selectbox(key="explain_tag").set_value("payments")
    page.button(key="explain_text").click().run()
    (weighed,) = explanations(page)
    assert re.search(r'<span class="fs-why-pos-\d" title="\+[0-9.]+">(card|charged)</span>', weighed)
    assert any("Green words raised the score of “payments”" in c.value for c in page.caption)
    page.radio(key="verdict:single").set_value("No, it should be…").run()
    tags = page.multiselect(key="correct:single")
    assert tags.value == ["bug", "payments"] and page.button(key="send_feedback:single").disabled  # unchanged yet
    tags.set_value(["bug", "payments", "support"]).run()
    page.button(key="send_feedback:single").click().run()
    assert "you said it should be “bug; payments; support”, not “bug; payments”" in texts(page)

    # the review queue: a tagger's uncertain text is labelled with a tag set
    from core.services.review import label_item, queue
    from core.serving.feedback import FeedbackError
    from tests.conftest import ANALYST

    classify(Studio(config), Caller(USER, "s1"), ["my card and the login, both broken"], threshold=0.9999)
    waiting = queue(Studio(config), Caller(ANALYST, "s2"))  # (the texts above may be queued too, by sampling)
    item = next(i for i in waiting if i.text == "my card and the login, both broken")
    reviewer = open_page("pages/views/classify.py")  # the first text waiting, labelled with a tag set
    assert reviewer.multiselect(key=f"queue_label:{waiting[0].id}").options == ["bug", "login", "payments", "support"]
    with pytest.raises(FeedbackError, match="'weather' is not one of the model's tags"):
        label_item(Studio(config), Caller(ANALYST, "s2"), item.id, "login; weather")
    assert label_item(Studio(config), Caller(ANALYST, "s2"), item.id, "login; payments")

    admin = open_page("pages/views/admin.py", as_user="root", role="admin")
    assert not admin.exception, admin.exception
    charts = [chart.proto.spec for chart in admin.get("plotly_chart")]
    assert any("Tag rates: share of texts given each tag" in spec for spec in charts)
    assert "tag mix (each tag's share of the tags given)" in texts(admin)


@pytest.mark.slow  # a (tiny) transformer fine-tuned on tags through the queue: seconds
def test_a_fine_tuned_tagger_trains_through_the_queue_and_is_evaluated_by_tags(isolated_workspace, config_file,
                                                                              tiny_bert):
    from tests.test_training import tiny_config

    config = tiny_config(config_file, tiny_bert, epochs=1)
    table = records_from_list(ticket_rows(120), source="tickets.csv")
    version = save_tag_preparation(isolated_workspace, "tickets", prepare_tags(
        table, "ticket", detect_task(table, "tags").format, config), SplitPlan(0.8, 0.1, 0.1, 3), command_line_actor())
    (run,) = train_runs(isolated_workspace, config, version, kinds=("transformer",))
    assert run.state.value == "succeeded", run.error
    assert run.model["task"] == "multi-label" and "best_validation_micro_f1" in run.fit_info
    assert set(run.test_metrics) >= {"micro_f1", "macro_f1", "samples_f1", "subset_accuracy", "hamming_loss"}
    app = open_page("pages/views/evaluate.py")
    assert not app.exception, app.exception
    assert [m.label for m in app.metric][:2] == ["Micro-F1", "Macro-F1"] and "These runs give tags" in texts(app)
