"""The Classify page through AppTest: a signed-in user classifies a text and a file and corrects the model."""

from __future__ import annotations

import json
import re

from sqlalchemy import select

from core.data.cleaning import CleaningOptions
from core.data.ingest import records_from_list
from core.data.preparation import prepare, save_preparation
from core.serving.publishing import publish
from core.training.runs import load_record
from core.services import Studio
from core.services.classification import review_threshold
from core.data.split import SplitPlan
from core.platform.store import events, feedback, predictions
from tests.conftest import ANALYST, save_demo_version, train_runs, workspace_store
from tests.test_pages import explanations, open_page, texts


def test_a_user_classifies_a_text_and_a_file_and_leaves_feedback(isolated_workspace, config):
    version = save_demo_version(isolated_workspace, config)
    (run,) = train_runs(isolated_workspace, config, version, kinds=("tfidf_logreg",))
    app = open_page("pages/views/classify.py", as_user="uma", role="user")
    assert "No model is published yet" in texts(app)
    publish(isolated_workspace, run.run_id, ANALYST)

    app.run()
    assert run.name in texts(app) and run.run_id not in texts(app)  # the model by name
    # The review threshold is the run's suggestion, worked out in one place for the page, the CLI and the API.
    threshold = app.slider(key=f"threshold:{run.run_id}").value
    assert threshold == review_threshold(Studio(config), load_record(isolated_workspace, run.run_id)).value

    # One text: label, a confidence bar per label, a review badge, then a correction.
    app.text_area(key="single_text").input("I was charged twice for the same order and want my money back")
    app.button(key="classify_text").click().run()
    assert not app.exception, app.exception
    headline = next(m.value for m in app.markdown if m.value.startswith("### "))
    assert "billing" in headline and ("needs review" in headline or "confident" in headline)
    bars = [p.proto.text for p in app.get("progress")]
    assert len(bars) == len(version.labels) and bars[0].startswith("billing")
    send = app.button(key="send_feedback:single")
    assert send.disabled and not [s for s in app.selectbox if s.key == "correct:single"]  # nothing chosen yet
    app.radio(key="verdict:single").set_value("Yes, it is correct").run()
    assert not [s for s in app.selectbox if s.key == "correct:single"]  # no label to pick when it is right
    app.radio(key="verdict:single").set_value("No, it should be…").run()
    assert app.selectbox(key="correct:single").value is None and app.button(key="send_feedback:single").disabled
    assert "billing" not in app.selectbox(key="correct:single").options
    app.selectbox(key="correct:single").set_value("delivery").run()
    app.button(key="send_feedback:single").click().run()
    # It says what was stored, in place of the question.
    assert any("stored: you said it should be “delivery”, not “billing”" in s.value for s in app.success)
    assert not [b for b in app.button if b.key == "send_feedback:single"]

    # A file: a bad row gets a status, the results table and both downloads appear.
    csv = b"id,comment\n1,my parcel was left in the rain\n2,\n3,=SUM(A1:A9) the app keeps crashing\n"
    app.file_uploader(key="classify_file").set_value(("new.csv", csv, "text/csv")).run()
    app.selectbox(key=next(s.key for s in app.selectbox if s.key and s.key.startswith("file_field:"))).set_value(
        "comment").run()
    app.button(key="classify_file_run").click().run()
    assert not app.exception, app.exception
    table = app.dataframe[0].value
    assert table["status"].tolist() == ["ok", "empty", "ok"]
    assert table["predicted_label"].iloc[0] == "delivery"
    # Words over the columns on the page (the code names predicted_label, needs_review… are for the downloads).
    headers = {name: settings.get("label") for name, settings in json.loads(app.dataframe[0].proto.columns).items()}
    assert headers["predicted_label"] == "Predicted label" and headers["needs_review"] == "Needs review"
    assert headers["confidence"] == "Confidence" and headers["line"] == "Line in the file"
    # The upload's own columns come back as they were (its ids join back), the file line in its own column.
    assert table.columns[:2].tolist() == ["id", "comment"] and table["id"].tolist() == ["1", "2", "3"]
    assert table["comment"].iloc[0] == "my parcel was left in the rain" and table["line"].tolist() == [2, 3, 4]
    assert {d.label for d in app.get("download_button")} >= {"Download results (CSV)", "Download results (JSONL)"}
    assert any("3 prediction(s) this session" in m.value for m in app.markdown)  # 1 text + 2 scored rows
    # A row of the file is corrected from the results (it could only be done through History): its text and
    # prediction are the row's; the empty row is not offered.
    row_key = next(s.key for s in app.selectbox if s.key and s.key.startswith("correct_row:"))
    assert app.selectbox(key=row_key).value is None and len(app.selectbox(key=row_key).options) == 2
    app.selectbox(key=row_key).set_value(0).run()
    form = row_key.replace("correct_row:", "file:") + ":0"
    app.radio(key=f"verdict:{form}").set_value("No, it should be…").run()
    app.selectbox(key=f"correct:{form}").set_value("product_quality").run()
    app.button(key=f"send_feedback:{form}").click().run()
    assert not app.exception, app.exception
    assert any("stored: you said it should be “product_quality”, not “delivery”" in s.value for s in app.success)

    store = workspace_store(isolated_workspace)
    first, from_file = store.rows(select(feedback).order_by(feedback.c.id))
    assert (first["username"], first["run_id"], first["predicted"], first["correct_label"], first["is_correct"]) == (
        "uma", run.run_id, "billing", "delivery", False)
    assert (from_file["text"], from_file["predicted"], from_file["correct_label"]) == (
        "my parcel was left in the rain", "delivery", "product_quality")
    assert len(store.rows(select(predictions))) == 1 + 3
    kinds = [row["event_type"] for row in store.rows(select(events).order_by(events.c.id))]
    assert kinds[-4:] == ["classified_text", "feedback_given", "classified_file", "feedback_given"]


