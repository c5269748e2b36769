"""From topics to a label set: the names a person gave the topics of a version's texts saved as its labels.

Each topic gets a name (two topics given one name are merged; a topic given none is dropped, its texts left
unlabelled). A text takes its topic's name as its label, and keeps where that came from: ``label_source``
("topic", or "nearest topic" for a text the grouping left out that the person asked to place), the ``topic``
(its number as the page showed it, from 1) and its ``membership`` (how firmly it belongs, 0-1; 0 for a placed
text). Texts left without a label stay in the version, in no split, for people to label later. The labelled
texts are split into train, validation and test by label, as a labelled upload is; the version's meta says how
many labels came from topics and how many texts are left unlabelled, so nothing is guessed silently.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import pandas as pd

from core.data.dataset_versions import (
    UNLABELLED_SPLIT, DatasetError, DatasetVersion, build_label_map, partly_labelled_meta, save_next_version,
)
from core.data.split import SplitPlan, stratified_split
from core.data.validate import ValidationReport
from core.platform.workspace import Workspace

FROM_TOPIC, FROM_NEAREST_TOPIC = "topic", "nearest topic"


@dataclass(frozen=True)
class TopicLabels:
    """What the person decided: each topic's label name ("" drops it), and whether left-out texts go to their
    nearest topic (``nearest``: that topic per text, None for texts in a topic)."""

    names: dict[int, str]
    nearest: Sequence[int | None] | None = None

    def label_of(self, topic: int | None) -> str | None:
        name = self.names.get(topic, "") if topic is not None else ""
        return " ".join(name.split()) or None


def _check(decided: TopicLabels, topics: int) -> None:
    unknown = sorted(set(decided.names) - set(range(topics)))
    if unknown:
        raise DatasetError(f"there is no topic {', '.join(str(t + 1) for t in unknown)} (the grouping found {topics})")
    kept = {decided.label_of(t) for t in decided.names} - {None}
    if len(kept) < 2:
        raise DatasetError(f"{len(kept)} label name(s) given: a label set needs at least two; name the topics to "
                           f"keep (give two topics one name to merge them)")


def topic_label_rows(version: DatasetVersion, assignment: Sequence[int | None], membership: Sequence[float],
                     decided: TopicLabels) -> pd.DataFrame:
    """Every text of ``version`` with its label from the topics (None: left unlabelled) and where it came from."""
    frame = version.frame()
    if len(frame) != len(assignment):
        raise DatasetError(f"the topics were found for {len(assignment):,} texts, {version.ref} has {len(frame):,}")
    nearest = decided.nearest or [None] * len(frame)
    labels, sources, topics, memberships = [], [], [], []
    for topic, firmness, placed in zip(assignment, membership, nearest):
        chosen, source = (topic, FROM_TOPIC) if topic is not None else (placed, FROM_NEAREST_TOPIC)
        label = decided.label_of(chosen)
        labels.append(label)
        sources.append(source if label else None)
        topics.append(chosen + 1 if label else None)
        memberships.append(round(float(firmness), 4) if label and topic is not None else (0.0 if label else None))
    return pd.DataFrame({"text": frame["text"].astype(str), "label": labels, "label_source": sources,
                         "topic": topics, "membership": memberships, "line": frame["line"].astype(int)})


def save_topic_labels(workspace: Workspace, name: str, version: DatasetVersion, assignment: Sequence[int | None],
                      membership: Sequence[float], decided: TopicLabels, plan: SplitPlan, *, created_by: str,
                      topics_job: str) -> DatasetVersion:
    """Save the texts of ``version`` labelled by their topics' names as the next version of ``name``."""
    _check(decided, len({t for t in assignment if t is not None}))
    rows = topic_label_rows(version, assignment, membership, decided)
    labelled = rows["label"].notna()
    kept = rows[labelled]
    too_small = {label: n for label, n in Counter(kept["label"]).items() if n < 3}
    if too_small:
        raise DatasetError("too few texts to split: " + ", ".join(f"'{l}' has {n}" for l, n in too_small.items())
                           + "; merge them into another topic or drop them")
    texts, labels = kept["text"].tolist(), kept["label"].tolist()
    assignment_of = stratified_split(texts, labels, plan)
    label_map = build_label_map(labels)
    ids = {label: i for i, label in enumerate(label_map)}
    split = pd.Series(UNLABELLED_SPLIT, index=rows.index, dtype=object)
    split[labelled] = assignment_of
    saved = rows.assign(label_id=[ids.get(label, -1) if label else -1 for label in rows["label"]], split=split)
    saved = saved[["text", "label", "label_id", "split", "line", "label_source", "topic", "membership"]]
    report = ValidationReport.from_dict({**version.report.to_dict(), "label_field": "topics",
                                         "usable_rows": len(kept), "label_counts": dict(Counter(labels))})
    described: dict[str, Any] = {
        "created_by": created_by, "source": version.ref, "text_field": version.meta.get("text_field"),
        "label_field": None, "labels": label_map, **partly_labelled_meta(saved),
        "from_topics": {"job": topics_job, "names": {str(t + 1): decided.label_of(t) for t in sorted(decided.names)},
                        "placed_in_nearest_topic": int((kept["label_source"] == FROM_NEAREST_TOPIC).sum())},
        "split_plan": asdict(plan),
    }
    return save_next_version(workspace, name, saved, label_map, report, described)
