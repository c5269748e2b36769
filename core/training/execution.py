"""Executing one run: data from the dataset version, fit, test, save atomically.

The training worker, the command line (also under torchrun) and the tests all call
:func:`execute_run`; nothing here knows about queues or pages.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from contextlib import contextmanager
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from core.platform import distributed
from core.models.classifiers import (
    ModelSpec,
    Progress, ProgressCallback, TextClassifier, TrainingCancelled, TrainingData,
)
from core.training.model_card import write_model_card
from core.models.model_kinds import model_kinds
from core.platform.config import AppConfig, ModelConfig
from core.data.dataset_versions import DatasetVersion, load_dataset_version
from core.evaluation.scoring import (
    VALIDATION_SCORES_FILE, Evaluation, ScoredSet, evaluate, save_scores, score_split,
)
from core.evaluation.cross_validation import (
    FoldReport, can_cross_validate, cross_validate, cv_metrics, save_out_of_fold,
)
from core.evaluation.tag_scoring import VALIDATION_TAG_SCORES_FILE, evaluate_tags, save_tag_scores
from core.models.pretrained import model_fingerprint, token_counter
from core.training.recipe import DataProfile, Recipe, plan_recipe
from core.training.runs import (
    HEARTBEAT_S, MODEL_DIR, RunError, RunHandle, RunRecord, RunState, now_iso, process_owner, run_folder,
)
from core.data.multilabel_split import multilabel_split
from core.data.split import SplitPlan, stratified_split
from core.platform.workspace import Workspace

log = logging.getLogger(__name__)


def training_data(version: DatasetVersion, max_train_examples: int | None = None, seed: int = 0) -> TrainingData:
    """The train and validation splits as ids (tag-id lists for a multi-label version); optionally a stratified
    sample of the train split."""
    version.require_labels()
    frame = version.frame()
    train = frame[frame["split"] == "train"]
    ids = "tag_ids" if version.multi_label else "label_id"
    if max_train_examples and len(train) > max_train_examples:
        keep = SplitPlan(1 - max_train_examples / len(train), max_train_examples / len(train), 0.0, seed)
        marks = (multilabel_split(train["text"].tolist(), train["tags"].tolist(), keep) if version.multi_label
                 else stratified_split(train["text"].tolist(), train["label"].tolist(), keep))
        train = train[[m == "validation" for m in marks]]
    validation = frame[frame["split"] == "validation"]
    return TrainingData(version.labels, train["text"].tolist(), train[ids].tolist(),
                        validation["text"].tolist(), validation[ids].tolist(), multi_label=version.multi_label)


#: Texts whose token lengths are counted for the recipe's profile (the median needs no more).
PROFILE_TOKEN_SAMPLE = 2000


def version_profile(version: DatasetVersion, config: AppConfig,
                    max_train_examples: int | None = None) -> tuple[DataProfile, list[str]]:
    """The training split's shape, as the recipe reads it, and its texts (to time training on)."""
    data = training_data(version, max_train_examples, config.training.seed)
    lengths = token_counter(config.model.name)(data.train_texts[:PROFILE_TOKEN_SAMPLE])
    # a multi-label version's "labels" are its tags, each counted on the texts that carry it
    counted = [i for row in data.train_labels for i in row] if data.multi_label else data.train_labels
    return (DataProfile.of(counted, len(data.validation_texts), lengths, examples=len(data.train_texts),
                           multi_label=data.multi_label), data.train_texts)


def plan_for_version(version: DatasetVersion, preset: str, config: AppConfig, max_train_examples: int | None = None,
                     speed: float | None = None) -> Recipe:
    """The transformer's recipe for a dataset version (and sample size), preset and training speed."""
    profile, _ = version_profile(version, config, max_train_examples)
    return plan_recipe(profile, preset, config.training.goal(preset), speed)


SpeedMeter = Callable[[AppConfig, list[str], int], float]


def timed_plan(profile: DataProfile, texts: list[str], preset: str, config: AppConfig,
               measure: SpeedMeter | None = None) -> Recipe:
    """The recipe with this machine's training speed, timed on the data's own texts at the planned batch size."""
    if measure is None:
        from core.models.transformer import measure_training_throughput as measure
    goal = config.training.goal(preset)
    batch_size = plan_recipe(profile, preset, goal).hyperparameters.batch_size
    return plan_recipe(profile, preset, goal, measure(config, texts, batch_size))


def measured_plan(version: DatasetVersion, preset: str, config: AppConfig,
                  max_train_examples: int | None = None) -> Recipe:
    """The recipe for a dataset version with the speed measured here (a few seconds), as the CLI plans it."""
    profile, texts = version_profile(version, config, max_train_examples)
    return timed_plan(profile, texts, preset, config)