def test_text_and_labels_from_users_are_shown_as_written_never_as_html(isolated_workspace, config):
    """Labels come from an uploaded file and texts from anyone: markup in them must not reach the page."""
    rows = [{"text": f"parcel {i} arrived late again", "label": "<b>late</b>"} for i in range(20)]
    rows += [{"text": f"refund {i} still missing on card", "label": "<img src=x onerror=alert(1)>"} for i in range(20)]
    prepared = prepare(records_from_list(rows), "text", "label", CleaningOptions(), config)
    version = save_preparation(isolated_workspace, "markup", prepared, SplitPlan.from_config(config.split), ANALYST)
    (run,) = train_runs(isolated_workspace, config, version, kinds=("tfidf_logreg",))
    publish(isolated_workspace, run.run_id, ANALYST)
    app = open_page("pages/views/classify.py", as_user="uma", role="user")
    app.text_area(key="single_text").input("<script>alert('x')</script> my parcel arrived late")
    app.button(key="classify_text").click().run()
    assert not app.exception, app.exception
    headline = next(m.value for m in app.markdown if m.value.startswith("### "))
    assert "&lt;b&gt;late&lt;/b&gt;" in headline or "&lt;img" in headline
    rendered = " ".join(m.value for m in app.markdown) + " ".join(c.value for c in app.caption)
    unescaped_tags = re.findall(r"(?<!\\)<(?:b|img|script)\b", rendered)  # markup not escaped for Markdown
    assert not unescaped_tags, rendered


def test_classify_and_evaluate_start_from_one_threshold_and_say_when_the_test_split_is_too_small(
        isolated_workspace, config):
    """A run at 95 % on 40 test texts was offered 0.00 on Classify while Evaluate showed 0.60."""
    version = save_demo_version(isolated_workspace, config)
    (run,) = train_runs(isolated_workspace, config, version, kinds=("tfidf_logreg",))
    publish(isolated_workspace, run.run_id, ANALYST)
    tested = sum(version.meta["split_counts"]["test"].values())
    assert tested < config.classify.min_test_texts
    classify = open_page("pages/views/classify.py", as_user="uma", role="user")
    evaluate = open_page("pages/views/evaluate.py")
    on_classify = classify.slider(key=f"threshold:{run.run_id}")
    on_evaluate = evaluate.slider(key=f"threshold:{run.run_id}")
    assert on_classify.value == on_evaluate.value == config.classify.review_threshold
    assert f"only {tested} texts, too few to set a threshold" in on_classify.help
    assert f"only {tested} texts, too few to set a threshold" in texts(evaluate)
    shares = next(m.value for m in evaluate.markdown if "the model decides alone on" in m.value)
    kept, review = re.search(r"alone on \*\*(\d+)%\*\*.*the other (\d+)% go to review", shares).groups()
    assert int(kept) + int(review) == 100


