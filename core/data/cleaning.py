"""Opt-in cleaning steps, each one the answer to a validation finding.

Nothing is cleaned unless asked. Every step reports what it did (rows
removed, labels changed) so the user can see the effect before saving.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import pandas as pd

from core.data.validate import canonical_spellings, label_key, label_status, label_text, normalise_text, text_status


class RareClassAction(str, Enum):
    KEEP = "keep"
    DROP = "drop"
    MERGE = "merge"


@dataclass
class CleaningOptions:
    """Which fixes to apply; all off by default, so data never changes silently."""

    drop_invalid_rows: bool = False
    normalise_labels: bool = False
    drop_conflicts: bool = False
    drop_duplicates: bool = False
    rare_classes: RareClassAction = RareClassAction.KEEP
    #: Minimum class size below which ``rare_classes`` applies.
    min_class_size: int = 3
    #: Name of the class rare classes are merged into.
    merged_class_name: str = "other"
    #: What a person decided about suspicious labels (core.data.label_issues), applied last.
    label_decisions: tuple["LabelDecision", ...] = ()


@dataclass(frozen=True)
class LabelDecision:
    """A person's decision about one row's label, by its line in the source file: relabel it, or drop it."""

    line: int
    action: str  # "relabel" | "drop"
    label: str | None = None

    def __post_init__(self) -> None:
        if self.action not in ("relabel", "drop") or (self.action == "relabel" and not self.label):
            raise ValueError(f"line {self.line}: a decision is 'drop', or 'relabel' with the new label")


@dataclass
class CleaningStep:
    """What one step did."""

    name: str
    description: str
    rows_removed: int = 0
    labels_changed: int = 0
    #: Row by row, where a step changes chosen rows: {"line", "label", "to"} ("to" is None for a dropped row).
    changes: list[dict] = field(default_factory=list)


@dataclass
class CleaningResult:
    frame: pd.DataFrame
    steps: list[CleaningStep] = field(default_factory=list)

    @property
    def rows_removed(self) -> int:
        return sum(step.rows_removed for step in self.steps)


def _drop_invalid(frame: pd.DataFrame) -> tuple[pd.DataFrame, CleaningStep]:
    ok = frame["text"].map(text_status) == "ok"
    if "label" in frame:  # texts without labels have no label column
        ok &= frame["label"].map(label_status).isin(["ok", "number"])
    return frame[ok], CleaningStep("drop_invalid_rows", "Dropped rows with missing or invalid text"
                                   + (" or label" if "label" in frame else ""),
                                   rows_removed=int((~ok).sum()))


def _normalise_labels(frame: pd.DataFrame) -> tuple[pd.DataFrame, CleaningStep]:
    """Trim labels and map every case/space variant to its most common trimmed spelling."""
    texts = frame["label"].map(lambda v: label_text(v) if label_text(v) is not None else v)
    canonical = canonical_spellings(v for v in texts if isinstance(v, str))
    new = texts.map(lambda v: canonical[label_key(v)] if isinstance(v, str) else v)
    changed = sum(1 for before, after in zip(frame["label"], new) if before != after)
    return frame.assign(label=new), CleaningStep(
        "normalise_labels", "Trimmed labels and merged spellings that differ only by case or spaces",
        labels_changed=changed)


def _drop_conflicts(frame: pd.DataFrame) -> tuple[pd.DataFrame, CleaningStep]:
    norm = frame["text"].map(lambda t: normalise_text(t) if isinstance(t, str) else None)
    labels = frame["label"].map(lambda v: label_key(label_text(v) or ""))
    conflict_keys = pd.DataFrame({"norm": norm, "label": labels}).groupby("norm")["label"].nunique()
    conflicting = norm.map(conflict_keys).fillna(1) > 1
    return frame[~conflicting], CleaningStep(
        "drop_conflicts", "Dropped every copy of texts that carry conflicting labels",
        rows_removed=int(conflicting.sum()))


def _drop_duplicates(frame: pd.DataFrame) -> tuple[pd.DataFrame, CleaningStep]:
    norm = frame["text"].map(lambda t: normalise_text(t) if isinstance(t, str) else id(t))
    labels = frame["label"].map(lambda v: label_key(label_text(v) or "")) if "label" in frame else ""
    duplicate = pd.DataFrame({"norm": norm, "label": labels}).duplicated(keep="first")
    return frame[~duplicate], CleaningStep(
        "drop_duplicates", "Dropped repeated texts (same text up to case and spacing, same label), "
        "keeping the first copy", rows_removed=int(duplicate.sum()))


def _handle_rare(frame: pd.DataFrame, options: CleaningOptions) -> tuple[pd.DataFrame, CleaningStep]:
    labels = frame["label"].map(label_text)
    counts = labels.value_counts()
    rare = set(counts[counts < options.min_class_size].index)
    mask = labels.isin(rare)
    if options.rare_classes is RareClassAction.DROP:
        return frame[~mask], CleaningStep(
            "drop_rare_classes", f"Dropped classes with fewer than {options.min_class_size} examples: "
            f"{', '.join(sorted(rare)) or 'none'}", rows_removed=int(mask.sum()))
    merged = frame.assign(label=frame["label"].where(~mask, options.merged_class_name))
    return merged, CleaningStep(
        "merge_rare_classes", f"Merged classes with fewer than {options.min_class_size} examples "
        f"({', '.join(sorted(rare)) or 'none'}) into '{options.merged_class_name}'",
        labels_changed=int(mask.sum()))


def _apply_label_decisions(frame: pd.DataFrame, decisions: tuple[LabelDecision, ...]) -> tuple[pd.DataFrame, CleaningStep]:
    """Relabel or drop the rows a person chose after the suspicious-label check; every change is listed."""
    by_line = {decision.line: decision for decision in decisions}
    chosen = frame["line"].map(lambda line: by_line.get(int(line)) if pd.notna(line) else None)
    changes = [{"line": int(line), "label": label_text(label), "to": decision.label if decision.action == "relabel" else None}
               for line, label, decision in zip(frame["line"], frame["label"], chosen) if decision is not None]
    relabel = {line: d.label for line, d in by_line.items() if d.action == "relabel"}
    dropped = chosen.map(lambda d: d is not None and d.action == "drop")
    kept = frame[~dropped]
    kept = kept.assign(label=[relabel.get(int(line), label) for line, label in zip(kept["line"], kept["label"])])
    relabelled = sum(1 for change in changes if change["to"] is not None)
    return kept, CleaningStep(
        "review_labels", f"Reviewed suspicious labels: relabelled {relabelled} row(s), dropped "
        f"{int(dropped.sum())}", rows_removed=int(dropped.sum()), labels_changed=relabelled, changes=changes)


def apply_cleaning(frame: pd.DataFrame, options: CleaningOptions) -> CleaningResult:
    """Apply the chosen steps in a fixed, sensible order to ``line``/``text``/``label`` rows."""
    result = CleaningResult(frame.copy())
    labelled = "label" in frame  # texts alone: only the steps about texts apply
    steps = [
        (options.drop_invalid_rows, _drop_invalid),
        (labelled and options.normalise_labels, _normalise_labels),
        (labelled and options.drop_conflicts, _drop_conflicts),
        (options.drop_duplicates, _drop_duplicates),
        (labelled and options.rare_classes is not RareClassAction.KEEP, lambda f: _handle_rare(f, options)),
        (labelled and bool(options.label_decisions), lambda f: _apply_label_decisions(f, options.label_decisions)),
    ]
    for enabled, step in steps:
        if enabled:
            result.frame, done = step(result.frame)
            result.steps.append(done)
    result.frame = result.frame.reset_index(drop=True)
    return result
