"""The command line: the app's training and prediction without a browser.

    python -m core train --data FILE --text-field NAME --label-field NAME [...]
    python -m core predict --model RUN --input FILE --output FILE.jsonl
    python -m core evaluate --model RUN [--data FILE --text-field NAME --label-field NAME]
    python -m core publish --model RUN [--by NAME]
    python -m core users add --username NAME --role admin|analyst|user   (password from a prompt or stdin)
    python -m core users list
    python -m core train-run RUN_ID        (a queued run, trained here; what a worker runs under torchrun)

Under ``torchrun`` / ``accelerate launch`` (several processes), ``train`` and ``train-run`` are
run by the main process (rank 0) alone; the others train its transformer runs with it, data
parallel, and exit with its status (see core.platform.distributed and core.training.execution.follow_main).

Results go to standard output as JSON; progress and errors go to standard
error. A bad argument or file gives a one-line error and exit status 2.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shutil
import socket
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

from core.presentation.display import progress_count
from core.services import Caller, Studio, processes
from core.services.accounts import Actor, AuthError, Role, accounts, change_account, create_account, create_first_admin
from core.services.classification import NothingPublished, classify
from core.services.datasets import (
    CleaningOptions, DatasetError, DatasetVersion, IngestError, LabelCheckError, LabelDecision, Preparation,
    RareClassAction, RawTable, SplitPlan, TagFormat, TagPreparation, TagShape, check_labels, check_version_labels,
    detect_task, find_copies, find_version_copies, guess_columns, prepare, prepare_tags, read_feedback_file,
    revise_labels, save_dataset, save_tagged_dataset, suggest_dataset_name, token_counter,
)
from core.services.evaluation import (
    EvaluationError, evaluate_file, evaluate_run, evaluate_tag_file, recommendation, run_gives_tags,
)
from core.services.labelling import describe_labels
from core.services.publishing import PublishError, publish_run, published_run
from core.services.topics import GRANULARITY, TopicError, find_topics
from core.services.runs import (
    PRESET_NAMES, ModelFileError, Recipe, RunError, RunRecord, RunRequest, RunState, measured_transformer_plan,
    model_kinds, run, run_location, serve_as_worker, train_here, train_queued_run, workers_online,
)
from core.services.file_jobs import FileJobError, JobState, classify_file_later, file_job, file_job_result
from core.services.studio import CONFIG_ENV_VAR, WORKSPACE_ENV_VAR, AppConfig, ConfigError, load_config, start_logging

DEFAULT_MODELS = "tfidf_logreg,tfidf_nb,embedding_logreg"
#: The command line is used by whoever has a shell on the server, who owns the workspace anyway.
PUBLISHED = "published"
RUN_HELP = f"run id or run folder, or '{PUBLISHED}' for the published model"
FIXES = ("drop_invalid_rows", "normalise_labels", "drop_conflicts", "drop_duplicates", "drop_rare", "merge_rare")


class CliError(Exception):
    """A user mistake: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + message
        raise CliError(f"{message} (see --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m core", description="Feedback Studio without the browser.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    common = _Parser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="TOML or YAML settings file (see README: Configuration)")
    common.add_argument("--workspace", metavar="DIR", help="workspace folder (default: from config, or ./workspace)")
    # what reads a file takes a spreadsheet too, and the sheet to read
    sheet = _Parser(add_help=False)
    sheet.add_argument("--sheet", metavar="NAME", help="in an Excel workbook, the sheet to read (default: the first)")

    train = commands.add_parser(
        "train", parents=[common, sheet], help="validate, split and train models on a labelled file",
        description="Ingest and validate FILE as the Data page does, save it as a dataset version, split it "
                    "(or use --test-data as the test split), train the chosen models and print one JSON object "
                    "per model with its run id, folder and test metrics.")
    train.add_argument("--data", required=True, metavar="FILE", help="labelled JSONL, CSV or Excel file")
    train.add_argument("--text-field", metavar="NAME", help="field holding the text (default: guessed)")
    train.add_argument("--label-field", metavar="NAME", help="field holding the label (default: guessed)")
    train.add_argument("--label-separator", metavar="SEP",
                       help="multi-label: the label field holds several tags separated by SEP (e.g. ';')")
    train.add_argument("--label-fields", metavar="A,B,…",
                       help="multi-label: one yes/no (1/0, true/false) column per tag, named here")
    train.add_argument("--task", choices=("auto", "single", "multi"), default="auto",
                       help="single- or multi-label (default: detected from the label field: lists of tags, or "
                            "one separator splitting its values, make it multi-label; said on standard error)")
    train.add_argument("--keep-untagged", action="store_true",
                       help="multi-label: keep texts without a tag (a text may rightly have none of the tags)")
    train.add_argument("--test-data", metavar="FILE", help="a separate labelled file used as the test split")
    train.add_argument("--models", default=DEFAULT_MODELS, metavar="LIST",
                       help="comma-separated model kinds: tfidf_logreg, tfidf_nb, zero_shot (the label names alone), "
                            "embedding_logreg, transformer "
                            f"(default: {DEFAULT_MODELS})")
    train.add_argument("--preset", choices=PRESET_NAMES, help="training preset for the transformer (default: config)")
    train.add_argument("--fix", default="", metavar="LIST",
                       help=f"comma-separated opt-in cleaning steps: {', '.join(FIXES)}")
    train.add_argument("--name", metavar="NAME", help="dataset name to save under (default: the file name)")
    train.add_argument("--max-train-examples", type=int, metavar="N",
                       help="train on a stratified sample of at most N training examples")
    train.add_argument("--descriptions", metavar="FILE.json",
                       help='a sentence per label saying what it covers, as one JSON object ({"billing": "charges, '
                            'refunds and invoices", …}): kept for the dataset (the Label page shows them) and read '
                            "with the names by zero_shot")

    topics = commands.add_parser(
        "topics", parents=[common, sheet], help="group the texts of a file (labelled or not) into topics",
        description="Embed the texts of FILE with the configured model and group them into topics (UMAP and "
                    "HDBSCAN through BERTopic; the number of topics is found, not given): one JSON object per row "
                    "with its id (the id field, else its line), its topic (null: it fits none, or has no text) and "
                    "how firmly it belongs, then a summary naming each topic by its keywords with its size and "
                    "typical texts. Nothing is saved.")
    topics.add_argument("--data", required=True, metavar="FILE", help="JSONL, CSV, Excel or plain-text file")
    topics.add_argument("--text-field", metavar="NAME", help="field holding the text (default: guessed)")
    topics.add_argument("--id-field", metavar="NAME", help="field holding each row's id (default: id, if present)")
    topics.add_argument("--granularity", choices=tuple(GRANULARITY_OPTIONS), default="as-found",
                        help="fewer, broader topics or more, narrower ones than found (default: as-found)")
    topics.add_argument("--place-unassigned", action="store_true",
                        help="put each text that fits no topic in its nearest one (said with \"placed\": true)")

    labels = commands.add_parser(
        "labels", parents=[common, sheet],
        help="list the rows of a labelled file or saved version whose label looks wrong",
        description="Validate FILE as the Data page does (or take a saved version), then check every label against "
                    "a model trained on the other rows (cross-validated TF-IDF + logistic regression, cleanlab): one "
                    "JSON object per suspicious row, most suspicious first (line, text, label, suggested label, both "
                    "scores, similar rows with the suggested label, and the split of a saved version's row), then a "
                    "summary. Nothing is changed, except with --apply.")
    checked = labels.add_mutually_exclusive_group(required=True)
    checked.add_argument("--data", metavar="FILE", help="labelled JSONL, CSV or Excel file")
    checked.add_argument("--dataset", metavar="NAME/vN",
                         help="a saved version; its rows are named by their line in the version's data.jsonl")
    labels.add_argument("--apply", metavar="DECISIONS.jsonl",
                        help="with --dataset: save these decisions as the version's next version instead of "
                             "checking; one object per line: line, action (relabel, drop or keep; default relabel) and "
                             "to, the new label (default: the line's 'suggested', so lines of this command's "
                             "output can be passed back as they are)")
    labels.add_argument("--near-copies", action="store_true",
                        help="list near-copies (rows saying the same in other words, different labels first) and "
                             "outliers instead, found by cleanlab's Datalab on the model's sentence embeddings")
    labels.add_argument("--edit-test-split", action="store_true",
                        help="with --apply: let decisions change rows of the test split (recorded in the new "
                             "version and shown on the Evaluate page); without it such decisions are refused")
    labels.add_argument("--text-field", metavar="NAME", help="field holding the text (default: guessed)")
    labels.add_argument("--label-field", metavar="NAME", help="field holding the label (default: guessed)")
    labels.add_argument("--fix", default="", metavar="LIST",
                        help=f"comma-separated opt-in cleaning steps first: {', '.join(FIXES)}")

    predict = commands.add_parser(
        "predict", parents=[common, sheet], help="score a file with a trained run",
        description="Write one JSON object per input row: its id (or line number), the predicted label, its "
                    "score and the scores of all labels.")
    predict.add_argument("--model", required=True, metavar="RUN", help=RUN_HELP)
    predict.add_argument("--input", required=True, metavar="FILE", help="JSONL, CSV, Excel or plain text (one per line)")
    predict.add_argument("--text-field", metavar="NAME", help="field holding the text (default: guessed)")
    predict.add_argument("--id-field", metavar="NAME", help="field holding each row's id (default: id, if present)")
    predict.add_argument("--output", required=True, metavar="FILE.jsonl", help="where to write the predictions")
    predict.add_argument("--threshold", type=float, metavar="0..1",
                         help="flag predictions less confident than this for review (default: the run's suggested one)")
    predict.add_argument("--as-job", action="store_true",
                         help="hand the file to the workers' queue and wait for its result: read and scored in "
                              "pieces, so memory stays flat at any size (the published model; --text-field needed). "
                              "The output keeps every input column with the predictions beside them: CSV for CSV "
                              "or Excel, JSON lines for JSON lines")

    evaluate = commands.add_parser(
        "evaluate", parents=[common, sheet], help="metrics of a trained run on its test split or a labelled file",
        description="Print the metrics as one JSON object on standard output, then the classification report "
                    "as text. Without --data, the run's own test split is used.")
    evaluate.add_argument("--model", required=True, metavar="RUN", help=RUN_HELP)
    evaluate.add_argument("--data", metavar="FILE", help="labelled JSONL, CSV or Excel file (default: the run's test split)")
    evaluate.add_argument("--text-field", metavar="NAME", help="field holding the text (default: guessed)")
    evaluate.add_argument("--label-field", metavar="NAME", help="field holding the label (default: guessed)")

    publish_cmd = commands.add_parser(
        "publish", parents=[common], help="make a run the model used for classification",
        description="Publish a finished run; the previously published run is remembered (restore it in the app).")
    publish_cmd.add_argument("--model", required=True, metavar="RUN", help="run id")
    publish_cmd.add_argument("--by", default=os.environ.get("USER", "command line"), metavar="NAME",
                             help="who publishes (recorded; default: $USER)")

    api = commands.add_parser("api", parents=[common], help="serve the HTTP API for classifying from other systems "
                              "(OpenAPI docs at /docs)")
    api.add_argument("--host", metavar="ADDRESS", help="address to listen on (default: [api] host, 127.0.0.1)")
    api.add_argument("--port", type=int, metavar="N", help="port (default: [api] port, 8502)")
    api.add_argument("--workers", type=int, metavar="N", help="processes serving it, each with the model loaded "
                     "once (default: [api] workers, 1)")

    commands.add_parser(
        "worker", parents=[common], help="train queued runs until stopped (what make run starts beside the app)",
        description="Take runs the app queued and train them, one at a time, until SIGTERM or Ctrl-C; a run in "
                    "progress is then interrupted and queued again. Start several, here or on machines sharing "
                    "the workspace and the PostgreSQL database, to train several runs at once.")

    train_run = commands.add_parser(
        "train-run", parents=[common], help="train a queued run by its id (what a worker runs under torchrun)",
        description="Train a run that is queued (or that the worker launching this command has just claimed), "
                    "test and save it like any run, and print one JSON object as 'train' does. Exit status 0 "
                    "when it succeeded, 1 otherwise. Under torchrun every process trains it, rank 0 writing.")
    train_run.add_argument("run_id", metavar="RUN_ID", help="the run's id")

    accounts_cmd = commands.add_parser("users", parents=[common], help="manage accounts without the browser")
    users_actions = accounts_cmd.add_subparsers(dest="action", required=True, parser_class=_Parser)
    add = users_actions.add_parser(
        "add", parents=[common], help="create an account",
        description="Create an account. The password is read from a prompt (twice), or from the first line of "
                    "standard input when it is not a terminal; never from the command line.")
    add.add_argument("--username", required=True, metavar="NAME", help="sign-in name")
    add.add_argument("--role", required=True, choices=[r.value for r in Role], help="what the account may do")
    add.add_argument("--name", default="", metavar="TEXT", help="full name (default: the username)")
    add.add_argument("--email", default="", metavar="ADDRESS", help="email address (optional)")
    users_actions.add_parser("list", parents=[common], help="list the accounts (no passwords)")
    reset = users_actions.add_parser(
        "reset-password", parents=[common], help="set a new password (also lifts a lockout)",
        description="Set a new password for an account, read like 'add' reads it. Whoever has a shell on the "
                    "server owns the workspace, so this also recovers a lost admin password.")
    reset.add_argument("--username", required=True, metavar="NAME", help="the account")
    return parser


def _read_password() -> str:
    """From a prompt (asked twice) on a terminal; else the first line of standard input."""
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat the password: ") != password:
            raise CliError("the two passwords differ")
        return password
    return sys.stdin.readline().rstrip("\r\n")


def command_users(args: argparse.Namespace) -> int:
    studio, caller = _studio(args), Caller.command_line()
    book = accounts(studio)
    if args.action == "list":
        for account in book.all():
            print(json.dumps({"username": account.username, "name": account.name, "role": account.role.value,
                              "disabled": account.disabled, "locked": account.locked(),
                              "created_at": account.created_at.isoformat()}), flush=True)
        return 0
    password = _read_password()
    if args.action == "reset-password":
        username = args.username.strip().lower()
        change = change_account(studio, caller, username, password=password)
        if change.refusal:
            raise AuthError(change.refusal)
        print(json.dumps({"username": username, "password": "reset"}), flush=True)
        return 0
    if book.any_accounts():
        account = create_account(studio, caller, args.username, args.name, args.email, password, Role(args.role))
    elif args.role != Role.ADMIN.value:
        raise CliError("the first account must be an admin (--role admin)")
    else:
        account = create_first_admin(studio, caller, args.username, args.name, args.email, password)
    print(json.dumps({"username": account.username, "role": account.role.value}), flush=True)
    return 0


def _run_id(studio: Studio, model: str) -> str:
    """A run id or folder as given, or the published run's id for the word 'published'."""
    if model != PUBLISHED:
        return model
    record = published_run(studio, Caller.command_line())
    if record is None:
        raise CliError("no model is published yet; publish a run first (python -m core publish --model RUN)")
    return record.run_id


def _studio(args: argparse.Namespace) -> Studio:
    """The studio the command acts on: the configured workspace and database."""
    return Studio(_config(args))


def _config(args: argparse.Namespace) -> AppConfig:
    """The configuration (``--workspace`` wins over the file), this process logging to its workspace."""
    if args.workspace:
        os.environ[WORKSPACE_ENV_VAR] = str(Path(args.workspace).resolve())
    config = load_config(args.config)
    start_logging(config)
    return config


def _read(path: str, config: AppConfig, sheet: str | None = None) -> RawTable:
    return read_feedback_file(path, config.data.max_upload_mb * 1_000_000, sheet)


def _fields(table: RawTable, text_field: str | None, label_field: str | None) -> tuple[str, str]:
    guess = guess_columns(table)
    text, label = text_field or guess.text, label_field or guess.label
    for role, name in (("text", text), ("label", label)):
        if name is None or name not in table.columns:
            raise CliError(f"{table.source}: no {role} field {name!r}; fields found: {', '.join(table.columns)}")
    return text, label


def _cleaning(fixes: str) -> CleaningOptions:
    chosen = {f.strip() for f in fixes.split(",") if f.strip()}
    unknown = chosen - set(FIXES)
    if unknown:
        raise CliError(f"unknown --fix {', '.join(sorted(unknown))}; choose from {', '.join(FIXES)}")
    rare = RareClassAction.DROP if "drop_rare" in chosen else (
        RareClassAction.MERGE if "merge_rare" in chosen else RareClassAction.KEEP)
    return CleaningOptions(drop_invalid_rows="drop_invalid_rows" in chosen, normalise_labels="normalise_labels" in chosen,
                           drop_conflicts="drop_conflicts" in chosen, drop_duplicates="drop_duplicates" in chosen,
                           rare_classes=rare)


def _refuse_if_blocked(prepared: Preparation | TagPreparation) -> None:
    for finding in prepared.report.findings:
        print(f"{finding.severity.value}: {finding.title}: {finding.message}", file=sys.stderr)
    if not prepared.ready:
        raise CliError(f"{prepared.table.source} has blocking problems ("
                       + "; ".join(f.title for f in prepared.report.errors)
                       + "); fix the file or pass --fix (see --help)")


def _progress_printer(kind: str):
    """Echo a run's progress to standard error, once per percent and at each evaluation."""
    last = {"percent": -1}

    def on_change(changes: dict[str, Any]) -> None:
        if "total_steps" not in changes or not changes["total_steps"]:
            if changes.get("state"):
                print(f"[{kind}] {changes['state'].value}", file=sys.stderr)
            return
        percent = int(100 * changes["step"] / changes["total_steps"])
        if percent != last["percent"] or "loss" in changes:
            last["percent"] = percent
            loss = f" loss {changes['loss']:.4f}" if "loss" in changes else ""
            count = progress_count(changes["step"], changes["total_steps"], changes.get("unit", "step"))
            print(f"[{kind}] {percent:3d}% {count}{loss}", file=sys.stderr)

    return on_change


def _print_recipe(recipe: Recipe) -> None:
    print(f"[transformer] {recipe.preset} recipe: {recipe.summary}", file=sys.stderr)
    for reason in recipe.reasons:
        print(f"[transformer]   {reason}", file=sys.stderr)


def _print_recommendation(studio: Studio, caller: Caller, records: list[RunRecord]) -> None:
    """After several models: which one to use, chosen on validation, whether its lead is clear (each candidate's
    validation macro-F1 with its interval), and whether fine-tuning paid off."""
    verdict = recommendation(studio, caller, records)
    print(json.dumps({"recommended": verdict.run_id, "reason": verdict.reason, "verdict": verdict.transformer,
                      "clear": verdict.clear, "candidates": list(verdict.candidates), "tied": list(verdict.tied),
                      "cheaper": verdict.cheaper}), flush=True)


def command_train(args: argparse.Namespace) -> int:
    studio, caller = _studio(args), Caller.command_line()
    config = studio.config
    kinds = [k.strip() for k in args.models.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in model_kinds()]
    if unknown or not kinds:
        raise CliError(f"unknown model(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(model_kinds())}")
    if args.max_train_examples is not None and args.max_train_examples < 1:
        raise CliError("--max-train-examples must be at least 1")
    options = _cleaning(args.fix)  # a wrong --fix is refused before the file is read
    table = _read(args.data, config, args.sheet)
    tag_format = _tag_format(table, args)
    version = (_save_tagged(studio, caller, table, tag_format, args) if tag_format is not None
               else _save_labelled(studio, caller, table, options, args))
    print(f"saved dataset {version.ref} ({version.meta['rows']} examples)", file=sys.stderr)
    if args.descriptions:
        _describe(studio, caller, version, args.descriptions)

    preset = args.preset or config.training.preset
    finished = []
    for kind in kinds:
        recipe = None
        if model_kinds()[kind].plans_recipe:
            recipe = measured_transformer_plan(studio, caller, version, preset, args.max_train_examples)
            _print_recipe(recipe)
        request = RunRequest(version.ref, kind, preset,
                             recipe.hyperparameters if recipe else model_kinds()[kind].Settings(),
                             max_train_examples=args.max_train_examples, recipe=recipe)
        record = train_here(studio, caller, request, on_change=_progress_printer(kind))
        _print_run(studio, record)
        if record.state is not RunState.SUCCEEDED:
            return 1
        finished.append(record)
    if len(finished) > 1:
        _print_recommendation(studio, caller, finished)
    return 0


def _tag_format(table: RawTable, args: argparse.Namespace) -> TagFormat | None:
    """How the file's tags are kept (None: single-label), from --label-fields, --label-separator and --task, or
    detected from the label field (the reason said on standard error)."""
    if args.label_fields:
        return TagFormat(TagShape.COLUMNS, columns=tuple(c.strip() for c in args.label_fields.split(",") if c.strip()))
    if args.task == "single" and not args.label_separator:
        return None
    _, label_field = _fields(table, args.text_field, args.label_field)
    if args.label_separator:
        return TagFormat(TagShape.DELIMITED, label_field, args.label_separator)
    guess = detect_task(table, label_field)
    if args.task == "multi" and guess.format is None:
        raise CliError(f"{table.source}: '{label_field}' holds one value per row; say how its tags are kept "
                       "(--label-separator, or --label-fields for yes/no columns)")
    delimited = guess.format is not None and guess.format.shape is TagShape.DELIMITED
    print(f"[data] {guess.task.value}: {guess.reason}"
          + (" (--task single reads each value as one label)" if delimited else ""), file=sys.stderr)
    return guess.format


def _save_labelled(studio: Studio, caller: Caller, table: RawTable, options: CleaningOptions,
                   args: argparse.Namespace) -> DatasetVersion:
    """Validate, clean, split and save a single-label file (and its separate test file)."""
    config = studio.config
    count_tokens = token_counter(config.model.name)
    text_field, label_field = _fields(table, args.text_field, args.label_field)
    prepared = prepare(table, text_field, label_field, options, config, count_tokens)
    _refuse_if_blocked(prepared)
    test = None
    if args.test_data:
        test = prepare(_read(args.test_data, config, args.sheet), text_field, label_field, options, config,
                       count_tokens)
        _refuse_if_blocked(test)
    name = args.name or suggest_dataset_name(Path(args.data).name)
    return save_dataset(studio, caller, name, prepared, SplitPlan.from_config(config.split), test=test)


def _save_tagged(studio: Studio, caller: Caller, table: RawTable, tag_format: TagFormat,
                 args: argparse.Namespace) -> DatasetVersion:
    """Read, check, split (iterative stratification) and save a multi-label file (and its separate test file)."""
    fixes = {f.strip() for f in args.fix.split(",") if f.strip()}
    if fixes - {"normalise_labels"}:
        raise CliError(f"--fix {', '.join(sorted(fixes - {'normalise_labels'}))} applies to single-label data; for "
                       "tags only normalise_labels (merge tag spellings): rows without text or tag are left out "
                       "(--keep-untagged keeps those without a tag)")
    config = studio.config
    count_tokens = token_counter(config.model.name)
    text_field = args.text_field or guess_columns(table).text
    if text_field not in table.columns:
        raise CliError(f"{table.source}: no text field {text_field!r}; fields found: {', '.join(table.columns)}")
    merge = "normalise_labels" in fixes
    prepared = prepare_tags(table, text_field, tag_format, config, keep_untagged=args.keep_untagged,
                            merge_spellings=merge, count_tokens=count_tokens)
    _refuse_if_blocked(prepared)
    test = None
    if args.test_data:
        test = prepare_tags(_read(args.test_data, config, args.sheet), text_field, tag_format, config,
                            keep_untagged=args.keep_untagged, merge_spellings=merge, count_tokens=count_tokens)
        _refuse_if_blocked(test)
    name = args.name or suggest_dataset_name(Path(args.data).name)
    return save_tagged_dataset(studio, caller, name, prepared, SplitPlan.from_config(config.split), test=test)


def _print_run(studio: Studio, record: RunRecord) -> None:
    """One JSON line per trained run: what ran, where it is, how it did."""
    print(json.dumps({
        "model": record.kind, "run_id": record.run_id, "state": record.state.value,
        "run_folder": str(run_location(studio, Caller.command_line(), record.run_id)),
        "test_metrics": record.test_metrics, "validation_metrics": record.validation_metrics,
        "cv_metrics": record.cv_metrics,
        "error": record.error, "train_seconds": record.durations.get("train_s"),
        "recipe": record.recipe["summary"] if record.recipe else None,
    }), flush=True)


def command_train_run(args: argparse.Namespace) -> int:
    """Train one existing run; a running one is taken as claimed by the worker that launched this command."""
    studio, caller = _studio(args), Caller.command_line()
    kind = run(studio, caller, args.run_id).kind
    final = train_queued_run(studio, caller, args.run_id, on_change=_progress_printer(kind))
    _print_run(studio, final)
    return 0 if final.state is RunState.SUCCEEDED else 1


def _texts_and_ids(table: RawTable, text_field: str | None, id_field: str | None) -> tuple[list[Any], list[Any]]:
    """Each row's text (the named or guessed field) and id (the named field, ``id`` if present, else its line)."""
    text_field = text_field or guess_columns(table).text
    if text_field not in table.columns:
        raise CliError(f"{table.source}: no text field {text_field!r}; fields found: {', '.join(table.columns)}")
    id_field = id_field or ("id" if "id" in table.columns else None)
    if id_field is not None and id_field not in table.columns:
        raise CliError(f"{table.source}: no id field {id_field!r}; fields found: {', '.join(table.columns)}")
    return ([r.get(text_field) for r in table.records],
            [r.get(id_field) if id_field else line for r, line in zip(table.records, table.lines)])


def command_topics(args: argparse.Namespace) -> int:
    studio, caller = _studio(args), Caller.command_line()
    table = _read(args.data, studio.config, args.sheet)
    texts, row_ids = _texts_and_ids(table, args.text_field, args.id_field)
    grouped = [i for i, text in enumerate(texts) if isinstance(text, str) and text.strip()]
    found = find_topics(studio, caller, [texts[i] for i in grouped], table.source,
                        GRANULARITY_OPTIONS[args.granularity],
                        progress=lambda done, total: print(f"embedded {done}/{total}", file=sys.stderr),
                        place_left_out=args.place_unassigned)
    topic_of = {row: n for n, row in enumerate(grouped)}
    for row, (row_id, line) in enumerate(zip(row_ids, table.lines)):
        n = topic_of.get(row)
        said = ({"status": "no text"} if n is None else {"placed": True} if n in found.placed else {})
        print(json.dumps({"id": row_id, "line": line, "topic": None if n is None else found.assignment[n],
                          "membership": None if n is None else round(found.membership[n], 4), **said},
                         ensure_ascii=False), flush=True)
    print(json.dumps({"rows": len(texts), "grouped": len(grouped), "unassigned": found.unassigned,
                      "placed": len(found.placed),
                      "smallest_topic": found.smallest_topic, "seconds": round(found.seconds, 1),
                      "topics": [{"topic": t.id, "name": t.name, "size": t.size, "keywords": t.keywords,
                                  "typical": t.typical} for t in found.topics]}, ensure_ascii=False), flush=True)
    return 0


def _describe(studio: Studio, caller: Caller, version: DatasetVersion, path: str) -> None:
    """``--descriptions``: one JSON object of label → sentence, kept for the version's dataset."""
    try:
        written = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(f"--descriptions: there is no file {path}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CliError(f"--descriptions {path}: not JSON ({error})") from None
    if not isinstance(written, dict) or not all(isinstance(v, str) for v in written.values()):
        raise CliError(f'--descriptions {path}: expected one JSON object of label → sentence, such as '
                       f'{{"{version.labels[0]}": "what it covers, in one sentence"}}')
    try:
        kept = describe_labels(studio, caller, version.ref, written)
    except DatasetError as error:
        raise CliError(f"--descriptions {path}: {error}") from None
    print(f"kept the descriptions of {len(kept)} of {len(version.labels)} labels of {version.name}", file=sys.stderr)


#: How often ``predict --as-job`` looks at its job (seconds).
JOB_POLL_S = 1.0


def _job_output(source: Path, output: Path) -> None:
    """Refuse, before anything is queued, an output a job cannot write (it writes the input's own format)."""
    wanted = "jsonl" if source.suffix.lower() in (".jsonl", ".ndjson", ".json") else "csv"
    if output.suffix.lower() != f".{wanted}":
        raise CliError(f"--output must be a .{wanted} file for {source.name}: a job writes the input's columns "
                       f"with the predictions beside them, as {'JSON lines' if wanted == 'jsonl' else 'CSV'}")


def _predict_as_job(args: argparse.Namespace) -> int:
    """``predict --as-job``: the file queued as a file job (core.services.file_jobs), followed on standard error
    until it is done, its result written to --output; interrupted, the job goes on and its id is said."""
    studio, caller = _studio(args), Caller.command_line()
    source, output = Path(args.input), Path(args.output)
    if args.model != PUBLISHED:
        raise CliError("--as-job classifies with the published model: pass --model published (publish the run "
                       "first: python -m core publish --model RUN)")
    if not args.text_field:
        raise CliError("--as-job needs --text-field: the file is read by a worker, a piece at a time")
    if args.id_field:
        raise CliError("--as-job keeps every column of the input, ids included: leave out --id-field")
    if not source.is_file():
        raise CliError(f"{source}: no such file")
    _job_output(source, output)
    job = classify_file_later(studio, caller, source, source.name, args.text_field, args.threshold, args.sheet)
    waiting = "" if workers_online(studio, caller) else " (no worker is running: start one with python -m core worker)"
    print(f"[job] {job.job_id}: queued{waiting}", file=sys.stderr, flush=True)
    said = ""
    try:
        while not (progress := file_job(studio, caller, job.job_id)).job.state.finished:
            now = f"[job] {progress.job.stage}" + (f": {progress.rows_done:,} of {progress.job.rows:,} rows"
                                                   if progress.job.rows else "")
            if now != said:
                print(now, file=sys.stderr, flush=True)
                said = now
            time.sleep(JOB_POLL_S)
    except KeyboardInterrupt:
        print(f"[job] {job.job_id} goes on in the background; its result is on the Classify page", file=sys.stderr)
        return 130
    final = progress.job
    if final.state is not JobState.DONE:
        raise CliError(f"{final.name} {final.state.value}" + (f": {final.error}" if final.error else ""))
    result, _ = file_job_result(studio, caller, job.job_id)
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.partial")
    shutil.copyfile(result, temporary)
    temporary.replace(output)
    print(json.dumps({"job_id": final.job_id, "run_id": final.run_id, "rows": final.rows, "output": str(output),
                      "skipped_lines": final.skipped_lines, "review_threshold": final.threshold,
                      "needs_review": final.summary.get("needs_review", 0)}), flush=True)
    return 0


def command_predict(args: argparse.Namespace) -> int:
    if args.as_job:
        return _predict_as_job(args)
    studio, caller = _studio(args), Caller.command_line()
    output = Path(args.output)
    if output.suffix.lower() != ".jsonl":
        raise CliError(f"--output must be a .jsonl file, got {output.name}")
    table = _read(args.input, studio.config, args.sheet)
    texts, row_ids = _texts_and_ids(table, args.text_field, args.id_field)
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise CliError(f"--threshold must be between 0 and 1, got {args.threshold}")
    _run_id(studio, args.model)  # says how to publish when nothing is
    classified = classify(studio, caller, texts, args.threshold, file_name=table.source,
                          progress=lambda done, total: print(f"{done}/{total}", file=sys.stderr),
                          run=None if args.model == PUBLISHED else args.model)
    record, results = classified.record, classified.predictions
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.partial")
    with temporary.open("w", encoding="utf-8") as handle:
        for row_id, line, result in zip(row_ids, table.lines, results):
            handle.write(json.dumps({"id": row_id, "line": line, **result.to_dict()}, ensure_ascii=False) + "\n")
    temporary.replace(output)
    print(json.dumps({"run_id": record.run_id, "rows": len(results), "output": str(output),
                      "skipped_lines": table.skipped, "review_threshold": classified.threshold,
                      "needs_review": sum(r.needs_review for r in results)}), flush=True)
    return 0


def command_evaluate(args: argparse.Namespace) -> int:
    studio, caller = _studio(args), Caller.command_line()
    run = _run_id(studio, args.model)
    if args.data and run_gives_tags(studio, caller, run):
        table = _read(args.data, studio.config, args.sheet)
        tagged, record = evaluate_tag_file(studio, caller, run, table,
                                           *_fields(table, args.text_field, args.label_field))
        print(json.dumps({"run_id": record.run_id, "examples": tagged.examples, **tagged.metrics,
                          "per_tag": tagged.per_tag}), flush=True)
        return 0
    if args.data:
        table = _read(args.data, studio.config, args.sheet)
        evaluation, record = evaluate_file(studio, caller, run, table,
                                           *_fields(table, args.text_field, args.label_field))
    else:
        if args.text_field or args.label_field:
            raise CliError("--text-field and --label-field need --data")
        evaluation, record = evaluate_run(studio, caller, run)
    print(json.dumps({"run_id": record.run_id, **evaluation.summary()}), flush=True)
    print(evaluation.report_text, flush=True)
    return 0


def command_publish(args: argparse.Namespace) -> int:
    studio = _studio(args)
    caller = Caller(Actor(args.by, Role.ADMIN), None, "cli")  # --by defaults to $USER
    publication = publish_run(studio, caller, args.model)
    print(json.dumps(asdict(publication)), flush=True)
    return 0


def _decisions(path: str) -> tuple[LabelDecision, ...]:
    """Read --apply's JSON lines; 'keep' lines are skipped, a relabel without 'to' takes 'suggested' (so the
    check's own output lines, whose 'label' is the label as it is, can be passed back as they are)."""
    decisions = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if row.get("action", "relabel") == "keep" or ("line" not in row and "rows" in row):
                continue  # kept, or the check's own summary line
            decisions.append(LabelDecision(int(row["line"]), row.get("action", "relabel"),
                                           row.get("to", row.get("suggested"))))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise CliError(f"{path}, line {number}: not a decision ({error}); expected e.g. "
                           '{"line": 12, "action": "relabel", "to": "billing"}') from error
    return tuple(decisions)


def _apply_label_decisions(args: argparse.Namespace, studio: Studio, caller: Caller) -> int:
    saved = revise_labels(studio, caller, args.dataset, _decisions(args.apply), edit_test_split=args.edit_test_split)
    step = saved.meta["cleaning_steps"][-1]
    print(json.dumps({"saved": saved.ref, "relabelled": step["labels_changed"], "dropped": step["rows_removed"],
                      "test_split_edits": len(saved.test_split_edits)}), flush=True)
    return 0


def command_labels(args: argparse.Namespace) -> int:
    studio, caller = _studio(args), Caller.command_line()
    if (args.apply or args.edit_test_split) and not args.dataset:
        raise CliError("--apply and --edit-test-split work on a saved version: pass --dataset NAME/vN")
    if args.apply:
        return _apply_label_decisions(args, studio, caller)
    if args.near_copies:
        return _print_near_copies(args, studio, caller)
    progress = lambda done, folds: print(f"fold {done}/{folds}", file=sys.stderr)  # noqa: E731
    if args.dataset:
        check = check_version_labels(studio, caller, args.dataset, progress)
    else:
        check = check_labels(studio, caller, _prepared_for_check(args, studio), progress=progress)
    for issue in check.issues:
        print(json.dumps(asdict(issue), ensure_ascii=False), flush=True)
    print(json.dumps({"rows": check.rows, "suspicious": len(check.issues), "folds": check.folds,
                      "seconds": round(check.seconds, 1)}), flush=True)
    return 0


def _prepared_for_check(args: argparse.Namespace, studio: Studio) -> Preparation:
    table = _read(args.data, studio.config, args.sheet)
    prepared = prepare(table, *_fields(table, args.text_field, args.label_field), _cleaning(args.fix), studio.config)
    _refuse_if_blocked(prepared)
    return prepared


def _print_near_copies(args: argparse.Namespace, studio: Studio, caller: Caller) -> int:
    """One JSON line per near-copy group ("near_copies") and per outlier ("outlier"), then a summary."""
    progress = lambda done, total: print(f"embedded {done}/{total}", file=sys.stderr)  # noqa: E731
    found = (find_version_copies(studio, caller, args.dataset, progress) if args.dataset
             else find_copies(studio, caller, _prepared_for_check(args, studio), progress))
    for group in found.near_copies:
        print(json.dumps({"near_copies": [{"line": line, "text": text, "label": label} for line, text, label
                                          in zip(group.lines, group.texts, group.labels)],
                          "labels_differ": group.conflicting}, ensure_ascii=False), flush=True)
    for outlier in found.outliers:
        print(json.dumps({"outlier": asdict(outlier)}, ensure_ascii=False), flush=True)
    print(json.dumps({"rows": found.rows, "near_copy_groups": len(found.near_copies), "outliers": len(found.outliers),
                      "seconds": round(found.seconds, 1)}), flush=True)
    return 0


def command_worker(args: argparse.Namespace) -> int:
    """Train queued runs until stopped."""
    serve_as_worker(_config(args), args.config)
    return 0


def command_api(args: argparse.Namespace) -> int:
    """Serve the HTTP API (uvicorn) until interrupted."""
    import uvicorn

    from core.entrypoints.api import create_app

    studio = _studio(args)
    settings = studio.config.api
    workers = args.workers or settings.workers
    if workers < 1:
        raise CliError(f"--workers must be at least 1, got {workers}")
    if args.config:  # the worker processes read the same file (the workspace travels the same way, see _config)
        os.environ[CONFIG_ENV_VAR] = str(Path(args.config).resolve())
    host, port = args.host or settings.host, args.port or settings.port
    if workers == 1:
        uvicorn.run(create_app(studio), host=host, port=port, log_level="warning")
        return 0
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config("core.entrypoints.api:from_environment", factory=True, host=host, port=port,
                            workers=workers, log_level="warning")
    # The listening socket made as TCP (uvicorn's own leaves the protocol unset, so asyncio never turns Nagle off
    # on its connections and every small call waits ~40 ms for a delayed ACK: measured 48 ms against 3 ms).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listening.bind((host, port))
    listening.set_inheritable(True)
    Multiprocess(config, sockets=[listening]).run()
    return 0


COMMANDS = {"train": command_train, "predict": command_predict, "evaluate": command_evaluate,
            "publish": command_publish, "users": command_users, "api": command_api, "labels": command_labels,
            "train-run": command_train_run, "worker": command_worker, "topics": command_topics}
#: The commands that train: under torchrun rank 0 runs them and the other processes train with it.
RANKED_COMMANDS = frozenset({"train", "train-run"})
#: ``--granularity`` of ``topics``: core.models.topics.GRANULARITY's words as options ("fewer, broader" →
#: fewer-broader).
GRANULARITY_OPTIONS = {words.replace(", ", "-").replace(" ", "-"): factor for words, factor in GRANULARITY.items()}
#: Mistakes and refusals printed as one line with exit status 2.
USER_ERRORS = (CliError, ConfigError, IngestError, DatasetError, RunError, ModelFileError, EvaluationError,
               PublishError, AuthError, NothingPublished, LabelCheckError, TopicError, FileJobError)
Command = Callable[[Any], int]


#: Options that would put a password on the command line (and in the shell's history); never echoed back.
PASSWORD_OPTIONS = ("--password", "--pass", "--pw", "-p")


def _refuse_password_arguments(argv: Sequence[str]) -> None:
    """Passwords come from a prompt or stdin only; an error message must not repeat one."""
    if any(arg.split("=", 1)[0] in PASSWORD_OPTIONS for arg in argv):
        raise CliError("passwords are not taken as options (they would stay in the shell history and the process "
                       "list): type it at the prompt, or pipe it on standard input")


def _parse(argv: list[str]) -> argparse.Namespace:
    """The arguments; for ``users``, a stray argument is not echoed in the error (it may be a password)."""
    try:
        return _parser().parse_args(argv)
    except CliError as error:
        if argv[:1] == ["users"] and str(error).startswith("unrecognized arguments"):
            raise CliError("unrecognized arguments, not repeated here as one may be a password (see --help)") from None
        raise


def _run(command: Command, argument: Any) -> tuple[int, str]:
    """The command's exit status and, when it stopped on a mistake or an interrupt, the line printed for it."""
    try:
        return command(argument), ""
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2, str(error)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130, "interrupted"


def _follow() -> int:
    """A process other than rank 0: train the runs rank 0 calls it to, then exit with rank 0's status."""
    stop = processes.follow_main()
    if stop.exit_code:
        print(f"error: rank {processes.rank()}: the main process (rank 0) stopped with exit status "
              f"{stop.exit_code}: {stop.message or 'see its output'}", file=sys.stderr)
    return stop.exit_code


def _lead(command: Command, args: argparse.Namespace) -> int:
    """Rank 0: run the command alone (the others train its runs with it), then tell them how it ended."""
    stop_followers = processes.stop_followers
    try:
        code, message = _run(command, args)
    except BaseException as error:  # a traceback follows here; the others still learn why and exit
        stop_followers(1, f"{type(error).__name__}: {error}")
        raise
    stop_followers(code, message)
    return code


def _dispatch(argv: list[str]) -> int:
    """Parse and run one command; under torchrun, the training commands as rank 0 or as one of the others."""
    _refuse_password_arguments(argv)
    args = _parse(argv)
    command = COMMANDS[args.command]
    if args.command not in RANKED_COMMANDS or not processes.is_distributed():
        return command(args)
    with processes.process_group():
        return _lead(command, args) if processes.is_main() else _follow()


def main(argv: Sequence[str] | None = None) -> int:
    return _run(_dispatch, list(sys.argv[1:] if argv is None else argv))[0]
