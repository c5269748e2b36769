"""Data page: upload, check, clean, split and save labelled feedback."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Callable, TypeVar

import pandas as pd
import streamlit as st

from core.presentation import charts
from core.presentation.display import when
from core.services.accounts import Permission
from core.services.datasets import (
    DEMO_DATASET, CleaningOptions, DatasetError, DatasetVersion, EmbeddingCheck, Fix, IngestError, LabelCheck,
    LabelCheckError, LabelDecision, Preparation, RareClassAction, RawTable, SplitPlan, check_labels,
    check_version_labels, dataset_versions, delete_dataset, find_copies, find_version_copies, guess_columns,
    note_upload, prepare, prepare_texts, revise_labels, save_dataset, save_unlabelled_dataset, split_table,
    suggest_dataset_name, thin_validation, token_counter, version_users,
    TagCheck, TagFormat, TagPreparation, TagShape, binary_columns, check_tags, detect_task, prepare_tags,
    save_tagged_dataset,
)
from core.services.studio import AppConfig
from pages.common.widgets import (
    field_choice, numbered_steps, plain, read_upload, show_fixes, show_report, start_page,
)

DELETE_NOTICE, REVIEW_NOTICE = "delete_notice", "label_review_notice"
#: Session keys: how many files were refused (the uploader's key, so a refused file is cleared), and why.
UPLOADS, REFUSAL = "uploads_refused", "upload_refusal"


@dataclass(frozen=True)
class Source:
    """The file being worked on: its name, bytes and a key that changes with its content."""

    name: str
    data: bytes
    key: str

    @classmethod
    def of(cls, name: str, data: bytes) -> "Source":
        return cls(name, data, f"{name}:{hashlib.sha1(data).hexdigest()[:16]}")


T = TypeVar("T")
#: What a person may decide for a suspicious row, as the review table offers it.
KEEP, RELABEL, DROP = "keep", "use the suggestion", "drop the row"


LABEL_CHECK_HELP = ("Each row's label is compared with what a model trained on the other rows predicts for it "
                    "(5-fold TF-IDF + logistic regression, cleanlab). Seconds for thousands of rows.")
COPIES_HELP = ("Every row is embedded with the sentence model (MiniLM) and cleanlab's Datalab looks for rows that "
               "say the same thing in other words, and for rows unlike all the others. About a minute for 10,000 "
               "rows on this machine.")


def checked(check_key: str, button: str, button_key: str, run: Callable[[Callable[[int, int], None]], T],
            help_text: str, unit: str) -> T | None:
    """The check kept under ``check_key``, run (with a progress bar of ``unit``) when its button is clicked."""
    if st.button(button, key=button_key, help=help_text):
        bar = st.progress(0.0, text="Checking…")
        try:
            st.session_state[check_key] = run(
                lambda done, total: bar.progress(done / total, text=f"{done:,} of {total:,} {unit}"))
        except LabelCheckError as exc:
            st.warning(f"The data cannot be checked: {exc}.")
        bar.empty()
    return st.session_state.get(check_key)


def suspicious_decisions(check: LabelCheck | None, key: str, by_split: bool = False) -> tuple[LabelDecision, ...]:
    """What the person decided about each suspicious label (nothing until the check has run)."""
    if check is None:
        return ()
    if not check.issues:
        st.success(f"No label looks wrong: all {check.rows:,} rows agree with what the other rows say.")
        return ()
    st.markdown(f"**{len(check.issues):,} of {check.rows:,} rows** carry a label the rest of the data disagrees "
                f"with ({check.folds} folds, {check.seconds:.0f} s). Nothing changes unless you choose an action.")
    return decisions_table(check, key, by_split)


def copies_and_outliers(found: EmbeddingCheck | None, key: str) -> tuple[LabelDecision, ...]:
    """Near-copies and outliers, each row with a "drop" tick; the ticked rows as drop decisions."""
    if found is None:
        return ()
    conflicting = sum(group.conflicting for group in found.near_copies)
    st.markdown(f"**{len(found.near_copies):,} group(s) of near-copies** ({conflicting:,} with different labels) and "
                f"**{len(found.outliers):,} outlier(s)** among {found.rows:,} rows ({found.seconds:.0f} s). Tick "
                "the rows to drop; nothing changes otherwise.")
    copies = pd.DataFrame([{"group": number, "line": line, "text": text, "label": label,
                            "labels differ": group.conflicting, "drop": False}
                           for number, group in enumerate(found.near_copies, start=1)
                           for line, text, label in zip(group.lines, group.texts, group.labels)],
                          columns=["group", "line", "text", "label", "labels differ", "drop"])
    outliers = pd.DataFrame([{"line": o.line, "text": o.text, "label": o.label, "outlier score": o.score,
                              "drop": False} for o in found.outliers],
                            columns=["line", "text", "label", "outlier score", "drop"])
    ticked = []
    for title, table in (("Near-copies (one group after another)", copies), ("Outliers (most unusual first)", outliers)):
        if len(table):
            st.caption(title)
            edited = st.data_editor(table, hide_index=True, width="stretch", key=f"{key}:{title}",
                                    disabled=[column for column in table.columns if column != "drop"])
            ticked += [int(line) for line in edited.loc[edited["drop"], "line"]]
    return tuple(LabelDecision(line, "drop") for line in dict.fromkeys(ticked))


def label_review(source: Source, prepared: Preparation, options: CleaningOptions) -> tuple[Preparation, CleaningOptions]:
    """Rows whose label a model trained on the other rows disagrees with, near-copies and outliers, and what
    to do with each; returns the preparation with the decisions applied (or as it was, when nothing is
    decided)."""
    check_key = f"label_check:{source.key}:{prepared.text_field}:{prepared.label_field}:{options!r}"
    labels_col, copies_col = st.columns(2)
    with labels_col:
        check = checked(check_key, "Find suspicious labels", "check_labels",
                        lambda progress: check_labels(studio, caller, prepared, progress=progress),
                        LABEL_CHECK_HELP, "folds checked")
    with copies_col:
        found = checked(f"copies:{check_key}", "Find near-copies and outliers", "find_copies",
                        lambda progress: find_copies(studio, caller, prepared, progress),
                        COPIES_HELP, "rows embedded")
    decisions = suspicious_decisions(check, check_key) + copies_and_outliers(found, f"copies:{check_key}")
    if not decisions:
        return prepared, options
    options = replace(options, label_decisions=decisions)
    with st.spinner("Applying your decisions…"):
        reviewed = cached_preparation(source.key, prepared.table, prepared.text_field, prepared.label_field, options,
                                      config, repr(config))
    show_fixes(reviewed)
    return reviewed, options


#: Column widths (pixels) of the suspicious-labels table, chosen so that every column fits the page's width;
#: a cell cut short shows whole on hover.
DECISION_WIDTHS = {"line": 50, "split": 70, "text": 250, "label": 110, "suggested": 110, "score": 80, "action": 80}


def decisions_table(check: LabelCheck, key: str, by_split: bool = False) -> tuple[LabelDecision, ...]:
    """The suspicious rows with an action each (set one by one or all at once); with ``by_split`` (a saved
    version) the rows' splits are shown and "all at once" leaves test-split rows alone."""
    every = st.selectbox("Set every listed training/validation row to" if by_split else "Set every listed row to",
                         [KEEP, RELABEL, DROP], key=f"labels_all:{key}")
    issues = check.issues
    table = pd.DataFrame({"line": [i.line for i in issues], **({"split": [i.split for i in issues]} if by_split else {}),
                          "text": [i.text for i in issues], "label": [i.label for i in issues],
                          "suggested": [i.suggested for i in issues], "label score": [i.label_score for i in issues],
                          "suggested score": [i.suggested_score for i in issues],
                          "action": [KEEP if by_split and i.split == "test" else every for i in issues]})
    score = {"format": "%.2f", "min_value": 0, "max_value": 1, "width": DECISION_WIDTHS["score"]}
    edited = st.data_editor(
        table, hide_index=True, width="stretch", height=320, key=f"labels_table:{key}:{every}",
        disabled=[column for column in table.columns if column != "action"],
        column_config={"action": st.column_config.SelectboxColumn(options=[KEEP, RELABEL, DROP], required=True,
                                                                  width=DECISION_WIDTHS["action"]),
                       "label score": st.column_config.ProgressColumn(**score),
                       "suggested score": st.column_config.ProgressColumn(**score),
                       **{name: st.column_config.Column(width=DECISION_WIDTHS[name])
                          for name in ("line", "split", "text", "label", "suggested") if name in table}})
    with st.expander("Rows like each one that carry the suggested label (why it is suggested)"):
        st.markdown("\n".join(f"- **line {i.line}** → *{plain(i.suggested)}*: " + " · ".join(map(plain, i.similar))
                               for i in issues if i.similar) or "No similar rows to show.")
    return tuple(LabelDecision(int(row.line), "drop") if row.action == DROP
                 else LabelDecision(int(row.line), "relabel", row.suggested)
                 for row in edited.itertuples() if row.action != KEEP)


