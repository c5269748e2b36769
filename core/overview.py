"""The state of a workspace at a glance, for the Home page."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.dataset_versions import DatasetVersion, list_dataset_versions
from core.workspace import Workspace


@dataclass
class WorkspaceSummary:
    datasets: list[DatasetVersion] = field(default_factory=list)

    @property
    def dataset_names(self) -> list[str]:
        return sorted({v.name for v in self.datasets})

    @property
    def latest_dataset(self) -> DatasetVersion | None:
        return max(self.datasets, key=lambda v: v.meta["created_at"], default=None)


def summarise_workspace(workspace: Workspace) -> WorkspaceSummary:
    """Collect what the Home page shows; cheap enough to run on every visit."""
    return WorkspaceSummary(datasets=list_dataset_versions(workspace))
