"""Serving the published model: one shared predictor, reloaded when another run is published.

Every run is served through its model's ``score``: for transformers the fast
path (whole-list tokenisation, length-grouped batches, ``inference_mode``) at the
reduced precision that passed its accuracy check. The tests compare it with the
plain Hugging Face ``pipeline``; the benchmarks measure the difference.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from core.models.classifiers import TextClassifier
from core.platform.config import AppConfig, ClassifyConfig
from core.evaluation.scoring import Evaluation
from core.platform.hardware import configure_cpu_threads
from core.models.predict import Predictor
from core.serving.batching import MicroBatcher
from core.serving.publishing import current_publication
from core.training.runs import RunRecord
from core.models.precision import RETIRED, PrecisionCheck, this_cpu
from core.training.finished import finished_run, load_run_model
from core.training.runs import run_folder
from core.evaluation.scoring import VALIDATION_SCORES_FILE, load_scores
from core.platform.workspace import Workspace, read_json, write_json_atomic

#: Serving variants timed again on a machine whose CPU is not the one that timed them when the run was saved.
SERVING_CHECKS_DIR = "serving_checks"


def serving_precision(record: RunRecord, config: AppConfig, check: PrecisionCheck | None = None) -> str:
    """The variant a run is served with: the configured one, or for ``auto`` the choice of ``check`` (default:
    the check made when the run was saved)."""
    from core.models.model_kinds import model_kinds

    kind = model_kinds().get(record.kind)
    if kind is None or kind.precisions == ("fp32",):
        return "fp32"
    if config.inference.precision != "auto":
        return config.inference.precision
    check = check or PrecisionCheck.from_dict(record.inference)
    return "fp32" if check is None or check.chosen in RETIRED else check.chosen


def _checks_here(workspace: Workspace, run_id: str) -> Path:
    return workspace.root / SERVING_CHECKS_DIR / f"{run_id}.json"


def serving_check(workspace: Workspace, record: RunRecord) -> PrecisionCheck | None:
    """The check that decides how a run serves on this machine: one made here (at publish) when the run's own was
    timed on another CPU, else the run's own."""
    own = PrecisionCheck.from_dict(record.inference)
    if own is None or own.cpu in ("", this_cpu()) or not _checks_here(workspace, record.run_id).exists():
        return own
    return PrecisionCheck.from_dict(read_json(_checks_here(workspace, record.run_id)).get(this_cpu())) or own


def check_here(workspace: Workspace, record: RunRecord, config: AppConfig) -> PrecisionCheck | None:
    """Time the serving variants again on this machine when the run's were timed on another CPU (its speeds, and
    so its choice, may not hold here), on the run's validation texts; kept beside the run's, per CPU. None when
    there is nothing to do."""
    own = PrecisionCheck.from_dict(record.inference)
    if own is None or own.cpu in ("", this_cpu()) or serving_check(workspace, record).cpu == this_cpu():
        return None  # timed here already
    scored = load_scores(run_folder(workspace, record.run_id), VALIDATION_SCORES_FILE)
    if scored is None or not scored.texts:
        return None
    configure_cpu_threads(config.training.cpu_threads)
    model, _ = load_run_model(workspace, record.run_id, config)
    _, folder = finished_run(workspace, record.run_id)
    check = model.precision_check(scored.texts, scored.y_true.tolist(), config.inference.max_accuracy_loss,
                                  config.inference.min_label_agreement, folder)
    if check is None:
        return None
    path = _checks_here(workspace, record.run_id)
    path.parent.mkdir(exist_ok=True)
    write_json_atomic(path, {**(read_json(path) if path.exists() else {}), this_cpu(): check.to_dict()})
    return check


def serving_model(workspace: Workspace, run: str | Path, config: AppConfig) -> tuple[TextClassifier, RunRecord]:
    """Any finished run's model, with the serving variant that passed its check (on this machine's CPU)."""
    configure_cpu_threads(config.training.cpu_threads)  # the same thread setting as training
    model, record = load_run_model(workspace, run, config)
    model.use_precision(serving_precision(record, config, serving_check(workspace, record)))
    return model, record


