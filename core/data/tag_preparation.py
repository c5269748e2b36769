"""From a read file to multi-label data ready to save: the text field and the tags read, checked, and the rows
that cannot be used left out with a finding that names them.

The multi-label counterpart of :mod:`core.data.preparation`. Rows without text are left out (listed in the
report); rows without a tag are left out too unless the analyst keeps them as "none of these" (a text may rightly
have no tag). The report holds the file's line problems, the multi-label findings (:mod:`core.data.tag_checks`),
texts longer than the model reads, and what blocks saving: tags that cannot be read as asked, fewer than two
tags, no usable row.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import pandas as pd

from core.accounts.auth import Actor
from core.data.dataset_versions import DatasetError, DatasetVersion, save_tagged_rows
from core.data.ingest import RawTable
from core.data.multilabel_split import multilabel_split, tag_split_counts
from core.data.split import SplitPlan
from core.data.tag_checks import tag_findings, tag_key
from core.data.tags import TagError, TagFormat, read_tags
from core.data.validate import (
    ReportBuilder, Severity, ValidationReport, describe_lines, line_problem_findings, text_status,
    truncation_finding,
)
from core.models.pretrained import TokenCounter
from core.platform.config import AppConfig
from core.platform.workspace import Workspace


@dataclass
class TagPreparation:
    """A file with its text field and tags chosen: the usable rows (``line``/``text``/``tags``) and the report."""

    table: RawTable
    text_field: str
    tag_format: TagFormat
    keep_untagged: bool
    rows: pd.DataFrame
    report: ValidationReport
    merge_spellings: bool = False
    #: What a person decided on suspicious tags: how many texts took the suggested tags, how many were dropped.
    reviewed: dict[str, int] | None = None

    def with_decisions(self, relabel: list, drop: list[int]) -> "TagPreparation":
        """The same preparation with suspicious-tag decisions applied (core.data.tag_issues), said in
        ``reviewed`` and kept in the saved version."""
        from dataclasses import replace

        from core.data.tag_issues import apply_tag_decisions

        return replace(self, rows=apply_tag_decisions(self.rows, relabel, drop),
                       reviewed={"tags_changed": len(relabel), "rows_removed": len(drop)})

    @property
    def ready(self) -> bool:
        """True when nothing blocks saving the rows for training."""
        return not self.report.blocks_training

    def split_preview(self, plan: SplitPlan) -> dict[str, dict[str, int]]:
        """Positives per tag per split that saving with ``plan`` will produce."""
        tags = self.rows["tags"].tolist()
        return tag_split_counts(tags, multilabel_split(self.rows["text"].tolist(), tags, plan))


def _blocking(builder: ReportBuilder, code: str, title: str, message: str, count: int) -> None:
    builder.add(code, Severity.ERROR, title, message, count=count)


def merged_spellings(tags: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Each tag in its most common spelling among those equal but for case, spaces, hyphens and underscores."""
    counts = Counter(tag for row in tags for tag in row)
    best: dict[str, str] = {}
    for tag in sorted(counts, key=lambda t: (-counts[t], t)):
        best.setdefault(tag_key(tag), tag)
    return [tuple(dict.fromkeys(best[tag_key(tag)] for tag in row)) for row in tags]