def version_label_review(versions: list[DatasetVersion]) -> None:
    """Check a saved version's labels (and near-copies and outliers) and save the decisions as its next
    version, rows staying in their splits; test-split rows change only with the explicit tick."""
    ref = st.selectbox("Version to check", [v.ref for v in reversed(versions)], key="review_ref")
    check_key = f"version_label_check:{ref}"
    labels_col, copies_col = st.columns(2)
    with labels_col:
        check = checked(check_key, f"Find suspicious labels in {ref}", "check_version_labels",
                        lambda progress: check_version_labels(studio, caller, ref, progress),
                        LABEL_CHECK_HELP, "folds checked")
    with copies_col:
        found = checked(f"copies:{check_key}", f"Find near-copies and outliers in {ref}", "find_version_copies",
                        lambda progress: find_version_copies(studio, caller, ref, progress),
                        COPIES_HELP, "rows embedded")
    if check is None and found is None:
        return
    st.caption(f"Lines are lines of {ref}'s data.jsonl. Decisions are saved as the next version, every row in the "
               "split it had; test-split rows stay as they are unless you choose an action for them and tick the "
               "box below.")
    decisions = suspicious_decisions(check, check_key, by_split=True) + copies_and_outliers(found, f"copies:{check_key}")
    edit_test = st.checkbox(
        "Also change the test-split rows I chose (every model on this data is scored against them; the edit is "
        "recorded in the new version and the Evaluate page says so)", key=f"edit_test:{ref}")
    if st.button(f"Save {len(decisions)} decision(s) as the next version of {ref.split('/')[0]}",
                 disabled=not decisions, key="save_label_review"):
        try:
            saved = revise_labels(studio, caller, ref, decisions, edit_test_split=edit_test)
        except DatasetError as exc:
            st.error(f"Not saved: {exc}.")
        else:
            st.session_state.pop(check_key, None)
            st.session_state.pop(f"copies:{check_key}", None)
            step = saved.meta["cleaning_steps"][-1]
            st.session_state[REVIEW_NOTICE] = (
                f"Saved {saved.ref}: relabelled {step['labels_changed']}, dropped {step['rows_removed']}"
                + (f", {len(saved.test_split_edits)} test-split edit(s) recorded" if saved.test_split_edits else "")
                + f"; {ref} is unchanged.")
            st.rerun()