def test_a_users_home_is_about_classifying_not_the_analysts_workspace(isolated_workspace, config):
    """A user's Home showed dataset and run counts, 'train some runs' and raw run ids."""
    version = save_demo_version(isolated_workspace, config)
    (run,) = train_runs(isolated_workspace, config, version, kinds=("tfidf_logreg",))
    home = open_page(as_user="uma", role="user")
    assert "No model is in use yet" in texts(home) and not home.metric
    publish(isolated_workspace, run.run_id, ANALYST)
    classify = open_page("pages/views/classify.py", as_user="uma", role="user")
    classify.text_area(key="single_text").input("I was charged twice for the same order")
    classify.button(key="classify_text").click().run()

    home = open_page(as_user="uma", role="user")
    page = texts(home)
    assert "sorts feedback into 5 topics" in page and run.name in page and run.run_id not in page
    assert not home.metric and "Trained runs" not in page and "train" not in page.lower().replace(run.name.lower(), "")
    assert [link.proto.label for link in home.get("page_link")] == ["Classify feedback"]
    mine = home.dataframe[0].value
    assert len(mine) == 1 and mine["label"].iloc[0] == "billing"


def test_why_this_label_shades_the_deciding_words_and_escapes_the_text(isolated_workspace, config):
    version = save_demo_version(isolated_workspace, config)
    (run,) = train_runs(isolated_workspace, config, version, kinds=("tfidf_logreg",))
    publish(isolated_workspace, run.run_id, ANALYST)
    app = open_page("pages/views/classify.py", as_user="uma", role="user")
    text = 'Charged twice <script>alert("x")</script> refund **now**'
    app.text_area(key="single_text").input(text)
    app.button(key="classify_text").click().run()
    app.button(key="explain_text").click().run()
    assert not app.exception, app.exception
    (shown,) = explanations(app)
    assert "<script" not in shown and "</script" not in shown and "alert(&quot;x&quot;)&lt;/" in shown
    assert "**<span" in shown  # Markdown stays as typed: st.html renders no Markdown
    assert 'class="fs-why-pos-3"' in shown  # the strongest word, darkest
    assert re.search(r'<span class="fs-why-pos-\d" title="\+[0-9.]+">(Charged|refund)</span>', shown)
    assert any("Green words pushed towards “billing”" in c.value for c in app.caption)


def test_analysts_label_the_review_queue_and_users_do_not_see_it(isolated_workspace, config_file):
    from core.serving.feedback import list_feedback
    from core.services import Caller, Studio
    from core.services.classification import classify

    config = config_file("[review]\nconfident_sample_rate = 0.0\n")
    version = save_demo_version(isolated_workspace, config)
    (run,) = train_runs(isolated_workspace, config, version, kinds=("tfidf_nb",))
    publish(isolated_workspace, run.run_id, ANALYST)
    studio = Studio(config)
    classify(studio, Caller(ANALYST), ["the parcel and the refund and the app", "where is my box <b>now</b>"],
             threshold=0.99)
    user = open_page("pages/views/classify.py", as_user="uma", role="user")
    assert [t.label for t in user.tabs] == ["One text", "A file", "History"]
    app = open_page("pages/views/classify.py", as_user="ana", role="analyst")
    assert [t.label for t in app.tabs][-1] == "Review queue"
    assert "2 text(s) waiting" in texts(app)
    item_key = next(s.key for s in app.selectbox if s.key and s.key.startswith("queue_label:"))
    other = next(label for label in run.labels if label != app.selectbox(key=item_key).value)
    app.selectbox(key=item_key).set_value(other)
    app.button(key="queue_save").click().run()
    assert any("goes to the feedback review" in s.value for s in app.success)
    assert "1 text(s) waiting" in texts(app)
    (correction,) = list_feedback(studio.store, "pending")
    assert correction.correct_label == other and correction.username == "ana"
