"""The Admin page through AppTest: refusals, session log, accounts, monitoring, feedback into a new version."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from core.accounts.audit import EventType, record_event
from core.accounts.auth import Accounts
from core.platform.config import AppConfig
from core.data.dataset_versions import list_dataset_versions
from core.serving.feedback import list_feedback, record_feedback
from core.serving.publishing import publish
from core.platform.store import events
from tests.conftest import ANALYST, USER, make_account, save_demo_version, train_runs, workspace_store
from tests.test_pages import open_page, texts


@pytest.mark.parametrize("role", ["analyst", "user"])
def test_only_admins_open_the_admin_page(isolated_workspace, role):
    app = open_page("pages/views/admin.py", as_user="someone", role=role)
    assert any("You do not have access to this page" in e.value for e in app.error)
    assert not app.dataframe


def test_session_log_lists_actions_with_user_and_time_and_filters_them(isolated_workspace):
    app = open_page(as_user="root", role="admin")  # records root's sign-in
    make_account(isolated_workspace, "uma", "user")
    store = workspace_store(isolated_workspace)
    record_event(store, EventType.DATASET_SAVED, ANALYST, "s-ana", dataset="demo/v1")
    record_event(store, EventType.CLASSIFIED_TEXT, USER, "s-uma", label="billing")
    app.switch_page("pages/views/admin.py").run()
    log = app.dataframe[0].value  # as people read it: words, one time format, details as text
    assert {"signed in", "saved a dataset version", "classified a text"} <= set(log["what"])
    saved = log[log["what"] == "saved a dataset version"].iloc[0]
    assert saved["who"] == "ana" and saved["role"] == "analyst" and saved["details"] == "dataset: demo/v1"
    assert log["time"].str.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}").all()
    app.selectbox(key="log_user").set_value("uma").run()
    assert set(app.dataframe[0].value["who"]) == {"uma"}
    app.selectbox(key="log_user").set_value("(any)")
    app.multiselect(key="log_types").set_value(["dataset_saved", "sign_in"]).run()
    assert set(app.dataframe[0].value["what"]) == {"saved a dataset version", "signed in"}
    app.text_input(key="log_text").input("demo/v1").run()
    assert app.dataframe[0].value["what"].tolist() == ["saved a dataset version"]
    assert any(d.label == "Download these events (CSV)" for d in app.get("download_button"))
    app.selectbox(key="log_session").set_value("s-ana").run()  # one session's timeline
    timeline = app.dataframe[1].value
    assert timeline["what"].tolist() == ["saved a dataset version"] and timeline["who"].tolist() == ["ana"]


def test_one_sign_in_is_logged_once_however_often_the_page_is_reloaded(isolated_workspace):
    """Every reload logged a new sign-in under a new session id, so one visit split into fragments."""
    from core.accounts.audit import has_event
    from core.accounts.auth import sign_in_id

    store = workspace_store(isolated_workspace)
    visit = sign_in_id("ana", 1_790_000_000.5)  # the id the sign-in cookie gives this visit
    assert visit == sign_in_id("ana", 1_790_000_000.5) != sign_in_id("ana", 1_790_000_001.5)
    assert visit != sign_in_id("ben", 1_790_000_000.5)
    from datetime import timedelta

    from core.accounts.sessions import Sessions
    from core.platform.store import utc_now

    make_account(isolated_workspace, "ana", "analyst")
    Sessions(store).start(visit, "ana", utc_now() + timedelta(hours=1))  # the password sign-in's row
    for reload in range(3):
        app = open_page(as_user="ana")
        app.session_state["fs_session_id"] = visit  # as the sign-in form sets it from the cookie
        app.session_state["fs_actor"] = None  # a fresh browser session restored from the cookie
        app.run()
    assert has_event(store, visit, EventType.SIGN_IN)
    sign_ins = store.rows(select(events).where(events.c.event_type == "sign_in", events.c.session_id == visit))
    assert len(sign_ins) == 1


def form_field(app, form: str, field: str) -> str:
    """The key of a form's field in the form's current round (a form starts afresh under new keys)."""
    state = app.session_state
    return f"{form}:{state[f'{form}:round'] if f'{form}:round' in state else 0}:{field}"


def accounts_table(app):
    return next(d.value for d in app.dataframe if "created by" in d.value.columns)


def test_admin_creates_and_changes_accounts(isolated_workspace):
    app = open_page("pages/views/admin.py", as_user="root", role="admin")
    app.text_input(key=form_field(app, "new_account", "username")).input("ana")
    app.text_input(key=form_field(app, "new_account", "name")).input("Ana Analyst")
    app.text_input(key=form_field(app, "new_account", "password")).input("short")
    next(b for b in app.button if b.label == "Create account").click().run()
    assert any("Not created" in e.value for e in app.error)  # a refusal keeps what was typed
    assert (app.text_input(key=form_field(app, "new_account", "username")).value, app.text_input(key=form_field(app, "new_account", "name")).value) == ("ana", "Ana Analyst")
    app.text_input(key=form_field(app, "new_account", "password")).input("analyst password")
    app.selectbox(key=form_field(app, "new_account", "role")).set_value("analyst")
    next(b for b in app.button if b.label == "Create account").click().run()
    assert any("Created ana (analyst)" in s.value for s in app.success)
    # The table and the account list show the new account at once (they lagged one action behind).
    assert "ana" in accounts_table(app)["username"].tolist()
    assert "ana" in app.selectbox(key="edit_username").options
    assert app.text_input(key=form_field(app, "new_account", "username")).value == "" and app.text_input(key=form_field(app, "new_account", "password")).value == ""
    accounts = Accounts(workspace_store(isolated_workspace), AppConfig().auth)
    assert accounts.get("ana").role.value == "analyst"
    # The next account starts at the least privilege again: it was created as an analyst by accident before.
    assert app.selectbox(key=form_field(app, "new_account", "role")).value == "user"
    app.text_input(key=form_field(app, "new_account", "username")).input("uma")
    app.text_input(key=form_field(app, "new_account", "password")).input("user password phrase")
    next(b for b in app.button if b.label == "Create account").click().run()
    assert any("Created uma (user): classifies feedback and corrects predictions, nothing else" in s.value
               for s in app.success)
    assert accounts.get("uma").role.value == "user"

    app.selectbox(key="edit_username").set_value("ana").run()
    app.selectbox(key="edit_role:ana").set_value("user")
    app.checkbox(key="edit_disabled:ana").check()
    app.button(key="edit_save").click().run()
    assert any("ana: role user, disabled" in s.value for s in app.success)
    assert accounts.get("ana").disabled and accounts.get("ana").role.value == "user"
    row = accounts_table(app).set_index("username").loc["ana"]
    assert (row["role"], row["state"]) == ("user", "disabled")
    app.selectbox(key="edit_username").set_value("root").run()
    app.selectbox(key="edit_role:root").set_value("user")
    app.button(key="edit_save").click().run()
    assert any("last active admin" in e.value for e in app.error)
    kinds = [r["event_type"] for r in workspace_store(isolated_workspace).rows(select(events))]
    assert kinds.count("account_created") == 2 and kinds.count("account_changed") == 1

    app.selectbox(key="edit_username").set_value("ana").run()  # enable again, with a new password
    app.text_input(key="edit_pw:ana").input("a fresh password 42")
    app.checkbox(key="edit_disabled:ana").uncheck()
    app.button(key="edit_save").click().run()
    assert any("ana: password reset, enabled" in s.value for s in app.success)
    assert not accounts.get("ana").disabled
    assert accounts.authenticate("ana", "a fresh password 42").username == "ana"


@pytest.mark.slow
def test_monitoring_and_feedback_review_feed_a_new_dataset_version(isolated_workspace, config):
    store = workspace_store(isolated_workspace)
    version = save_demo_version(isolated_workspace, config)
    (run,) = train_runs(isolated_workspace, config, version, kinds=("tfidf_logreg",))
    publish(isolated_workspace, run.run_id, ANALYST)
    classify = open_page("pages/views/classify.py", as_user="uma", role="user")
    classify.text_area(key="single_text").input("The driver dumped my parcel in a puddle")
    classify.button(key="classify_text").click().run()
    record_feedback(store, USER, run.run_id, version.labels, "The app logs me out while I pay my bill", "billing",
                    0.5, "app_website")

    app = open_page("pages/views/admin.py", as_user="root", role="admin")
    figures = {c.proto.spec for c in app.get("plotly_chart")}
    assert any("Predictions over time" in f for f in figures) and any("Label mix" in f for f in figures)
    # One correction that disagrees: its count, not "0%" (a percentage needs classify.min_cases_for_rate cases).
    cards = {m.label: m.value for m in app.metric}
    assert cards["Feedback agreement"] == "0 of 1" and cards["Feedback received"] == "1"
    assert cards["Needing review"] in ("0 of 1", "1 of 1")
    # Minutes of data: hour bins, hour ticks (not "23:59:59.999"), a marker on the single point, names in legends.
    assert app.radio(key="monitor_freq").value == "h"
    volume = json.loads(next(f for f in figures if "Predictions over time" in f))
    assert volume["layout"]["xaxis"]["tickformat"] == "%d %b %H:%M" and len(volume["layout"]["xaxis"]["range"]) == 2
    assert [trace["name"] for trace in volume["data"]] == [run.name]
    review = json.loads(next(f for f in figures if "Share needing review" in f))
    assert "markers" in review["data"][0]["mode"]
    assert "1 correction(s) waiting for review" in texts(app)
    (pending,) = list_feedback(store, "pending")
    app.multiselect(key="feedback_pick").set_value([pending.id]).run()
    app.button(key="review:True").click().run()
    assert any("1 correction(s) accepted" in s.value for s in app.success)
    assert "1 accepted example(s)" in texts(app)
    assert f"1 accepted labelled example(s) are new to the published model ({run.name})" in texts(app)
    assert any(d.label == "Download accepted examples (JSONL)" for d in app.get("download_button"))
    app.button(key="merge_save").click().run()
    assert any("Saved demo/v2" in s.value for s in app.success)
    merged = [v for v in list_dataset_versions(isolated_workspace) if v.ref == "demo/v2"][0]
    assert "The app logs me out while I pay my bill" in merged.frame()["text"].tolist()
    kinds = [r["event_type"] for r in store.rows(select(events))]
    assert "feedback_reviewed" in kinds and kinds[-1] == "dataset_saved"


def test_a_page_failure_is_shown_plainly_and_recorded(isolated_workspace):
    """A damaged workspace file makes the Home page fail: the person gets a plain message, the log the rest."""
    (isolated_workspace.models / "published.json").write_text("{ not json")
    app = open_page(as_user="ana")
    assert any("Something went wrong on this page" in e.value for e in app.error)
    rows = workspace_store(isolated_workspace).rows(select(events).where(events.c.event_type == "page_error"))
    assert rows and rows[0]["details"] == {"page": "Home", "error": "JSONDecodeError"} and rows[0]["username"] == "ana"
    log_file = isolated_workspace.logs / "studio.log"
    assert "JSONDecodeError" in log_file.read_text()  # the traceback is kept for the admin


def test_merging_reports_duplicates_and_counts_only_examples_new_to_the_published_model(isolated_workspace, config):
    store = workspace_store(isolated_workspace)
    version = save_demo_version(isolated_workspace, config)
    (run,) = train_runs(isolated_workspace, config, version, kinds=("tfidf_nb",))
    publish(isolated_workspace, run.run_id, ANALYST)
    known = version.frame().iloc[0]
    items = [record_feedback(store, USER, run.run_id, version.labels, known["text"], known["label"], 0.9, known["label"]),
             record_feedback(store, USER, run.run_id, version.labels, "Brand new complaint about the parcel locker",
                             "billing", 0.4, "delivery")]
    app = open_page("pages/views/admin.py", as_user="root", role="admin")
    app.multiselect(key="feedback_pick").set_value([i.id for i in items]).run()
    app.button(key="review:True").click().run()
    # The known text is already in the training data with that label: only one example is new.
    assert f"1 accepted labelled example(s) are new to the published model ({run.name})" in texts(app)
    assert "2 accepted example(s)" in texts(app)
    assert "duplicate" in texts(app).lower()  # the merge preview reports the repeated text


def save_two_label_version(workspace, config, name: str = "reviews"):
    """A small unrelated dataset (two labels), saved after the demo set."""
    from core.data.cleaning import CleaningOptions
    from core.data.ingest import records_from_list
    from core.data.preparation import prepare, save_preparation
    from core.data.split import SplitPlan

    rows = [{"text": f"{word} review number {i} about the blender", "label": label}
            for i in range(40) for word, label in (("great", "positive"), ("awful", "negative"))]
    prepared = prepare(records_from_list(rows, source="reviews.jsonl"), "text", "label", CleaningOptions(), config)
    return save_preparation(workspace, name, prepared, SplitPlan.from_config(config.split), ANALYST)


@pytest.mark.slow
def test_feedback_merges_into_the_published_models_dataset_and_asks_before_mixing_datasets(isolated_workspace,
                                                                                           config):
    """The base defaulted to the newest dataset and the name stuck to it: feedback landed in reviews/v2."""
    store = workspace_store(isolated_workspace)
    version = save_demo_version(isolated_workspace, config)
    (run,) = train_runs(isolated_workspace, config, version, kinds=("tfidf_nb",))
    publish(isolated_workspace, run.run_id, ANALYST)
    save_two_label_version(isolated_workspace, config)  # newer, and last in the list
    item = record_feedback(store, USER, run.run_id, version.labels, "The courier threw my parcel over the fence",
                           "billing", 0.4, "delivery")
    app = open_page("pages/views/admin.py", as_user="root", role="admin")
    app.multiselect(key="feedback_pick").set_value([item.id]).run()
    app.button(key="review:True").click().run()

    assert app.selectbox(key="merge_base").value == "demo/v1"
    assert app.text_input(key="merge_name:demo/v1").value == "demo"
    assert not app.warning and not app.button(key="merge_save").disabled

    app.selectbox(key="merge_base").set_value("reviews/v1").run()  # the name follows the base
    assert app.text_input(key="merge_name:reviews/v1").value == "reviews"
    assert any("labels differ from reviews/v1" in w.value for w in app.warning)
    assert app.button(key="merge_save").disabled  # until confirmed

    app.selectbox(key="merge_base").set_value("demo/v1").run()
    app.text_input(key="merge_name:demo/v1").input("reviews").run()
    assert any("reviews is another dataset than the base demo/v1" in w.value for w in app.warning)
    app.checkbox(key="merge_confirm:demo/v1:reviews").check().run()
    app.text_input(key="merge_name:demo/v1").input("demo").run()
    app.button(key="merge_save").click().run()
    assert any("Saved demo/v2" in s.value for s in app.success)
    assert [v.ref for v in list_dataset_versions(isolated_workspace)] == ["demo/v1", "demo/v2", "reviews/v1"]


def test_admin_creates_an_api_token_shown_once_and_revokes_it(isolated_workspace, config):
    from core.services import Studio
    from core.services.tokens import api_caller
    from core.accounts.tokens import TokenRefused

    make_account(isolated_workspace, "uma", "user")
    app = open_page("pages/views/admin.py", as_user="root", role="admin")
    app.selectbox(key=form_field(app, "new_token", "account")).set_value("uma")
    app.text_input(key=form_field(app, "new_token", "name")).input("CRM sync")
    app.selectbox(key=form_field(app, "new_token", "role")).set_value("user")
    next(b for b in app.button if b.label == "Create token").click().run()
    (shown,) = [c.value for c in app.code]
    assert shown.startswith("fs_") and any("shown only this once" in s.value for s in app.success)
    studio = Studio(config)
    assert api_caller(studio, shown).actor.username == "uma"
    app.run()
    assert not [c.value for c in app.code]  # the secret is gone from the page after it was shown
    app.selectbox(key="token_revoke_pick").set_value(app.selectbox(key="token_revoke_pick").options[0]).run()
    app.button(key="token_revoke").click().run()
    with pytest.raises(TokenRefused):
        api_caller(studio, shown)
    (table,) = [frame.value for frame in app.dataframe if "last used" in frame.value.columns]
    assert table.iloc[0]["state"].startswith("revoked") and table.iloc[0]["account"] == "uma"
