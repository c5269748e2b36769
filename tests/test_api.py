"""The HTTP API, through FastAPI's test client on the real app: each endpoint, and each refusal in words."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.entrypoints.api import create_app
from core.accounts.auth import Role
from core.serving.monitoring import prediction_log
from core.services import Caller, Studio
from core.services.accounts import change_account, create_account, create_first_admin
from core.services.publishing import publish_run
from core.services.tokens import create_token, list_tokens, revoke_token
from core.platform.store import events
from tests.conftest import ANALYST, PASSWORD, save_demo_version, train_runs


@pytest.fixture
def studio(config_file) -> Studio:
    config = config_file("[api]\nmax_texts = 5\nmax_body_mb = 0.01\n")
    studio = Studio(config)
    yield studio
    studio.close()


@pytest.fixture
def admin(studio) -> Caller:
    account = create_first_admin(studio, Caller(None), "boss", "Boss", "", PASSWORD)
    return Caller(account.actor, "s-admin")


@pytest.fixture
def user_token(studio, admin) -> str:
    create_account(studio, admin, "uma", "Uma", "", PASSWORD, Role.USER)
    return create_token(studio, admin, "uma", "CRM sync", Role.USER)[1]


@pytest.fixture
def published(studio, config):
    version = save_demo_version(studio.workspace, config, max_rows=120)
    (run,) = train_runs(studio.workspace, config, version, kinds=("tfidf_nb",))
    publish_run(studio, Caller(ANALYST, "s-ana"), run.run_id)
    return run


@pytest.fixture
def client(studio) -> TestClient:
    return TestClient(create_app(studio))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_classify_returns_labels_scores_and_review_flags_and_lands_in_monitoring(client, studio, user_token,
                                                                                  published):
    answer = client.post("/v1/classify", headers=bearer(user_token),
                         json={"texts": ["the parcel came late", "", "refund my money"], "threshold": 0.99})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == {"run_id": published.run_id, "name": published.name} and body["threshold"] == 0.99
    first, empty, _ = body["predictions"]
    assert first["status"] == "ok" and first["label"] in published.labels
    assert set(first["scores"]) == set(published.labels) and abs(sum(first["scores"].values()) - 1) < 1e-6
    assert first["needs_review"] is True and empty["status"] == "empty" and empty["label"] is None
    served = prediction_log(studio.store)
    assert len(served) == 3 and set(served["username"]) == {"uma"}
    event = studio.store.rows(select(events).where(events.c.event_type == "classified_file"))[0]
    assert event["details"]["via"] == "HTTP API" and event["session_id"].startswith("token:")


def test_the_model_endpoint_describes_the_published_run(client, user_token, published):
    body = client.get("/v1/model", headers=bearer(user_token)).json()
    assert body["run_id"] == published.run_id and body["labels"] == published.labels
    assert body["kind"] == "tfidf_nb" and body["published_at"] and 0.5 <= body["review_threshold"] <= 1
    assert "threshold" in body["review_threshold_note"]


def test_feedback_is_stored_for_review(client, studio, user_token, published):
    label = published.labels[0]
    answer = client.post("/v1/feedback", headers=bearer(user_token),
                         json={"text": "where is my parcel", "predicted": label, "correct_label": published.labels[1]})
    assert answer.status_code == 201 and answer.json()["correct"] is False and answer.json()["status"] == "pending"
    refused = client.post("/v1/feedback", headers=bearer(user_token),
                          json={"text": "x", "predicted": label, "correct_label": "no-such-label"})
    assert refused.status_code == 422 and "'no-such-label' is not one of the model's labels" in refused.json()["error"]
    unknown_run = client.post("/v1/feedback", headers=bearer(user_token),
                              json={"text": "x", "predicted": label, "correct_label": label, "run_id": "nope"})
    assert unknown_run.status_code == 404 and "no published model 'nope'" in unknown_run.json()["error"]
    named = client.post("/v1/feedback", headers=bearer(user_token),
                        json={"text": "x", "predicted": label, "correct_label": label, "run_id": published.run_id})
    assert named.status_code == 201 and named.json()["correct"] is True


@pytest.mark.parametrize("headers, why", [
    ({}, "a valid API token is needed"),
    ({"Authorization": "Bearer not-a-token"}, "a valid API token is needed"),
    ({"Authorization": "Bearer fs_000000000000_forged"}, "not valid (unknown or revoked)"),
])
def test_calls_without_a_valid_token_get_401(client, published, headers, why):
    answer = client.post("/v1/classify", headers=headers, json={"texts": ["hello"]})
    assert answer.status_code == 401 and why in answer.json()["error"]
    assert answer.headers["www-authenticate"] == "Bearer"


def test_revoked_tokens_and_disabled_accounts_stop_at_once(client, studio, admin, user_token, published):
    assert client.get("/v1/model", headers=bearer(user_token)).status_code == 200
    change_account(studio, admin, "uma", disabled=True)
    answer = client.get("/v1/model", headers=bearer(user_token))
    assert answer.status_code == 401 and "(uma) cannot sign in" in answer.json()["error"]
    change_account(studio, admin, "uma", disabled=False)
    (token,) = list_tokens(studio, admin)
    revoke_token(studio, admin, token.id)
    assert client.get("/v1/model", headers=bearer(user_token)).status_code == 401
    kinds = [row["event_type"] for row in studio.store.rows(select(events))]
    assert kinds.count("token_created") == 1 and kinds.count("token_revoked") == 1


def test_a_token_never_does_more_than_its_account_may_now(client, studio, admin, published):
    create_account(studio, admin, "ana", "Ana", "", PASSWORD, Role.ANALYST)
    with pytest.raises(Exception, match="a token cannot have more rights"):
        create_token(studio, admin, "ana", "too much", Role.ADMIN)
    token = create_token(studio, admin, "ana", "reports", Role.ANALYST)[1]
    change_account(studio, admin, "ana", role=Role.USER)  # demoted: the token follows the account down
    ok = client.post("/v1/classify", headers=bearer(token), json={"texts": ["late parcel"]})
    assert ok.status_code == 200
    from core.services.tokens import api_caller

    assert api_caller(studio, token).actor.role is Role.USER


@pytest.mark.parametrize("body, status, why", [
    ({"texts": []}, 422, "body.texts: List should have at least 1 item"),
    ({}, 422, "body.texts: Field required"),
    ({"texts": ["a"] * 6}, 422, "at most 5 texts per request, got 6"),
    ({"texts": ["a", 7]}, 422, "body.texts.1: Input should be a valid string"),
    ({"texts": ["a"], "threshold": 2}, 422, "body.threshold: Input should be less than or equal to 1"),
    ({"texts": ["x" * 20_000]}, 413, "larger than 0.01 MB"),
])
def test_bad_bodies_get_a_4xx_that_says_what_and_where(client, user_token, published, body, status, why):
    answer = client.post("/v1/classify", headers=bearer(user_token), json=body)
    assert answer.status_code == status and why in answer.json()["error"], answer.text


def test_malformed_json_and_nothing_published_are_told_apart(client, user_token):
    answer = client.post("/v1/classify", headers={**bearer(user_token), "Content-Type": "application/json"},
                         content=b'{"texts": [')
    assert answer.status_code == 422 and "body" in answer.json()["error"]
    nothing = client.post("/v1/classify", headers=bearer(user_token), json={"texts": ["hello"]})
    assert nothing.status_code == 409 and "no model is published yet" in nothing.json()["error"]


def test_openapi_docs_describe_every_endpoint(client):
    spec = client.get("/openapi.json").json()
    assert {"/v1/classify", "/v1/model", "/v1/feedback", "/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/result"} <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert client.get("/docs").status_code == 200
    assert json.loads(json.dumps(spec))["info"]["title"] == "Feedback Studio API"


def test_a_published_tagger_returns_each_texts_tags_and_a_verdict_edits_the_tag_set(client, studio, user_token,
                                                                                  config):
    from core.accounts.auth import command_line_actor
    from core.data.ingest import records_from_list
    from core.data.split import SplitPlan
    from core.data.tag_preparation import prepare_tags, save_tag_preparation
    from core.data.tags import detect_task
    from tests.test_tags import ticket_rows

    table = records_from_list(ticket_rows(120), source="tickets.csv")
    version = save_tag_preparation(studio.workspace, "tickets", prepare_tags(
        table, "ticket", detect_task(table, "tags").format, config), SplitPlan(0.8, 0.1, 0.1, 3), command_line_actor())
    (run,) = train_runs(studio.workspace, config, version, kinds=("tfidf_logreg",))
    publish_run(studio, Caller(ANALYST, "s-ana"), run.run_id)
    answer = client.post("/v1/classify", headers=bearer(user_token),
                         json={"texts": ["the app crashed and my card was charged twice", "I cannot log in"]})
    assert answer.status_code == 200, answer.text
    first, second = answer.json()["predictions"]
    assert first["labels"] == ["bug", "payments"] and second["labels"] == ["login"]
    assert first["label"] == "bug; payments" and set(first["scores"]) == set(version.labels)
    verdict = client.post("/v1/feedback", headers=bearer(user_token), json={
        "text": "the app crashed and my card was charged twice", "predicted": "bug; payments",
        "correct_label": "bug; payments; support"})
    assert verdict.status_code == 201 and verdict.json()["correct"] is False, verdict.text
    refused = client.post("/v1/feedback", headers=bearer(user_token), json={
        "text": "x", "predicted": "bug", "correct_label": "bug; weather"})
    assert refused.status_code == 422 and "'weather' is not one of the model's tags" in refused.text


def test_a_file_sent_as_a_job_is_followed_and_its_result_downloaded(client, studio, admin, user_token, published,
                                                                   tmp_path):
    from tests.conftest import QueueWithWorker
    from tests.test_file_jobs import comments_csv, wait_for

    upload = comments_csv(tmp_path / "export.csv", 2_500).read_bytes()
    assert len(upload) > studio.config.api.max_body_mb * 1_000_000  # too big to classify, not to send as a job
    sent = client.post("/v1/jobs", headers=bearer(user_token), files={"file": ("export.csv", upload, "text/csv")},
                       data={"text_field": "comment"})
    assert sent.status_code == 202, sent.text
    job = sent.json()
    assert (job["state"], job["file"], job["model"]["run_id"], job["result"]) == ("queued", "export.csv",
                                                                                   published.run_id, None)
    early = client.get(f"/v1/jobs/{job['id']}/result", headers=bearer(user_token))
    assert early.status_code == 409 and "queued" in early.json()["error"]
    runner = QueueWithWorker(studio.workspace, studio.config)
    try:
        wait_for(studio.workspace, job["id"])
    finally:
        runner.close()
    followed = client.get(f"/v1/jobs/{job['id']}", headers=bearer(user_token)).json()
    assert (followed["state"], followed["rows"], followed["rows_done"], followed["fraction"]) == ("done", 2_500,
                                                                                                  2_500, 1.0)
    result = client.get(followed["result"], headers=bearer(user_token))
    assert result.status_code == 200 and 'filename="export-classified.csv"' in result.headers["content-disposition"]
    lines = result.text.splitlines()
    assert lines[0].startswith("id,comment,channel,predicted_label,confidence,needs_review") and len(lines) == 2_501

    other = create_token(studio, admin, "boss", "ops", Role.ADMIN)[1]
    create_account(studio, admin, "ula", "Ula", "", PASSWORD, Role.USER)
    stranger = create_token(studio, admin, "ula", "CRM", Role.USER)[1]
    assert client.get(f"/v1/jobs/{job['id']}", headers=bearer(stranger)).status_code == 404  # not theirs
    assert client.get(f"/v1/jobs/{job['id']}", headers=bearer(other)).status_code == 200  # an admin sees it
    assert client.get("/v1/jobs/classify-nope", headers=bearer(user_token)).status_code == 404
    second = client.post("/v1/jobs", headers=bearer(user_token), files={"file": ("more.csv", upload, "text/csv")},
                         data={"text_field": "comment", "threshold": "0.8"}).json()
    cancelled = client.delete(f"/v1/jobs/{second['id']}", headers=bearer(user_token)).json()
    assert (cancelled["state"], second["threshold"]) == ("cancelled", 0.8)
    with studio.store.engine.connect() as connection:
        kinds = [(row.event_type, (row.details or {}).get("via")) for row in connection.execute(select(events))]
    assert kinds.count(("file_job_started", "HTTP API")) == 2 and ("file_job_cancelled", "HTTP API") in kinds


@pytest.mark.slow
def test_the_api_serves_from_several_processes_each_with_the_model_once(studio, user_token, published):
    import socket
    import subprocess
    import sys
    import time
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "core", "api", "--workers", "2", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/docs", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        children = [p for p in Path("/proc").iterdir() if p.name.isdigit() and (p / "stat").exists()
                    and (p / "stat").read_text().split(") ")[-1].split()[1] == str(server.pid)]
        workers = [p for p in children if "spawn_main" in (p / "cmdline").read_bytes().decode(errors="replace")]
        assert len(workers) == 2, [(p / "cmdline").read_bytes() for p in children]

        def call(i: int) -> httpx.Response:
            return httpx.post(f"{url}/v1/classify", headers=bearer(user_token), timeout=60,
                              json={"texts": ["my refund never arrived", f"parcel {i} is late"]})

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(call, range(16)))
        assert [a.status_code for a in answers] == [200] * 16
        assert {a.json()["model"]["run_id"] for a in answers} == {published.run_id}
    finally:
        server.terminate()
        server.wait(30)
    with studio.store.engine.connect() as connection:
        via_api = [row for row in connection.execute(select(events)) if row.event_type == "classified_file"
                   and (row.details or {}).get("via") == "HTTP API"]
    assert len(via_api) == 16  # every call in the audit log, whichever process served it
