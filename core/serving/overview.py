"""The state of a workspace at a glance, for the Home page."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.accounts.auth import Actor, Permission
from core.data.dataset_versions import DatasetVersion, list_dataset_versions
from core.serving.publishing import Publication, current_publication
from core.training.runs import RunRecord, RunState, list_runs
from core.platform.workspace import Workspace


@dataclass
class WorkspaceSummary:
    datasets: list[DatasetVersion] = field(default_factory=list)
    runs: list[RunRecord] = field(default_factory=list)
    published: Publication | None = None

    @property
    def dataset_names(self) -> list[str]:
        return sorted({v.name for v in self.datasets})

    @property
    def latest_dataset(self) -> DatasetVersion | None:
        return max(self.datasets, key=lambda v: v.meta["created_at"], default=None)

    @property
    def finished_runs(self) -> list[RunRecord]:
        return [r for r in self.runs if r.state is RunState.SUCCEEDED]

    @property
    def active_runs(self) -> list[RunRecord]:
        return [r for r in self.runs if r.state in (RunState.QUEUED, RunState.RUNNING)]

    def next_step(self, actor: Actor | None) -> tuple[str, str] | None:
        """Where the journey continues for this person: (page, link text), or None if nowhere they may go."""
        steps = [
            (not self.datasets, "pages/views/data.py", "Next: prepare a dataset on the Data page", Permission.MANAGE_DATA),
            (not self.finished_runs, "pages/views/train.py", "Next: train models on the Train page", Permission.TRAIN),
            (self.published is None, "pages/views/evaluate.py", "Next: compare runs and publish one", Permission.EVALUATE),
            (True, "pages/views/classify.py", "Classify new feedback", Permission.CLASSIFY),
        ]
        return next(((page, label) for needed, page, label, permission in steps
                     if needed and actor is not None and actor.can(permission)), None)

    @property
    def published_run(self) -> RunRecord | None:
        if self.published is None:
            return None
        return next((r for r in self.runs if r.run_id == self.published.run_id), None)


def summarise_workspace(workspace: Workspace) -> WorkspaceSummary:
    """Collect what the Home page shows; cheap enough to run on every visit."""
    return WorkspaceSummary(datasets=list_dataset_versions(workspace), runs=list_runs(workspace),
                            published=current_publication(workspace))