def prepare_tags(table: RawTable, text_field: str, tag_format: TagFormat, config: AppConfig, *,
                 keep_untagged: bool = False, merge_spellings: bool = False,
                 count_tokens: TokenCounter | None = None) -> TagPreparation:
    """Read and check the tags (with ``merge_spellings``, each tag in its most common spelling first), leave out
    the rows that cannot be used, and report it all."""
    builder = ReportBuilder(config.data.examples_per_finding)
    line_problem_findings(list(table.problems), builder)
    empty = pd.DataFrame({"line": pd.Series(dtype="int64"), "text": pd.Series(dtype=object),
                          "tags": pd.Series(dtype=object)})
    rows, tags = empty, []
    if text_field not in table.columns:
        _blocking(builder, "missing_column", f"No field '{text_field}'",
                  f"No row has a field called '{text_field}'. Fields found: {', '.join(table.columns)}.",
                  len(table.records))
    else:
        try:
            tags = read_tags(table, tag_format, config.data.max_tags)
            if merge_spellings:
                tags = merged_spellings(tags)
        except TagError as exc:
            _blocking(builder, "tags_unreadable", "The tags cannot be read as asked", f"{exc}.", len(table.records))
    if tags:
        texts = [record.get(text_field) for record in table.records]
        status = [text_status(text) for text in texts]
        no_text = [line for line, state in zip(table.lines, status) if state != "ok"]
        if no_text:
            builder.add("no_text", Severity.WARNING, "Rows without text left out",
                        f"{len(no_text):,} row(s) have no text in '{text_field}' (empty, missing or not text: "
                        f"{describe_lines(no_text)}); they are left out.", lines=no_text)
        rows = pd.DataFrame({"line": table.lines, "text": texts, "tags": tags})[[s == "ok" for s in status]]
        findings = tag_findings(rows["line"].tolist(), rows["text"].tolist(), rows["tags"].tolist(), config)
        for finding in findings:
            if finding.code == "untagged" and not keep_untagged:
                finding.message += " They are left out; tick 'Keep texts without a tag' (--keep-untagged on the command line) to keep them."
            elif finding.code == "untagged":
                finding.severity, finding.message = Severity.NOTE, (
                    f"{finding.count:,} row(s) carry no tag and are kept: a model learns that a text may have "
                    f"none of the tags ({describe_lines(finding.lines)}).")
        builder.findings.extend(findings)
        if not keep_untagged:
            rows = rows[rows["tags"].map(bool)]
        rows = rows.reset_index(drop=True)
        distinct = {tag for row in rows["tags"] for tag in row}
        if rows.empty:
            _blocking(builder, "no_usable_rows", "No usable rows",
                      "No row has both a text and a tag; check the text field and the tags.", 0)
        elif len(distinct) < 2:
            _blocking(builder, "single_class", "Fewer than two tags",
                      f"The usable rows carry {len(distinct)} tag(s) ({', '.join(sorted(distinct)) or 'none'}); "
                      "a tagger needs at least two. Check the tag field or columns.", len(rows))
        elif count_tokens is not None:
            truncation_finding(rows.assign(label=rows["tags"].map("; ".join)), config, count_tokens, builder)
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.NOTE: 2}
    builder.findings.sort(key=lambda f: order[f.severity])
    counts = Counter(tag for row in rows["tags"] for tag in row)
    report = ValidationReport(source=table.source, text_field=text_field, label_field=tag_format.describe(),
                              rows_read=len(table.records), usable_rows=len(rows),
                              label_counts=dict(counts.most_common()), findings=builder.findings)
    return TagPreparation(table, text_field, tag_format, keep_untagged, rows, report, merge_spellings)


def save_tag_preparation(workspace: Workspace, name: str, prepared: TagPreparation, plan: SplitPlan, actor: Actor,
                         test: TagPreparation | None = None) -> DatasetVersion:
    """Split (iterative stratification) and save a ready multi-label preparation as a new dataset version;
    ``test``, a prepared separate test file of the same shape, becomes the test split as it is."""
    if test is not None and not test.ready:
        raise DatasetError(f"the test file {test.table.source} has blocking problems: "
                           + "; ".join(f.title for f in test.report.errors))
    rows = prepared.rows
    if test is not None:
        kept = plan.train + plan.validation
        plan = SplitPlan(plan.train / kept, plan.validation / kept, 0.0, plan.seed)
    rows = rows.assign(split=multilabel_split(rows["text"].tolist(), rows["tags"].tolist(), plan))
    if test is not None:
        unknown = {tag for row in test.rows["tags"] for tag in row} - {tag for row in rows["tags"] for tag in row}
        if unknown:
            raise DatasetError(f"the test file has tags the training data lacks: {', '.join(sorted(unknown))}")
        rows = pd.concat([rows, test.rows.assign(split="test")], ignore_index=True)
    return save_tagged_rows(workspace, name, rows, prepared.report, created_by=actor.username,
                            source=prepared.table.source, split_plan=asdict(plan), tag_format=asdict(prepared.tag_format),
                            keep_untagged=prepared.keep_untagged, merged_spellings=prepared.merge_spellings,
                            tag_review=prepared.reviewed)
