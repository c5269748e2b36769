"""The validation report: everything wrong or risky in a labelled file, as data.

Each :class:`Finding` says what is wrong, how often, where (source line
numbers and example rows), how severe it is (an ``error`` blocks saving for
training, a ``warning`` or ``note`` does not) and which opt-in cleaning step
fixes it. Nothing here changes the data.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, Iterable

import pandas as pd

from core.platform.config import AppConfig
from core.data.ingest import LineProblem, RawTable
from core.models.pretrained import TokenCounter

EXCERPT_CHARS = 160
#: Above this many texts the truncation share is estimated on a seeded sample.
TOKEN_CHECK_SAMPLE = 20_000
#: At most this many affected line numbers are kept per finding.
MAX_LINES_KEPT = 1_000


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


class Fix(str, Enum):
    """The opt-in cleaning steps a finding can point to (see ``core.data.cleaning``)."""

    DROP_INVALID_ROWS = "drop_invalid_rows"
    NORMALISE_LABELS = "normalise_labels"
    DROP_DUPLICATES = "drop_duplicates"
    DROP_CONFLICTS = "drop_conflicts"
    HANDLE_RARE_CLASSES = "rare_classes"


@dataclass
class Finding:
    """One kind of problem, with how many rows it touches and where."""

    code: str
    severity: Severity
    title: str
    message: str
    count: int
    lines: list[int] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)
    fix: Fix | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        data["fix"] = self.fix.value if self.fix else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Finding":
        return cls(**{**data, "severity": Severity(data["severity"]),
                      "fix": Fix(data["fix"]) if data.get("fix") else None})


@dataclass
class ValidationReport:
    """All findings for one source and one choice of text and label fields."""

    source: str
    text_field: str
    label_field: str
    rows_read: int
    usable_rows: int
    label_counts: dict[str, int]
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.WARNING]

    @property
    def blocks_training(self) -> bool:
        return bool(self.errors)

    def get(self, code: str) -> Finding | None:
        """The finding with this code, if the data has that problem."""
        return next((f for f in self.findings if f.code == code), None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["findings"] = [f.to_dict() for f in self.findings]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ValidationReport":
        return cls(**{**data, "findings": [Finding.from_dict(f) for f in data["findings"]]})


#: The label field of texts that carry no labels (validated for their texts alone).
NO_LABEL_FIELD = ""
DROP_INVALID_WORDS = "Drop rows with missing or invalid text or label"
DROP_INVALID_TEXT_WORDS = "Drop rows with missing or invalid text"


def normalise_text(text: str) -> str:
    """The form under which two texts count as the same: case and whitespace ignored."""
    return " ".join(text.split()).casefold()


def label_key(label: str) -> str:
    """The form under which two label spellings count as the same class."""
    return label.strip().casefold()


def canonical_spellings(labels: Iterable[str]) -> dict[str, str]:
    """For each label key, the spelling variants merge into: the most common trimmed
    spelling, ties going to the lower-case one, then alphabetical order."""
    spellings: dict[str, Counter[str]] = defaultdict(Counter)
    for label in labels:
        spellings[label_key(label)][label.strip()] += 1
    return {key: min(counts, key=lambda s: (-counts[s], s != s.lower(), s)) for key, counts in spellings.items()}


def label_text(value: Any) -> str | None:
    """A label value as text: strings as they are, numbers written plainly, else None."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value == value:
        return str(int(value)) if value.is_integer() else str(value)
    return None


def select_fields(table: RawTable, text_field: str, label_field: str) -> pd.DataFrame:
    """The chosen columns as ``line``/``text``/``label``, values exactly as read; texts without labels
    (``label_field`` is :data:`NO_LABEL_FIELD`) have no ``label`` column."""
    columns = {
        "line": pd.Series(table.lines, dtype="int64"),
        "text": pd.Series([r.get(text_field) for r in table.records], dtype=object),
    }
    if label_field != NO_LABEL_FIELD:
        columns["label"] = pd.Series([r.get(label_field) for r in table.records], dtype=object)
    return pd.DataFrame(columns)