@st.cache_data(show_spinner=False, max_entries=8)
def cached_preparation(source_key: str, _table: RawTable, text_field: str, label_field: str | None,
                       options: CleaningOptions, _config: AppConfig, config_key: str) -> Preparation:
    """The file validated and cleaned (texts alone when ``label_field`` is None)."""
    if label_field is None:
        return prepare_texts(_table, text_field, options, _config, _token_counter(_config))
    return prepare(_table, text_field, label_field, options, _config, _token_counter(_config))


def _token_counter(config: AppConfig):
    try:
        return token_counter(config.model.name)
    except (OSError, ValueError):
        return None  # the report then says nothing about length rather than failing


@st.cache_data(show_spinner=False, max_entries=8)
def cached_tag_preparation(source_key: str, _table: RawTable, text_field: str, tag_format: TagFormat,
                           keep_untagged: bool, merge_spellings: bool, _config: AppConfig,
                           config_key: str) -> TagPreparation:
    return prepare_tags(_table, text_field, tag_format, _config, keep_untagged=keep_untagged,
                        merge_spellings=merge_spellings, count_tokens=_token_counter(_config))


def choose_file(step) -> Source | None:
    """Step 1: an upload or the demo set; the file being worked on stays in the session until another comes."""
    st.subheader(step("Choose a file"))
    upload_col, demo_col = st.columns([3, 1], vertical_alignment="center")
    # Every kind of file is taken, so one the studio cannot read gets a message in words here (the uploader's own
    # type filter refused it in the browser, with a reason only on hover, and left the old report standing).
    uploaded = upload_col.file_uploader(
        f"JSONL (one JSON object per line), CSV with a header row, or an Excel workbook (a sheet with a header "
        f"row), up to {config.data.max_upload_mb} MB",
        key=f"upload:{st.session_state.get(UPLOADS, 0)}")
    if demo_col.button("Load the demo dataset", key="load_demo", width="stretch"):
        st.session_state["source"] = Source.of(DEMO_DATASET.name, DEMO_DATASET.read_bytes())
    if uploaded is not None and st.session_state.get("upload_id") != uploaded.file_id:
        st.session_state["upload_id"] = uploaded.file_id
        st.session_state["source"] = Source.of(uploaded.name, uploaded.getvalue())
        note_upload(studio, caller, uploaded.name, uploaded.size)
    if refusal := st.session_state.pop(REFUSAL, None):
        st.error(refusal)
    return st.session_state.get("source")


