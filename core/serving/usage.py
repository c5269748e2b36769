"""What still uses a dataset version: the published model, runs queued or training on it, runs trained on it."""

from __future__ import annotations

from core.serving.publishing import published_run
from core.training.runs import RunState, list_runs
from core.platform.workspace import Workspace


def dataset_version_users(workspace: Workspace, ref: str) -> list[str]:
    """In words, each thing that deleting ``ref`` would affect; empty when nothing uses it."""
    users = []
    published = published_run(workspace)
    if published is not None and published.dataset_ref == ref:
        users.append(f"the published model ({published.name}) was trained on it: the Admin page can no longer "
                     "compare what it predicts with its training data, nor merge feedback into it")
    runs = [r for r in list_runs(workspace) if r.dataset_ref == ref]
    active = [r for r in runs if not r.state.finished]
    if active:
        users.append(f"{len(active)} run(s) queued or training on it will fail: "
                     + ", ".join(r.name for r in active))
    finished = [r for r in runs if r.state is RunState.SUCCEEDED and (published is None or r.run_id != published.run_id)]
    if finished:
        users.append(f"{len(finished)} other finished run(s) were trained on it (they keep their models and scores)")
    return users