def split_evaluation(model: TextClassifier, version: DatasetVersion, split: str) -> tuple[Evaluation | None, ScoredSet]:
    """The model's scores and metrics on one split of its dataset version (None when the split is empty)."""
    scored = score_split(model, version, split)
    return (evaluate(scored) if scored.texts else None), scored


def friendly_error(error: BaseException) -> str:
    """A sentence an analyst can act on; the traceback goes to the log."""
    text = str(error) or type(error).__name__
    if isinstance(error, MemoryError) or "out of memory" in text.lower():
        return f"The machine ran out of memory ({text}). Try a smaller batch size or the Quick preset."
    if isinstance(error, OSError) and "No space left" in text:
        return "The disk is full; free some space (old runs can be deleted) and try again."
    return f"{type(error).__name__}: {text}"


class ProgressTracker:
    """Turns model progress into record updates with elapsed time and an ETA for the phase under way.

    Each phase (reading texts for the probe, training, …) has its own steps; the ETA is its
    remaining steps at the phase's average pace so far, measured from the phase's first report
    (time spent before it, e.g. loading the model, no longer inflates the first estimates).
    """

    def __init__(self, handle: RunHandle, clock: Callable[[], float] = time.monotonic) -> None:
        self.handle, self.clock, self.started = handle, clock, clock()
        self.phase: tuple[str, int] | None = None  # (message, total steps) of the phase under way
        self.phase_start = (0.0, 0)  # (time, step) of its first report

    def _eta(self, event: Progress, now: float) -> float | None:
        phase = (event.message or "training", event.total_steps)
        if phase != self.phase:
            self.phase, self.phase_start = phase, (now, event.step)
        began, first_step = self.phase_start
        done = event.step - first_step
        if done <= 0 or not event.total_steps or now <= began:
            return None
        return (now - began) / done * (event.total_steps - event.step)

    def __call__(self, event: Progress) -> None:
        now = self.clock()
        elapsed = now - self.started
        eta = self._eta(event, now)
        changes = dict(step=event.step, total_steps=event.total_steps, unit=event.unit, elapsed_s=round(elapsed, 1),
                       eta_s=None if eta is None else round(eta, 1))
        if event.epoch is not None:
            changes["epoch"] = round(event.epoch, 3)
        changes["message"] = event.message or "training"
        point = None
        if event.loss is not None:
            changes["loss"] = event.loss
            point = {"step": event.step, "epoch": event.epoch, "loss": event.loss}
        if event.eval_metrics is not None:
            point = {"step": event.step, "epoch": event.epoch,
                     **{f"validation_{k}": v for k, v in event.eval_metrics.items()}}
        self.handle.report(history=point, persist=True if event.eval_metrics else None, **changes)


def _save_model(model: TextClassifier, folder: Path, record: RunRecord) -> dict:
    """Write the model into a staging folder beside ``folder`` and rename it into place."""
    staging = folder.with_name(f".{folder.name}-staging")
    shutil.rmtree(staging, ignore_errors=True)
    card = model.save(staging)
    staging.rename(folder)
    return {**card, "path": MODEL_DIR}