def read_file(source: Source) -> tuple[Source, RawTable] | None:
    """The file as a table (a spreadsheet's chosen sheet) and a preview of it; a file that cannot be read is
    forgotten (the uploader cleared) and the page says why; a sheet that cannot be read is said under the sheet
    picker (None). The source comes back keyed by its sheet too."""
    max_bytes = config.data.max_upload_mb * 1_000_000
    try:
        with st.spinner(f"Reading {source.name}…"):
            table = read_upload(source.name, source.data, max_bytes)
    except IngestError as exc:  # forget the file (and clear the uploader) so a refused file does not linger
        st.session_state[REFUSAL] = f"This file cannot be used: {exc}"
        st.session_state[UPLOADS] = st.session_state.get(UPLOADS, 0) + 1
        del st.session_state["source"]
        st.rerun()
    if len(table.sheets) > 1:
        sheet = st.selectbox("Sheet", table.sheets, index=table.sheets.index(table.sheet), key=f"sheet:{source.key}",
                             help="The sheet whose rows are the feedback; its first filled row names the columns.")
        try:
            table = read_upload(source.name, source.data, max_bytes, sheet)
        except IngestError as exc:
            st.error(f"This sheet cannot be used: {exc}")
            return None
    skipped = f", {table.skipped:,} line(s) skipped" if table.skipped else ""
    how = f"rows read from sheet '{table.sheet}'" if table.sheet else f"records read as {table.format.upper()}"
    st.caption(f"{source.name}: {len(table.records):,} {how}{skipped}.")
    st.dataframe(table.preview(), hide_index=True, width="stretch", height=240)
    return (replace(source, key=f"{source.key}:{table.sheet}") if table.sheet else source), table


def map_fields(step, source: Source, table: RawTable) -> tuple[str, str | None]:
    """Step 2: which field holds the text and which the label (guessed first; no label field when none looks like
    one, until the analyst picks one)."""
    st.subheader(step("Which field holds the text, which the label?"))
    guess = guess_columns(table)
    text_col, label_col = st.columns(2)
    text_field = field_choice(text_col, "Text field", table, guess.text, f"text_field:{source.key}")
    if guess.label is None:
        label_field = label_col.selectbox("Label field", table.columns, index=None, key=f"label_field:{source.key}",
                                          placeholder="None: these texts have no labels yet")
    else:
        label_field = field_choice(label_col, "Label field", table, guess.label, f"label_field:{source.key}")
    guessed = [f"the text from '{text_field}' ({guess.text_reason})"] * (text_field == guess.text) + [
        f"the label from '{label_field}' ({guess.label_reason})"] * (label_field == guess.label)
    if guessed:
        st.caption(plain("Guessed " + " and ".join(guessed) + ". A guess: change it above if it is wrong."))
    return text_field, label_field