def _excerpt(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def describe_lines(lines: list[int], limit: int = 6) -> str:
    """'line 4', 'lines 4, 9 and 17' or 'lines 4, 9, … and 40 more'."""
    if not lines:
        return "no line"
    if len(lines) == 1:
        return f"line {lines[0]}"
    shown = ", ".join(map(str, lines[:limit]))
    if len(lines) <= limit:
        head, _, last = shown.rpartition(", ")
        return f"lines {head} and {last}"
    return f"lines {shown} and {len(lines) - limit} more"


class ReportBuilder:
    """Collects findings with consistent wording and example rows."""

    def __init__(self, examples_per_finding: int) -> None:
        self.findings: list[Finding] = []
        self.examples_per_finding = examples_per_finding

    def add(self, code: str, severity: Severity, title: str, message: str, rows: pd.DataFrame | None = None,
            *, count: int | None = None, fix: Fix | None = None, detail: Iterable[str] | None = None,
            lines: list[int] | None = None) -> None:
        examples: list[dict[str, Any]] = []
        if rows is not None:
            details = list(detail) if detail is not None else [None] * len(rows)
            for (_, row), note in list(zip(rows.iterrows(), details))[: self.examples_per_finding]:
                example = {"line": int(row["line"]), "text": _excerpt(row["text"])}
                if "label" in row:
                    example["label"] = _excerpt(row["label"])
                if note:
                    example["detail"] = note
                examples.append(example)
            lines = lines if lines is not None else [int(x) for x in rows["line"]]
        lines = sorted(lines or [])
        self.findings.append(Finding(
            code, severity, title, message, count if count is not None else len(lines),
            lines[:MAX_LINES_KEPT], examples, fix,
        ))


def line_problem_findings(problems: list[LineProblem], builder: ReportBuilder) -> None:
    skipped = [p for p in problems if p.skipped]
    if skipped:
        lines = [p.line for p in skipped]
        builder.add(
            "malformed_lines", Severity.WARNING, "Lines that could not be read",
            f"{len(skipped)} line(s) could not be read and were skipped ({describe_lines(lines)}); "
            f"the rest of the file loaded. First problem: line {skipped[0].line}: {skipped[0].message}. "
            "Fix these lines in the file and upload it again if you need them.",
            lines=lines,
        )
        builder.findings[-1].examples = [
            {"line": p.line, "text": p.excerpt, "label": "", "detail": p.message}
            for p in skipped[: builder.examples_per_finding]
        ]
    bad_bytes = [p for p in problems if p.kind == "encoding"]
    if bad_bytes:
        lines = [p.line for p in bad_bytes]
        builder.add(
            "encoding", Severity.WARNING, "Characters that are not UTF-8",
            f"{len(bad_bytes)} line(s) contain bytes that are not valid UTF-8 ({describe_lines(lines)}); "
            "they were read with '\ufffd' in place of those characters. "
            "Save the file as UTF-8 (e.g. 'CSV UTF-8' in Excel) to keep the original characters.",
            lines=lines,
        )
        builder.findings[-1].examples = [
            {"line": p.line, "text": p.excerpt, "label": "", "detail": p.message}
            for p in bad_bytes[: builder.examples_per_finding]
        ]
    formulas = [p for p in problems if p.kind == "formula"]
    if formulas:
        lines = [p.line for p in formulas if p.line]
        builder.add(
            "formula", Severity.WARNING, "Formulas without a saved result",
            f"{len(formulas)} cell(s) hold a formula whose result was never saved, so they read as empty "
            f"(rows {describe_lines(lines)}). Open the file in a spreadsheet program, save it, and upload it again.",
            lines=lines,
        )
        builder.findings[-1].examples = [
            {"line": p.line, "text": "", "label": "", "detail": p.message}
            for p in formulas[: builder.examples_per_finding]
        ]


def text_status(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "missing"
    if not isinstance(value, str):
        return "non_string"
    return "empty" if not value.strip() else "ok"


def label_status(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value) or (isinstance(value, str) and not value.strip()):
        return "missing"
    if isinstance(value, str):
        return "ok"
    return "number" if label_text(value) is not None else "non_string"


def min_examples_per_class(config: AppConfig) -> int:
    """A class needs one example in every split that is not empty."""
    return sum(1 for r in (config.split.train, config.split.validation, config.split.test) if r > 0)


def _row_findings(frame: pd.DataFrame, text_field: str, label_field: str, builder: ReportBuilder) -> pd.Series:
    """Findings about single rows; returns a mask of the rows usable for training."""
    texts = frame["text"].map(text_status)
    labelled = label_field != NO_LABEL_FIELD
    labels = frame["label"].map(label_status) if labelled else pd.Series("ok", index=frame.index)
    checks = [
        ("missing_text", texts == "missing", "Rows without text",
         f"have no '{text_field}' value"),
        ("empty_text", texts == "empty", "Rows with empty text",
         f"have an empty or whitespace-only '{text_field}'"),
        ("non_string_text", texts == "non_string", "Text that is not a string",
         f"have a '{text_field}' that is a number, list or object instead of text"),
        ("missing_label", labels == "missing", "Rows without a label",
         f"have no '{label_field}' value"),
        ("non_string_label", labels == "non_string", "Labels that are not text",
         f"have a '{label_field}' that is a list or object instead of a label name"),
    ]
    for code, mask, title, what in checks:
        if mask.any():
            rows = frame[mask]
            builder.add(
                code, Severity.ERROR, title,
                f"{len(rows)} row(s) {what} ({describe_lines(rows['line'].tolist())}). "
                f"They cannot be used: fix them in the file, or tick "
                f"'{DROP_INVALID_WORDS if labelled else DROP_INVALID_TEXT_WORDS}'.",
                rows, fix=Fix.DROP_INVALID_ROWS,
            )
    numeric = labels == "number"
    if numeric.any():
        rows = frame[numeric]
        builder.add(
            "numeric_labels", Severity.NOTE, "Labels written as numbers",
            f"{len(rows)} row(s) have numeric labels (e.g. {rows['label'].iloc[0]!r}); "
            "they are used as label names written as text ('1', '0', ...).",
            rows,
        )
    return (texts == "ok") & labels.isin(["ok", "number"])


def _label_findings(usable: pd.DataFrame, config: AppConfig, builder: ReportBuilder) -> None:
    canonical = canonical_spellings(usable["label_text"])
    raw_spellings: dict[str, set[str]] = defaultdict(set)
    for label in usable["label_text"]:
        raw_spellings[label_key(label)].add(label)
    variant_groups = {k: sorted(v) for k, v in raw_spellings.items() if len(v) > 1}
    if variant_groups:
        mask = usable["label_text"].map(lambda l: label_key(l) in variant_groups and l != canonical[label_key(l)])
        rows = usable[mask]
        groups = "; ".join(" / ".join(repr(s) for s in v) for v in variant_groups.values())
        builder.add(
            "label_variants", Severity.WARNING, "Labels that differ only by case or spaces",
            f"{len(variant_groups)} label(s) are spelled in several ways ({groups}); as they are, they "
            f"count as different classes. Tick 'Trim and merge label spellings' to merge each group into "
            f"its most common spelling ({len(rows)} row(s) would change).",
            rows, fix=Fix.NORMALISE_LABELS,
            detail=[f"would become {canonical[label_key(l)]!r}" for l in rows["label_text"]],
        )

    counts = Counter(usable["label_text"])
    if len({label_key(l) for l in counts}) < 2:
        only = ", ".join(repr(l) for l in counts) or "none"
        builder.add(
            "single_class", Severity.ERROR, "Fewer than two classes",
            f"The usable rows have only one class ({only}); a classifier needs at least two. "
            "Check that the label field is the right column.",
            count=len(usable),
        )
        return
    needed = min_examples_per_class(config)
    rare = {label: n for label, n in counts.items() if n < needed}
    if rare:
        rows = usable[usable["label_text"].isin(rare)]
        listed = ", ".join(f"{l!r} ({n})" for l, n in sorted(rare.items(), key=lambda kv: kv[1]))
        builder.add(
            "rare_classes", Severity.ERROR, "Classes too small to split",
            f"{len(rare)} class(es) have fewer than {needed} examples, so they cannot appear in the "
            f"train, validation and test splits: {listed}. Add examples, or choose to drop these "
            "classes or merge them into one 'other' class.",
            rows, fix=Fix.HANDLE_RARE_CLASSES,
        )
    largest, smallest = max(counts.values()), min(counts.values())
    if smallest and largest / smallest > config.data.imbalance_ratio:
        small = [l for l, n in counts.items() if largest / n > config.data.imbalance_ratio]
        builder.add(
            "imbalanced_classes", Severity.WARNING, "Very imbalanced classes",
            f"The largest class has {largest} examples, {largest / smallest:.0f}× the smallest ({smallest}). "
            f"Classes with more than {config.data.imbalance_ratio:g}× fewer examples than the largest: "
            f"{', '.join(f'{l!r} ({counts[l]})' for l in sorted(small, key=counts.get))}. "
            "Models will favour the large classes; class weighting helps, more examples help more.",
            count=sum(counts[l] for l in small),
        )


#: When more than this share of the texts that repeat carry different labels (and at least DOUBTFUL_MIN_GROUPS
#: do), the chosen label field is probably something else (a channel, a date, an agent): said so, not blamed on
#: the file.
DOUBTFUL_SHARE, DOUBTFUL_MIN_GROUPS = 0.5, 3


def _duplicate_findings(usable: pd.DataFrame, builder: ReportBuilder, label_field: str) -> None:
    norm = usable["text"].map(normalise_text)
    keyed = usable.assign(norm=norm, label_k=usable["label_text"].map(label_key))
    label_sets = keyed.groupby("norm")["label_k"].nunique()
    conflicting = keyed[keyed["norm"].map(label_sets) > 1]
    repeated = int((keyed["norm"].value_counts() > 1).sum())
    groups = conflicting["norm"].nunique()
    if groups >= DOUBTFUL_MIN_GROUPS and groups > DOUBTFUL_SHARE * repeated:
        builder.add(
            "label_field_doubtful", Severity.WARNING, f"'{label_field}' is probably not the label",
            f"{groups} of the {repeated} texts that appear more than once have different values in "
            f"'{label_field}' — more than half of them. A label rarely does that; a channel, a date or an agent "
            f"does. Check which field holds the topic under 'Which field holds the text, which the label?'. If "
            f"'{label_field}' is the label after all, these rows disagree "
            f"({describe_lines(conflicting['line'].tolist())}).",
            conflicting.sort_values(["norm", "line"]), fix=Fix.DROP_CONFLICTS,
        )
    elif len(conflicting):
        builder.add(
            "conflicting_labels", Severity.WARNING, "Same text, different labels",
            f"{groups} text(s) appear with different labels ({len(conflicting)} rows, "
            f"{describe_lines(conflicting['line'].tolist())}). The model cannot learn both; "
            "correct the labels in the file, or tick 'Drop texts with conflicting labels'.",
            conflicting.sort_values(["norm", "line"]), fix=Fix.DROP_CONFLICTS,
        )
    consistent = keyed[keyed["norm"].map(label_sets) == 1]
    exact = consistent.duplicated(subset=["text"], keep="first")
    near = consistent.duplicated(subset=["norm"], keep="first") & ~exact
    for code, mask, title, how in (
        ("exact_duplicates", exact, "Exact duplicates", "repeat an earlier row exactly"),
        ("near_duplicates", near, "Duplicates up to case and spacing",
         "repeat an earlier row except for upper/lower case or spacing"),
    ):
        if mask.any():
            rows = consistent[mask]
            builder.add(
                code, Severity.WARNING, title,
                f"{len(rows)} row(s) {how} ({describe_lines(rows['line'].tolist())}). Duplicates are kept "
                "in the same split (no leakage) but over-weight those texts; tick 'Drop duplicates' "
                "to keep only the first copy.",
                rows, fix=Fix.DROP_DUPLICATES,
            )


def truncation_finding(usable: pd.DataFrame, config: AppConfig, count_tokens: TokenCounter,
                        builder: ReportBuilder) -> None:
    texts = usable
    sampled = len(usable) > TOKEN_CHECK_SAMPLE
    if sampled:
        texts = usable.iloc[sorted(random.Random(0).sample(range(len(usable)), TOKEN_CHECK_SAMPLE))]
    lengths = pd.Series(count_tokens(texts["text"].tolist()), index=texts.index)
    limit = config.model.max_length
    long_mask = lengths > limit
    if not long_mask.any():
        return
    share = long_mask.mean()
    rows = texts[long_mask].assign(tokens=lengths[long_mask]).sort_values("tokens", ascending=False)
    severity = Severity.WARNING if share > config.data.truncation_warning_share else Severity.NOTE
    estimate = f" (estimated on {TOKEN_CHECK_SAMPLE:,} sampled rows)" if sampled else ""
    builder.add(
        "truncated_texts", severity, "Texts longer than the model reads",
        f"{share:.1%} of the texts{estimate} are longer than {limit} tokens (the longest has "
        f"{int(rows['tokens'].iloc[0])}); the transformer reads only their first {limit} tokens. "
        "That is usually fine for feedback; raise model.max_length if the end of long texts matters.",
        rows, count=int(long_mask.sum()),
        detail=[f"{int(n)} tokens" for n in rows["tokens"]],
    )


#: Shares of the texts in languages the model was not trained on from which the report notes them, and warns.
LANGUAGE_NOTE_SHARE, LANGUAGE_WARNING_SHARE = 0.01, 0.10


def language_finding(usable: pd.DataFrame, config: AppConfig, builder: ReportBuilder) -> None:
    """Texts in languages the configured model does not read (core.data.languages), said with the languages."""
    from core.data.languages import language_mix, language_name

    covered = {code.strip() for code in config.model.languages.split(",") if code.strip()}
    if "any" in covered:
        return
    mix = language_mix(usable["text"].astype(str).tolist(), covered)
    share = mix.share_outside()
    if share < LANGUAGE_NOTE_SHARE or len(mix.outside) < 3:
        return
    others = ", ".join(f"{language_name(code)} ({n:,})" for code, n in mix.counts.items() if code not in covered)
    model_reads = " and ".join(language_name(code) for code in sorted(covered))
    rows = usable.iloc[mix.outside]
    builder.add(
        "other_languages", Severity.WARNING if share >= LANGUAGE_WARNING_SHARE else Severity.NOTE,
        "Texts in languages the model was not trained on",
        f"{share:.0%} of the texts whose language could be told ({len(mix.outside):,} of {mix.checked:,}) are in "
        f"{others}; the model ({config.model.name}) was trained on {model_reads}, so it groups and classifies them "
        f"poorly. Keep one language per dataset, or use a multilingual model (settings: model.name, and "
        f"model.languages = \"any\").", rows, count=len(mix.outside))


def validate_examples(frame: pd.DataFrame, *, source: str, text_field: str, label_field: str,
                      config: AppConfig, count_tokens: TokenCounter | None = None,
                      columns: list[str] | None = None, problems: list[LineProblem] = ()) -> ValidationReport:
    """Build the report for ``line``/``text``/``label`` rows (see :func:`select_fields`)."""
    builder = ReportBuilder(config.data.examples_per_finding)
    line_problem_findings(list(problems), builder)
    labelled = label_field != NO_LABEL_FIELD
    missing = [f for f in (text_field, label_field) if columns is not None and f not in columns
               and (f or labelled)]
    if text_field == label_field:
        builder.add("same_field", Severity.ERROR, "Text and label are the same field",
                    f"'{text_field}' was chosen as both the text and the label; pick two different fields.",
                    count=len(frame))
    for name in missing:
        builder.add("missing_column", Severity.ERROR, f"No field '{name}'",
                    f"No row has a field called '{name}'. Fields found: {', '.join(columns or [])}. "
                    "Choose another field in the column mapping.", count=len(frame))
    usable_mask = _row_findings(frame, text_field, label_field, builder) if not missing else \
        pd.Series(False, index=frame.index)
    usable = frame[usable_mask].assign(
        label_text=frame.loc[usable_mask, "label"].map(label_text) if labelled else "")
    if not missing and usable.empty:
        builder.add("no_usable_rows", Severity.ERROR, "No usable rows",
                    f"No row has {'both a text and a label' if labelled else 'a text'}; check the column mapping.",
                    count=0)
    if not usable.empty:
        if labelled:
            _label_findings(usable, config, builder)
        _duplicate_findings(usable, builder, label_field)
        if count_tokens is not None:
            truncation_finding(usable, config, count_tokens, builder)
        language_finding(usable, config, builder)
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.NOTE: 2}
    builder.findings.sort(key=lambda f: order[f.severity])
    return ValidationReport(
        source=source, text_field=text_field, label_field=label_field, rows_read=len(frame),
        usable_rows=len(usable),
        label_counts=dict(Counter(usable["label_text"]).most_common()) if labelled else {},
        findings=builder.findings,
    )