def predictor_for_run(workspace: Workspace, run: str | Path, config: AppConfig,
                      threshold: float = 0.0) -> tuple[Predictor, RunRecord]:
    """A predictor for any finished run: the fast path, at the reduced precision that passed its check."""
    model, record = serving_model(workspace, run, config)
    return Predictor.for_model(model, threshold, config.classify.chunk_size), record


@dataclass(frozen=True)
class ReviewThreshold:
    """The review threshold suggested for a run, and in words where it comes from."""

    value: float
    note: str


def suggested_threshold(evaluation: Evaluation | None, settings: ClassifyConfig) -> ReviewThreshold:
    """The lowest threshold (not below the floor) at which the kept test texts reach the target accuracy.

    One rule for the Evaluate and the Classify page: a test split too small to
    judge, or a target never reached, falls back to the configured threshold.
    """
    fallback = settings.review_threshold
    if evaluation is None:
        return ReviewThreshold(fallback, f"This run has no test scores, so the default threshold {fallback:.2f} "
                                         "applies.")
    if evaluation.examples < settings.min_test_texts:
        return ReviewThreshold(fallback, f"The test split has only {evaluation.examples:,} texts, too few to set a "
                                         f"threshold from (at least {settings.min_test_texts:,} are needed); the "
                                         f"default {fallback:.2f} applies.")
    for point in evaluation.threshold_curve:
        if point["threshold"] < settings.min_review_threshold - 1e-9 or not point["share_kept"]:
            continue
        if point["accuracy_kept"] is not None and point["accuracy_kept"] >= settings.target_accuracy:
            return ReviewThreshold(float(point["threshold"]), (
                f"Suggested from the test split: at {point['threshold']:.2f} the model decides alone on "
                f"{point['share_kept']:.0%} of {evaluation.examples:,} test texts with accuracy "
                f"{point['accuracy_kept']:.1%} (target {settings.target_accuracy:.0%})."))
    return ReviewThreshold(fallback, f"No threshold gets the test texts the model keeps to "
                                     f"{settings.target_accuracy:.0%} accuracy; the default {fallback:.2f} applies.")


class PublishedModel:
    """The predictor of the currently published run, shared by every session, reloaded on publish."""

    def __init__(self, workspace: Workspace, config: AppConfig) -> None:
        self.workspace, self.config = workspace, config
        self._lock = threading.Lock()
        self._loaded: tuple[str, TextClassifier, Predictor, RunRecord] | None = None
        self._batcher: tuple[Predictor, MicroBatcher] | None = None
        self.loads = 0  # how many times a model was (re)loaded; the tests read it

    def current(self) -> tuple[Predictor, RunRecord] | None:
        """The published run's predictor (threshold 0), loading it only when the publication changed."""
        loaded = self._load()
        return None if loaded is None else (loaded[2], loaded[3])

    def current_model(self) -> tuple[TextClassifier, RunRecord] | None:
        """The published run's model itself (to explain a prediction), loaded as for ``current``."""
        loaded = self._load()
        return None if loaded is None else (loaded[1], loaded[3])

    def batched(self) -> tuple[MicroBatcher, RunRecord] | None:
        """The published run's predictor behind a micro-batcher (``[api] micro_batching``): concurrent calls scored
        in one pass."""
        loaded = self._load()
        if loaded is None:
            return None
        with self._lock:
            if self._batcher is None or self._batcher[0] is not loaded[2]:
                settings = self.config.api
                self._batcher = (loaded[2], MicroBatcher(loaded[2].predict, settings.batch_wait_ms / 1000,
                                                         settings.batch_max_texts))
            return self._batcher[1], loaded[3]

    def _load(self) -> tuple[str, TextClassifier, Predictor, RunRecord] | None:
        publication = current_publication(self.workspace)
        if publication is None:
            return None
        with self._lock:
            if self._loaded is None or self._loaded[0] != publication.run_id:
                model, record = serving_model(self.workspace, publication.run_id, self.config)
                predictor = Predictor.for_model(model, 0.0, self.config.classify.chunk_size)
                self._loaded = (publication.run_id, model, predictor, record)
                self.loads += 1
            return self._loaded