@contextmanager
def heartbeat(handle: RunHandle, every_s: float = HEARTBEAT_S) -> Iterator[None]:
    """Write the run's heartbeat every ``every_s`` seconds while the body runs (a thread; stops with it)."""
    done = threading.Event()

    def beat() -> None:
        while True:
            handle.report(heartbeat_at=now_iso(), persist=True)
            if done.wait(every_s):
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{handle.run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def execute_run(workspace: Workspace, handle: RunHandle, config: AppConfig, stop: threading.Event) -> RunRecord:
    """Train, test and save the run behind ``handle``; always ends in a finished state. Under torchrun only rank 0
    runs this (it alone writes the record, tests and saves); the others train with it through :func:`follow_main`."""
    if not distributed.is_main():
        raise RunError("only rank 0 executes a run; the other processes follow it (core.training.execution.follow_main)")
    with heartbeat(handle, config.worker.heartbeat_s):
        return _execute_run(workspace, handle, config, stop)


#: The training settings a run freezes when it is queued (with the whole ``[model]`` section); the others (threads,
#: processes, checkpoint and logging cadence) belong to the machine that trains it.
FROZEN_TRAINING_SETTINGS = ("preset", "seed", "precision")


def run_config(record: RunRecord, config: AppConfig) -> AppConfig:
    """The configuration ``record`` trains under: the worker's machine settings, with everything that decides
    *what* is trained (model, max length, seed, precision) taken from the run's own record as it was queued,
    whatever configuration the worker was started with."""
    frozen = record.settings or {}
    model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
    model = ModelConfig(**{k: v for k, v in frozen.get("model", {}).items() if k in model_fields})
    training = {k: v for k, v in frozen.get("training", {}).items() if k in FROZEN_TRAINING_SETTINGS}
    return dataclasses.replace(config, model=model, training=dataclasses.replace(config.training, **training))


def _prepared(workspace: Workspace, record: RunRecord,
              config: AppConfig) -> tuple[DatasetVersion, TrainingData, TextClassifier]:
    """The run's dataset version and pre-trained model (each refused if it changed since the run was queued), its
    training data and a fresh model: what every process training the run starts from."""
    version = load_dataset_version(workspace, record.dataset_ref)
    if version.meta["fingerprint"] != record.dataset_fingerprint:
        raise RunError(f"dataset {record.dataset_ref} changed since the run was queued")
    kind = model_kinds()[record.kind]
    queued_with = (record.settings or {}).get("model_fingerprint")
    if kind.uses_pretrained and queued_with and model_fingerprint(config.model.name) != queued_with:
        raise RunError(f"the pre-trained model {config.model.name} changed since the run was queued (its files "
                       "differ from the ones recorded then): queue the run again to train on the model as it is now")
    data = training_data(version, record.max_train_examples, config.training.seed)
    model = kind(version.labels, kind.settings_from_record(record.hyperparameters), ModelSpec.of(config))
    return version, data, model


@dataclass(frozen=True)
class JoinRun:
    """Rank 0 to the other processes: train this run with me now (its record, workspace and configuration)."""

    record: RunRecord
    workspace: Workspace
    config: AppConfig


@dataclass(frozen=True)
class Stop:
    """Rank 0 to the other processes: nothing more to train; exit with this status (and why, when not 0)."""

    exit_code: int
    message: str = ""


def _trained_together(record: RunRecord) -> bool:
    """Whether every process trains this run (under torchrun, a data-parallel kind), not rank 0 alone."""
    return distributed.is_distributed() and model_kinds()[record.kind].data_parallel


def _fit_together(model: TextClassifier, data: TrainingData, folder: Path, progress: ProgressCallback,
                  stop: threading.Event) -> None:
    """The fit every process of a data-parallel run runs (checkpoints in the run's folder), all finishing together."""
    with distributed.all_ranks():
        model.fit(data, progress, stop, workdir=folder)


def _train_as_rank(order: JoinRun) -> None:
    """A process other than rank 0: the same data and model, the fit's collectives, nothing written or tested."""
    _, data, model = _prepared(order.workspace, order.record, order.config)
    _fit_together(model, data, run_folder(order.workspace, order.record.run_id), lambda event: None,
                  threading.Event())


def follow_main() -> Stop:
    """Processes other than rank 0: train each run rank 0 calls them to, until it says how the command ended."""
    while isinstance(order := distributed.share_from_main(None), JoinRun):
        _train_as_rank(order)
    return order


def stop_followers(exit_code: int, message: str = "") -> None:
    """Rank 0, at the end: tell the others how it ended (not when they are stuck in a failed fit: the launcher
    stops them once rank 0 exits non-zero)."""
    if distributed.is_distributed() and distributed.others_listening():
        distributed.share_from_main(Stop(exit_code, message))


def _cross_validation(model: TextClassifier, data: TrainingData, folder: Path, handle: RunHandle, config: AppConfig,
                      stop: threading.Event) -> dict:
    """A kind that trains in seconds, scored again by k-fold cross-validation on the train and validation splits
    (its out-of-fold scores kept beside the splits'); nothing for the others or where the data allows no folds."""
    folds = config.compare.cv_folds
    if not model.cross_validates or not can_cross_validate(data, folds):
        return {}
    started = time.monotonic()

    def report(fold: FoldReport) -> None:
        handle.report(message=f"cross-validating: fold {fold.fold} of {fold.folds}", step=fold.fold - 1,
                      total_steps=fold.folds, unit="fold", eta_s=None)

    scored = cross_validate(lambda: type(model)(model.label_names, model.settings, model.spec), data, folds,
                            config.training.seed, stop, report)
    save_out_of_fold(folder, scored)
    return {"cv_metrics": cv_metrics(scored, folds), "cv_s": round(time.monotonic() - started, 2)}


def _label_results(model: TextClassifier, version: DatasetVersion, folder: Path, handle: RunHandle,
                   config: AppConfig) -> dict:
    """A single-label model on the validation and test splits (the scores of both kept for the Evaluate page), and
    its serving variants checked on validation."""
    validation, validation_scores = split_evaluation(model, version, "validation")
    save_scores(folder, validation_scores, VALIDATION_SCORES_FILE)
    if validation_scores.texts:
        handle.report(message="timing the serving variants")
        check = model.precision_check(validation_scores.texts, validation_scores.y_true.tolist(),
                                      config.inference.max_accuracy_loss, config.inference.min_label_agreement,
                                      folder / MODEL_DIR)
        if check is not None:
            handle.report(inference=check.to_dict())
    test, test_scores = split_evaluation(model, version, "test")
    save_scores(folder, test_scores)
    return dict(validation_metrics=validation.metrics if validation else {},
                test_metrics=test.metrics if test else {}, test_per_class=test.per_class if test else [],
                test_texts_per_s=test_scores.texts_per_second or 0.0)


def _tag_results(model: TextClassifier, version: DatasetVersion, folder: Path) -> dict:
    """A multi-label model's tag sets on the validation and test splits, with its own thresholds (both kept: the
    test scores for the Evaluate page, the validation ones to compare runs text by text)."""
    validation, test = evaluate_tags(model, version, "validation"), evaluate_tags(model, version, "test")
    if validation is not None:
        save_tag_scores(folder, validation, VALIDATION_TAG_SCORES_FILE)
    if test is not None:
        save_tag_scores(folder, test)
    return dict(validation_metrics=validation.metrics if validation else {},
                test_metrics=test.metrics if test else {}, test_per_class=test.per_tag if test else [],
                test_texts_per_s=test.texts_per_second if test else 0.0)


def _execute_run(workspace: Workspace, handle: RunHandle, config: AppConfig, stop: threading.Event) -> RunRecord:
    record = handle.snapshot()
    folder = run_folder(workspace, record.run_id)
    started = time.monotonic()
    worker_config, config = config, run_config(record, config)
    if (config.model, config.training.seed) != (worker_config.model, worker_config.training.seed):
        log.info("run %s trains with its own settings (model %s, max length %d, seed %d), not this worker's "
                 "(model %s, max length %d, seed %d)", record.run_id, config.model.name, config.model.max_length,
                 config.training.seed, worker_config.model.name, worker_config.model.max_length,
                 worker_config.training.seed)
    if record.state is RunState.QUEUED:  # the command line's runs; a worker claims its own (queued → running) first
        handle.start(process_owner(), lease_s=config.worker.lease_s)
    try:
        version, data, model = _prepared(workspace, record, config)
        handle.report(train_examples=len(data.train_texts))
        if _trained_together(record):
            distributed.share_from_main(JoinRun(record, workspace, config))  # the others start the same fit now
            _fit_together(model, data, folder, ProgressTracker(handle), stop)
        else:
            model.fit(data, ProgressTracker(handle), stop, workdir=folder)
        train_seconds = time.monotonic() - started
        if stop.is_set():
            raise TrainingCancelled()
        model.tune_thresholds(data)  # a multi-label model's per-tag thresholds, on the validation split
        if version.multi_label and (separator := (version.meta.get("tag_format") or {}).get("separator")):
            model.fit_info["tag_separator"] = separator  # its classified files join tags the same way
        handle.report(model=_save_model(model, folder / MODEL_DIR, record))  # its serving variants are timed from it
        handle.report(message="testing")
        results = (_tag_results(model, version, folder) if version.multi_label
                   else _label_results(model, version, folder, handle, config))
        speed = results.pop("test_texts_per_s")
        cross_validated = _cross_validation(model, data, folder, handle, config, stop)
        cv_seconds = {"cv_s": cross_validated.pop("cv_s")} if cross_validated else {}
        results = dict(
            **results, **cross_validated, fit_info={k: v for k, v in model.fit_info.items() if k != "log_history"},
            durations={"train_s": round(train_seconds, 2), **cv_seconds,
                       "total_s": round(time.monotonic() - started, 2), "test_texts_per_s": round(speed, 1)},
        )
        write_model_card(folder / MODEL_DIR, dataclasses.replace(handle.snapshot(), **results, finished_at=now_iso()))
        # before the run says it succeeded: whoever sees "succeeded" finds the folder final (no checkpoints)
        shutil.rmtree(folder / "checkpoints", ignore_errors=True)
        handle.succeed(**results, step=max(handle.snapshot().total_steps, 1),
                       total_steps=max(handle.snapshot().total_steps, 1), eta_s=0.0)
    except TrainingCancelled:
        # before the run says how it ended, as for a success: whoever sees "cancelled" finds no checkpoints
        shutil.rmtree(folder / "checkpoints", ignore_errors=True)
        why = getattr(stop, "interrupted_because", None)
        handle.interrupt(why) if why else handle.cancel()
    except Exception as error:  # a failed run is recorded, never lost
        log.exception("run %s failed", record.run_id)
        shutil.rmtree(folder / "checkpoints", ignore_errors=True)
        handle.fail(friendly_error(error))
    finally:  # however it ended, nothing resumes from checkpoints (a retry is a new run): hundreds of MB freed
        shutil.rmtree(folder / "checkpoints", ignore_errors=True)
    return handle.snapshot()