def no_labels(source: Source, table: RawTable, text_field: str) -> None:
    """A file of texts alone: said so, and what happens to it instead of a report on labels."""
    others = [c for c in table.columns if c != text_field]
    st.warning(plain(
        f"No field of {source.name} holds labels"
        + (f" ('{text_field}' holds the texts; {', '.join(repr(c) for c in others)} look like ids, dates, free "
           "text or one value throughout, not labels)" if others else f" (it has only '{text_field}')")
        + ". If one of the fields does hold labels, pick it above. Otherwise the texts are checked and saved "
          "without labels: the Topics page then groups them into topics for you to name, and saves those as "
          "the labels to train on."))


def blocked(prepared: Preparation | TagPreparation) -> bool:
    """Whether errors still block saving (said, with their titles)."""
    if not prepared.ready:
        st.warning("Saving is blocked until the errors above are fixed: "
                   + "; ".join(f.title for f in prepared.report.errors) + ".")
    return not prepared.ready


def dataset_name(source: Source) -> str:
    return st.text_input("Dataset name", value=suggest_dataset_name(source.name), key=f"name:{source.key}",
                         help="Saving the same name again creates its next version.")


def save_texts(step, source: Source, prepared: Preparation) -> None:
    """The last step for texts without labels: a name, and saving them as the next version (no split yet)."""
    st.subheader(step("Save the texts"))
    if blocked(prepared):
        return
    name = dataset_name(source)
    if st.button("Save texts without labels", type="primary", key="save_texts"):
        try:
            with st.spinner("Saving…"):
                saved = save_unlabelled_dataset(studio, caller, name, prepared)
        except DatasetError as exc:
            st.error(f"Not saved: {exc}")
        else:
            st.success(f"Saved {saved.ref}: {saved.meta['rows']:,} texts without labels. Next: discover their "
                       "topics on the Topics page.")
            st.page_link("pages/views/topics.py", label="Go to the Topics page", icon=":material/hub:")


#: What the labels are: one per text, or tags kept in the label field or in one yes/no column each.
ONE_LABEL, TAGS_IN_FIELD, TAGS_IN_COLUMNS = ("one label per text", "several tags per text, in the label field",
                                             "several tags per text, one yes/no column each")


def choose_task(source: Source, table: RawTable, label_field: str) -> TagFormat | None:
    """One label per text or several tags: detected from the label field and said with the reason, the analyst's
    to change; for tags, how they are kept (the separator, or the yes/no columns). None: one label per text."""
    guess = detect_task(table, label_field)
    kind = st.radio("Labels or tags?", [ONE_LABEL, TAGS_IN_FIELD, TAGS_IN_COLUMNS],
                    index=1 if guess.format is not None else 0, key=f"task:{source.key}:{label_field}",
                    help="Feedback often has several topics at once (a crash while paying is 'bug' and "
                         "'payments'): then each text carries a set of tags, and the models learn each tag.")
    st.caption(plain(f"Detected from '{label_field}': {guess.task.value} ({guess.reason})."))
    if kind == ONE_LABEL:
        return None
    if kind == TAGS_IN_COLUMNS:
        columns = st.multiselect("The yes/no columns (each one is a tag: 1/0, yes/no, true/false)", table.columns,
                                 default=binary_columns(table), key=f"tag_columns:{source.key}")
        return TagFormat(TagShape.COLUMNS, columns=tuple(columns))
    if guess.format is not None and guess.format.shape is TagShape.LIST:
        return guess.format
    separator = st.text_input("Tags separated by", value=guess.format.separator if guess.format else ";",
                              max_chars=3, key=f"separator:{source.key}:{label_field}")
    return TagFormat(TagShape.DELIMITED, label_field, separator or ";")


