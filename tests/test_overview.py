"""The Home page's overview: what the workspace holds and where each role goes next."""

from __future__ import annotations

from core.serving.overview import summarise_workspace
from core.serving.publishing import publish
from tests.conftest import ADMIN, ANALYST, USER, save_demo_version, train_runs


def test_the_next_step_follows_the_journey_and_the_role(isolated_workspace, config):
    summary = summarise_workspace(isolated_workspace)
    assert summary.next_step(ANALYST) == ("pages/views/data.py", "Next: prepare a dataset on the Data page")
    assert summary.next_step(USER) == ("pages/views/classify.py", "Classify new feedback")  # users never prepare data
    assert summary.next_step(None) is None

    version = save_demo_version(isolated_workspace, config)
    assert summarise_workspace(isolated_workspace).next_step(ANALYST)[0] == "pages/views/train.py"
    (run,) = train_runs(isolated_workspace, config, version, kinds=("tfidf_nb",))
    summary = summarise_workspace(isolated_workspace)
    assert summary.next_step(ADMIN)[0] == "pages/views/evaluate.py" and summary.finished_runs[0].run_id == run.run_id
    publish(isolated_workspace, run.run_id, ANALYST)
    summary = summarise_workspace(isolated_workspace)
    assert summary.next_step(ANALYST)[0] == "pages/views/classify.py" and summary.published_run.run_id == run.run_id
