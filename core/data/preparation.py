"""From a read file to data ready to save: map fields, validate, clean, validate again.

The Data page and the command line both go through :func:`prepare`, so a file
is judged the same way wherever it comes from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import pandas as pd

from core.accounts.auth import Actor
from core.data.cleaning import CleaningOptions, CleaningResult, apply_cleaning
from core.platform.config import AppConfig
from core.data.dataset_versions import DatasetError, DatasetVersion, save_dataset_version, save_unlabelled_rows
from core.data.ingest import RawTable
from core.models.pretrained import TokenCounter
from core.data.split import SplitPlan, split_counts, stratified_split
from core.data.validate import NO_LABEL_FIELD, ValidationReport, label_text, min_examples_per_class, select_fields, validate_examples
from core.platform.workspace import Workspace


@dataclass
class Preparation:
    """A file with chosen fields, its report before and after the chosen cleaning."""

    table: RawTable
    text_field: str
    label_field: str
    raw_report: ValidationReport
    cleaning: CleaningResult
    report: ValidationReport

    @property
    def labelled(self) -> bool:
        """False for texts alone (:func:`prepare_texts`)."""
        return self.label_field != NO_LABEL_FIELD

    @property
    def ready(self) -> bool:
        """True when nothing blocks saving the cleaned data for training."""
        return not self.report.blocks_training

    def training_frame(self) -> pd.DataFrame:
        """The cleaned rows with text and label as strings."""
        frame = self.cleaning.frame
        return pd.DataFrame({"line": frame["line"], "text": frame["text"].astype(str),
                             "label": frame["label"].map(label_text) if self.labelled else None})

    def split_preview(self, plan: SplitPlan) -> dict[str, dict[str, int]]:
        """Rows per label per split that saving with ``plan`` will produce."""
        frame = self.training_frame()
        labels = frame["label"].tolist()
        return split_counts(labels, stratified_split(frame["text"].tolist(), labels, plan))


def prepare(table: RawTable, text_field: str, label_field: str, options: CleaningOptions,
            config: AppConfig, count_tokens: TokenCounter | None = None) -> Preparation:
    """Validate the raw rows, apply the chosen cleaning, and validate the result."""
    options = replace(options, min_class_size=min_examples_per_class(config))
    common = dict(source=table.source, text_field=text_field, label_field=label_field, config=config,
                  count_tokens=count_tokens, columns=table.columns)
    raw = select_fields(table, text_field, label_field)
    raw_report = validate_examples(raw, problems=table.problems, **common)
    if text_field not in table.columns or (label_field != NO_LABEL_FIELD and label_field not in table.columns):
        return Preparation(table, text_field, label_field, raw_report, CleaningResult(raw), raw_report)
    cleaning = apply_cleaning(raw, options)
    report = validate_examples(cleaning.frame, problems=table.problems, **common)
    return Preparation(table, text_field, label_field, raw_report, cleaning, report)


def prepare_texts(table: RawTable, text_field: str, options: CleaningOptions, config: AppConfig,
                  count_tokens: TokenCounter | None = None) -> Preparation:
    """Texts without labels: validated and cleaned for their texts alone (only the options that concern texts:
    dropping invalid rows and duplicates)."""
    options = CleaningOptions(drop_invalid_rows=options.drop_invalid_rows, drop_duplicates=options.drop_duplicates)
    return prepare(table, text_field, NO_LABEL_FIELD, options, config, count_tokens)


def save_unlabelled(workspace: Workspace, name: str, prepared: Preparation, actor: Actor) -> DatasetVersion:
    """Save the cleaned texts of a ready :func:`prepare_texts` as a new version without labels."""
    return save_unlabelled_rows(workspace, name, prepared.training_frame(), prepared.report,
                                source=prepared.table.source, created_by=actor.username,
                                cleaning_steps=[asdict(step) for step in prepared.cleaning.steps])


def save_preparation(workspace: Workspace, name: str, prepared: Preparation, plan: SplitPlan, actor: Actor,
                     test: Preparation | None = None) -> DatasetVersion:
    """Save the cleaned rows of a ready preparation as a new dataset version.

    ``test``, a prepared separate test file, becomes the test split as it is.
    """
    if test is not None and not test.ready:
        raise DatasetError(f"the test file {test.table.source} has blocking problems: "
                           + "; ".join(f.title for f in test.report.errors))
    return save_dataset_version(
        workspace, name, prepared.training_frame(), prepared.report, plan, source=prepared.table.source,
        cleaning_steps=[asdict(step) for step in prepared.cleaning.steps], created_by=actor.username,
        test_frame=test.training_frame() if test is not None else None,
    )