def report_tags(step, source: Source, table: RawTable, text_field: str, tag_format: TagFormat) -> TagPreparation:
    """Step 3 for tags: the report (rows left out and why), whether to keep texts without a tag, texts per tag."""
    keep_col, merge_col = st.columns(2)
    keep = keep_col.checkbox("Keep texts without a tag (a text may rightly have none of the tags)",
                             key=f"keep_untagged:{source.key}")
    merge = merge_col.checkbox("Merge tag spellings (e.g. 'Bug' and 'bug ' become the more common one)",
                               key=f"merge_tags:{source.key}")
    with st.spinner("Checking the data…"):
        prepared = cached_tag_preparation(source.key, table, text_field, tag_format, keep, merge, config,
                                          repr(config))
    st.subheader(step("Validation report"))
    show_report(prepared.report)
    if prepared.report.label_counts:
        st.subheader(step("Texts per tag"))
        st.plotly_chart(charts.label_distribution(prepared.report.label_counts), width="stretch")
    return prepared


#: Column widths (pixels) of the suspicious-tags table, so that every column fits the page's width.
TAG_DECISION_WIDTHS = {"line": 50, "text": 300, "tags": 130, "suggested": 130, "quality": 80, "action": 110}
TAG_CHECK_HELP = ("Each text's tags are compared with what a model trained on the other texts gives it (5-fold "
                  "one-vs-rest TF-IDF + logistic regression, cleanlab's multi-label check). Seconds for thousands "
                  "of rows.")


def tag_review(source: Source, prepared: TagPreparation) -> TagPreparation:
    """Texts whose tags the other texts disagree with, and what to do with each; the preparation with the
    decisions applied (or as it was)."""
    check_key = f"tag_check:{source.key}:{prepared.text_field}:{prepared.tag_format!r}:{len(prepared.rows)}"
    check: TagCheck | None = checked(check_key, "Find suspicious tags", "check_tags",
                                     lambda progress: check_tags(studio, caller, prepared, progress),
                                     TAG_CHECK_HELP, "folds checked")
    if check is None:
        return prepared
    if not check.issues:
        st.success(f"No tag set looks wrong: all {check.rows:,} texts agree with what the other texts say.")
        return prepared
    st.markdown(f"**{len(check.issues):,} of {check.rows:,} texts** carry tags the rest of the data disagrees with "
                f"({check.folds} folds, {check.seconds:.0f} s). Nothing changes unless you choose an action.")
    table = pd.DataFrame({"line": [i.line for i in check.issues], "text": [i.text for i in check.issues],
                          "tags": ["; ".join(i.tags) for i in check.issues],
                          "suggested": ["; ".join(i.suggested) for i in check.issues],
                          "quality": [i.quality for i in check.issues], "action": [KEEP] * len(check.issues)})
    edited = st.data_editor(
        table, hide_index=True, width="stretch", height=300, key=f"tags_table:{check_key}",
        disabled=[column for column in table.columns if column != "action"],
        column_config={"action": st.column_config.SelectboxColumn(options=[KEEP, RELABEL, DROP], required=True,
                                                                  width=TAG_DECISION_WIDTHS["action"]),
                       "quality": st.column_config.ProgressColumn(format="%.2f", min_value=0, max_value=1,
                                                                  width=TAG_DECISION_WIDTHS["quality"])}
        | {name: st.column_config.Column(width=TAG_DECISION_WIDTHS[name]) for name in ("line", "text", "tags",
                                                                                       "suggested")})
    by_line = {issue.line: issue for issue in check.issues}
    relabel = [by_line[int(row.line)] for row in edited.itertuples() if row.action == RELABEL]
    drop = [int(row.line) for row in edited.itertuples() if row.action == DROP]
    if not relabel and not drop:
        return prepared
    st.info(f"Saving will give {len(relabel)} text(s) their suggested tags and leave out {len(drop)}.")
    return prepared.with_decisions(relabel, drop)


def choose_fixes(step, raw: Preparation) -> CleaningOptions:
    """The fixes the report offers, each off until ticked."""
    fixable = {f.fix for f in raw.raw_report.findings if f.fix is not None}
    if not fixable:
        return CleaningOptions()
    st.subheader(step("Fixes (nothing changes unless you tick it)"))
    if not raw.labelled:
        return CleaningOptions(
            drop_invalid_rows=st.checkbox("Drop rows with missing or invalid text",
                                          disabled=Fix.DROP_INVALID_ROWS not in fixable, key="fix_invalid"),
            drop_duplicates=st.checkbox("Drop duplicates (keep the first copy)",
                                        disabled=Fix.DROP_DUPLICATES not in fixable, key="fix_duplicates"))
    return CleaningOptions(
        drop_invalid_rows=st.checkbox("Drop rows with missing or invalid text or label",
                                      disabled=Fix.DROP_INVALID_ROWS not in fixable, key="fix_invalid"),
        normalise_labels=st.checkbox("Trim and merge label spellings (e.g. 'Billing ' → 'billing')",
                                     disabled=Fix.NORMALISE_LABELS not in fixable, key="fix_labels"),
        drop_conflicts=st.checkbox("Drop texts with conflicting labels",
                                   disabled=Fix.DROP_CONFLICTS not in fixable, key="fix_conflicts"),
        drop_duplicates=st.checkbox("Drop duplicates (keep the first copy)",
                                    disabled=Fix.DROP_DUPLICATES not in fixable, key="fix_duplicates"),
        rare_classes=RareClassAction(st.radio(
            "Classes too small to split", [a.value for a in RareClassAction], horizontal=True,
            format_func={"keep": "keep (blocks saving)", "drop": "drop them", "merge": "merge into 'other'"}.get,
            disabled=Fix.HANDLE_RARE_CLASSES not in fixable, key="fix_rare")),
    )


def check_and_fix(step, source: Source, table: RawTable, text_field: str,
                  label_field: str | None) -> tuple[Preparation, Preparation, CleaningOptions]:
    """Step 3: the validation report, the fixes chosen and what they changed; the label mix before and after
    (texts alone when ``label_field`` is None)."""
    with st.spinner("Checking the data…"):
        raw = cached_preparation(source.key, table, text_field, label_field, CleaningOptions(), config, repr(config))
    st.subheader(step("Validation report"))
    show_report(raw.raw_report)
    options = choose_fixes(step, raw)
    prepared = raw
    if options != CleaningOptions():
        with st.spinner("Applying the fixes…"):
            prepared = cached_preparation(source.key, table, text_field, label_field, options, config, repr(config))
        show_fixes(prepared)
    if prepared.report.label_counts:
        st.subheader(step("Examples per label"))
        st.plotly_chart(charts.label_distribution(
            raw.raw_report.label_counts, prepared.report.label_counts if prepared is not raw else None),
            width="stretch")
    return raw, prepared, options


def split_plan() -> SplitPlan:
    """The shares and the seed of the split (the configured ones unless changed here)."""
    with st.expander("Split settings"):
        val_col, test_col, seed_col = st.columns(3)
        validation = val_col.slider("Validation share", 0.05, 0.3, config.split.validation, 0.05)
        test = test_col.slider("Test share", 0.05, 0.3, config.split.test, 0.05)
        seed = seed_col.number_input("Seed", value=config.split.seed, step=1,
                                     help="Which examples land in which split is drawn at random; the same "
                                          "seed always draws the same split, so runs can be compared and "
                                          "repeated. Change it only to try another split.")
    return SplitPlan(round(1 - validation - test, 4), validation, test, int(seed))


def split_and_save(step, source: Source, prepared: Preparation | TagPreparation) -> None:
    """The last step: the split previewed per label (or tag), a name, and saving it as the next version (tags
    split by iterative stratification, so each tag's texts are shared out like the whole)."""
    st.subheader(step("Split and save"))
    if blocked(prepared):
        return
    plan = split_plan()
    preview = prepared.split_preview(plan)
    tagged = isinstance(prepared, TagPreparation)
    st.caption(("Tagged texts per split (a text counts once per tag): " if tagged else "Examples per split: ")
               + " · ".join(f"{split} {sum(per_label.values()):,}" for split, per_label in preview.items()))
    st.plotly_chart(charts.split_distribution(preview), width="stretch")
    if thin := thin_validation(preview, config.compare.min_validation_per_label):
        st.warning(plain(thin))
    with st.expander("Texts per tag and split" if tagged else "Examples per label and split"):
        st.dataframe(split_table(preview), width="stretch")
    name = dataset_name(source)
    if st.button("Save dataset version", type="primary", key="save_version"):
        try:
            with st.spinner("Saving…"):
                saved = (save_tagged_dataset(studio, caller, name, prepared, plan) if tagged
                         else save_dataset(studio, caller, name, prepared, plan, source=source.name))
        except DatasetError as exc:
            st.error(f"Not saved: {exc}")
        else:
            sizes = saved.meta.get("split_sizes") or {split: sum(counts.values())
                                                      for split, counts in saved.meta["split_counts"].items()}
            st.success(f"Saved {saved.ref}: {saved.meta['rows']:,} examples ({sizes['train']:,} train, "
                       f"{sizes['validation']:,} validation, {sizes['test']:,} test)"
                       + (f", each with its tags ({len(saved.labels)} tags)" if tagged else "")
                       + ". Next: train models on the Train page.")


def delete_version(versions: list[DatasetVersion]) -> None:
    """Delete one version for good, after saying what still uses it."""
    doomed = st.selectbox("Version to delete", [v.ref for v in versions], key="delete_ref")
    users = version_users(studio, caller, doomed)
    if users:
        st.warning(f"{doomed} is in use: " + "; ".join(users) + ".")
    sure = st.checkbox(f"Yes, delete {doomed} for good", key=f"delete_confirm:{doomed}")
    if st.button("Delete", disabled=not sure, key="delete_version"):
        try:
            delete_dataset(studio, caller, doomed)
        except DatasetError as exc:
            st.error(f"Not deleted: {exc}")
        else:
            st.session_state[DELETE_NOTICE] = f"Deleted {doomed}."
            st.rerun()


def saved_versions() -> None:
    """The versions saved so far, a label check of one, and deleting one."""
    st.divider()
    st.subheader("Saved dataset versions")
    versions = dataset_versions(studio, caller)
    if not versions:
        st.info("No dataset saved yet — prepare a file above and click 'Save dataset version'.")
        return
    st.dataframe(pd.DataFrame([{
        "version": v.ref, "examples": v.meta["rows"], "labels": len(v.labels),
        "without a label": v.meta.get("unlabelled_rows", 0),
        "task": "tags" if v.multi_label else "no labels yet" if v.unlabelled else "one label",
        "source": v.meta["source"], "saved": when(v.meta["created_at"]),
        "test split edited": f"{len(v.test_split_edits)} row(s)" if v.test_split_edits else "",
        "fingerprint": v.meta["fingerprint"][:12],
    } for v in versions]), hide_index=True, width="stretch")
    if notice := st.session_state.pop(REVIEW_NOTICE, None):
        st.success(notice)
    # keyed: a notice above comes and goes between runs, and an unkeyed expander would fold shut under the
    # person's click when it moves
    with st.expander("Check a saved version's labels", key="check_version_expander"):
        labelled = [v for v in versions if not v.unlabelled and not v.partly_labelled]
        if labelled:
            version_label_review(labelled)
        else:
            st.caption("No saved version has labels to check yet.")
    if notice := st.session_state.pop(DELETE_NOTICE, None):
        st.success(notice)
    with st.expander("Delete a version", key="delete_version_expander"):
        delete_version(versions)


actor, config, studio, caller = start_page(
    "pages/views/data.py", Permission.MANAGE_DATA, "Data",
    "Upload labelled feedback, read what is wrong with it, choose fixes, and save a clean, "
    "split version that the Train page can use.")
step = numbered_steps()
source = choose_file(step)
read = None if source is None else read_file(source)
if source is None:
    st.info("No file yet — upload one above, or click 'Load the demo dataset' to try the studio.")
elif read is not None:
    source, table = read
    text_field, label_field = map_fields(step, source, table)
    tag_format = None if label_field is None else choose_task(source, table, label_field)
    if label_field is None:
        no_labels(source, table, text_field)
        save_texts(step, source, check_and_fix(step, source, table, text_field, None)[1])
    elif tag_format is not None:
        tagged = report_tags(step, source, table, text_field, tag_format)
        if tagged.ready:
            st.subheader(step("Suspicious tags (optional)"))
            tagged = tag_review(source, tagged)
        split_and_save(step, source, tagged)
    else:
        raw, prepared, options = check_and_fix(step, source, table, text_field, label_field)
        if prepared.ready:
            st.subheader(step("Suspicious labels (optional)"))
            prepared, options = label_review(source, prepared, options)
        split_and_save(step, source, prepared)
saved_versions()
