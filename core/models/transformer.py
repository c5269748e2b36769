"""Fine-tuning a pre-trained transformer with the Hugging Face ``Trainer``.

One straight pipeline: load the model with a fresh classification head sized
from the label map, tokenise (truncation at ``max_length``, dynamic padding per
batch, length-grouped batches), train with evaluation and a checkpoint every
epoch on the validation split, keep the best by macro-F1, stop early when it
stops improving. Progress and cancellation go through a ``TrainerCallback``.
The saved folder is plain ``save_pretrained`` output, so
``pipeline("text-classification", model=folder)`` loads it anywhere.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from scipy.special import expit, softmax
from sklearn.exceptions import NotFittedError

from core.models.classifiers import (
    ModelSpec, Progress, ProgressCallback, TextClassifier, TrainingCancelled, TrainingData,
)
from core.platform.distributed import world_size
from core.platform.config import AppConfig
from core.platform.hardware import Hardware, detect_hardware
from core.models.encoder_head import (
    append_mean_pooling_layer, classification_layer, fit_probe, fit_tag_probe, head_features, load_probe_into,
    supports_mean_pooling,
)
from core.models.metrics import headline_metrics
from core.models.multilabel import TAG_MATRIX_DTYPE, indicator, multilabel_metrics
from core.models.precision import ONNX_PRECISIONS, PRECISIONS, PrecisionCheck, check_precisions, reduced_copy
from core.models.epoch_budget import EpochPlan, budget_callback, budget_trainer
from core.models.runtimes import OnnxLogits, export_onnx, onnx_files, onnx_runtime_installed
from core.models.pretrained import resolve_model_source

log = logging.getLogger(__name__)
PREDICT_BATCH = 32


def quiet_libraries() -> None:
    """Keep Hugging Face progress bars and notices out of the app's and the CLI's output."""
    import datasets
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    datasets.utils.logging.set_verbosity_error()


def _progress_callback(progress: ProgressCallback, stop: threading.Event):
    """A TrainerCallback that forwards progress and turns the stop signal into a clean stop."""
    from transformers import TrainerCallback

    class ForwardProgress(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            progress(Progress(state.global_step, state.max_steps, epoch=state.epoch))
            if stop.is_set():  # no evaluation or checkpoint after a cancel: stop here
                raise TrainingCancelled()

        def on_prediction_step(self, args, state, control, **kwargs):
            if stop.is_set():  # a validation pass under way stops within one batch
                raise TrainingCancelled()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                progress(Progress(state.global_step, state.max_steps, epoch=state.epoch, loss=float(logs["loss"])))

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if metrics:
                clean = {k.removeprefix("eval_"): float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
                progress(Progress(state.global_step, state.max_steps, epoch=state.epoch, eval_metrics=clean))

    return ForwardProgress()


def _compute_metrics(n_labels: int, multi_label: bool = False):
    def compute(prediction) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        if multi_label:  # each tag's sigmoid at 0.5 (the per-tag thresholds are tuned after training)
            given = (np.asarray(logits) >= 0).astype(TAG_MATRIX_DTYPE)
            return multilabel_metrics(np.asarray(prediction.label_ids).round().astype(TAG_MATRIX_DTYPE), given)
        return headline_metrics(prediction.label_ids, np.asarray(logits).argmax(-1), n_labels)

    return compute


#: A tag's positives weigh at most this many times its negatives in the loss (a tag on 1 text in 500 would
#: otherwise weigh 500: its few texts then dominate every batch they are in).
MAX_POSITIVE_WEIGHT = 10.0


def positive_weights(tags: np.ndarray) -> np.ndarray:
    """Per tag, how much more a positive weighs than a negative in the loss: the square root of negatives over
    positives, capped at MAX_POSITIVE_WEIGHT (rare tags count for more without swamping the rest)."""
    positives = tags.sum(axis=0).astype(float)
    ratio = (len(tags) - positives) / np.maximum(positives, 1.0)
    return np.clip(np.sqrt(ratio), 1.0, MAX_POSITIVE_WEIGHT)


def _weighted_tag_loss(pos_weight: np.ndarray):
    """A Trainer loss for multi-label data: binary cross-entropy per tag, positives weighed by ``pos_weight``."""
    import torch

    table = torch.as_tensor(pos_weight, dtype=torch.float32)

    def loss(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        return torch.nn.functional.binary_cross_entropy_with_logits(
            logits.float(), labels.float(), pos_weight=table.to(logits.device))

    return loss


@dataclass
class _Predicted:
    """Logits and true labels, as the Trainer hands them to ``compute_metrics``."""

    predictions: np.ndarray
    label_ids: Any


def label_weights(labels: list[int], n_labels: int) -> np.ndarray:
    """scikit-learn's "balanced" class weights per label id (an average example weighs 1; labels absent get 1)."""
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(labels)
    weights = np.ones(n_labels)
    weights[present] = compute_class_weight("balanced", classes=present, y=np.asarray(labels))
    return weights


def _weighted_loss(weights: np.ndarray):
    """A Trainer loss: cross-entropy with per-label weights (mean over the batch's weights)."""
    import torch

    table = torch.as_tensor(weights, dtype=torch.float32)

    def loss(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        return torch.nn.functional.cross_entropy(logits.float(), labels, weight=table.to(logits.device))

    return loss


def _is_out_of_memory(error: BaseException) -> bool:
    import torch

    return isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in str(error).lower()


def per_process_batch(batch_size: int) -> int:
    """Each process's share of the planned batch: several processes (torchrun) keep the recipe's batch size and
    steps instead of multiplying the batch by their number."""
    return max(1, batch_size // world_size())


#: Tokenised splits kept in memory, most recently used last (a few splits of a few MB each).
TOKENISED_CACHE_SIZE = 8
_TOKENISED: OrderedDict[str, Any] = OrderedDict()
_TOKENISED_LOCK = threading.Lock()


def tokenisation_key(texts: list[str], labels: list[int], tokenizer_name: str, max_length: int) -> str:
    """Identifies a tokenised split: its content (the dataset fingerprint's role), the tokenizer and the length."""
    digest = hashlib.sha256(f"{tokenizer_name}\0{max_length}\0".encode())
    for text, label in zip(texts, labels):
        digest.update(f"{label}\0{text}\0".encode())
    return digest.hexdigest()


class FineTunedTransformer(TextClassifier):
    kind = "transformer"
    title = "Fine-tuned transformer"
    blurb = "The pre-trained model itself trained on your labels: usually the most accurate; minutes to an hour."
    cost_rank = 2
    family = "transformer"
    precisions = PRECISIONS
    plans_recipe = True
    data_parallel = True
    uses_pretrained = True
    multi_label_capable = True

    def __init__(self, label_names, settings, spec: ModelSpec) -> None:
        super().__init__(label_names, settings, spec)
        self.epoch_plan: EpochPlan | None = None
        self._fit_started = time.monotonic()
        self.model = None
        self.tokenizer = None
        self.max_length = spec.max_length
        #: Where checkpoints go during training (under fit's workdir, or a temporary folder).
        self.checkpoint_dir: Path | None = None
        #: The saved folder (its ONNX files serve the ONNX Runtime variants), and the session serving now if any.
        self.folder: Path | None = None
        self.runtime: OnnxLogits | None = None

    # -- training -------------------------------------------------------------------------------
    def _load_pretrained(self) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed

        source = resolve_model_source(self.spec.model_name)
        self.tokenizer = AutoTokenizer.from_pretrained(source)
        set_seed(self.spec.seed)  # the fresh classification head starts the same on every run
        self.model = AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=len(self.label_names),
            id2label=dict(enumerate(self.label_names)),
            label2id={name: i for i, name in enumerate(self.label_names)},
            ignore_mismatched_sizes=True,  # a hub model fine-tuned on other labels gets a fresh head too
            # sigmoid per tag and binary cross-entropy (a saved folder says so: pipelines then score tags alike)
            problem_type="multi_label_classification" if self.multi_label else "single_label_classification",
        )
        self.fit_info["pooling"] = "cls"
        if self.settings.pooling == "mean":
            if supports_mean_pooling(self.model):
                append_mean_pooling_layer(self.model)
                self.fit_info["pooling"] = "mean"
            else:
                self.fit_info["pooling_note"] = (f"{self.model.config.model_type} models keep their own pooling; "
                                                 "mean pooling is available for BERT-type encoders")

    def _warm_start(self, data: TrainingData, hardware: Hardware, weights: np.ndarray | None, stop: threading.Event,
                    progress: ProgressCallback) -> None:
        """Fit the classification layer as a linear probe on the frozen features (see core.models.encoder_head)."""
        if classification_layer(self.model) is None:
            self.fit_info["warm_start_note"] = "the model's classification head is not a plain linear layer"
            return
        if hardware.device == "cuda":
            self.model.to("cuda")
        def reading(what: str) -> Callable[[int, int], None]:
            return lambda done, total: progress(Progress(done, total, message=f"linear probe: reading the {what}",
                                                         unit="text"))

        reading("training texts")(0, len(data.train_texts))
        features = head_features(self.model, self.tokenizer, data.train_texts, self.max_length, hardware.bf16,
                                 stop.is_set, reading("training texts"))
        if stop.is_set():
            raise TrainingCancelled()
        progress(Progress(0, 0, message="linear probe: fitting the starting head"))
        if self.multi_label:
            probe = fit_tag_probe(features, indicator(data.train_labels, len(self.label_names)), weights)
        else:
            probe = fit_probe(features, data.train_labels, len(self.label_names),
                              None if weights is None else weights[data.train_labels])
        load_probe_into(self.model, probe)
        validation = head_features(self.model, self.tokenizer, data.validation_texts, self.max_length,
                                   hardware.bf16, stop.is_set, reading("validation texts"))
        start = _compute_metrics(len(self.label_names), self.multi_label)(_Predicted(
            probe.logits(validation), data.validation_matrix() if self.multi_label else data.validation_labels))
        for name in ("macro_f1", "micro_f1", "accuracy"):
            if name in start:
                self.fit_info[f"starting_validation_{name}"] = round(float(start[name]), 4)

    def _tokenised(self, texts: list[str], labels: list[int] | list[list[int]]):
        """The texts tokenised once per (content, tokenizer, max_length): later runs on the same data reuse it.
        Multi-label tags go in as a 0/1 float vector per text (what binary cross-entropy takes)."""
        from datasets import Dataset

        if self.multi_label:
            labels = indicator(labels, len(self.label_names)).astype(np.float32).tolist()
        key = tokenisation_key(texts, labels, self.tokenizer.name_or_path, self.max_length)
        with _TOKENISED_LOCK:
            if key in _TOKENISED:
                _TOKENISED.move_to_end(key)
                return _TOKENISED[key]
        dataset = Dataset.from_dict({"text": texts, "label": labels})
        tokenised = dataset.map(lambda batch: self.tokenizer(batch["text"], truncation=True, max_length=self.max_length),
                                batched=True, remove_columns=["text"])
        with _TOKENISED_LOCK:
            _TOKENISED[key] = tokenised
            while len(_TOKENISED) > TOKENISED_CACHE_SIZE:
                _TOKENISED.popitem(last=False)
        return tokenised

    def _epoch_plan(self, data: TrainingData) -> EpochPlan | None:
        """The epochs to fit to the time budget as training runs; None when they are fixed (no budget, or a
        number of epochs that is not whole, as set by hand)."""
        hp = self.settings
        if hp.budget_s <= 0 or hp.epochs != int(hp.epochs):
            return None
        return EpochPlan(epochs=int(hp.epochs), ceiling=int(max(hp.max_epochs, hp.epochs)), budget_s=hp.budget_s,
                         started=self._fit_started, train_examples=len(data.train_texts),
                         validation_examples=len(data.validation_texts), warmup_ratio=hp.warmup_ratio)

    def _arguments(self, hardware: Hardware, batch_size: int, accumulation: int, plan: EpochPlan | None):
        from transformers import TrainingArguments

        hp, spec = self.settings, self.spec
        if self.checkpoint_dir is None:
            raise ValueError("set checkpoint_dir before fit")
        per_process = per_process_batch(batch_size)
        return TrainingArguments(
            output_dir=str(self.checkpoint_dir),
            per_device_train_batch_size=per_process,
            per_device_eval_batch_size=per_process * 2,
            gradient_accumulation_steps=accumulation,
            num_train_epochs=plan.ceiling if plan else hp.epochs,
            learning_rate=hp.learning_rate,
            weight_decay=hp.weight_decay,
            warmup_steps=hp.warmup_ratio,  # a float below 1 is a ratio of the total steps
            eval_strategy="epoch",
            save_strategy="epoch",
            load_best_model_at_end=True,
            # the comparison's metric: micro-F1 for tags (each tag decision counts alike), macro-F1 for labels
            metric_for_best_model="micro_f1" if self.multi_label else "macro_f1",
            greater_is_better=True,
            save_total_limit=spec.save_total_limit,
            logging_steps=spec.logging_steps,
            seed=spec.seed,
            use_cpu=hardware.device == "cpu",
            bf16=hardware.bf16,
            train_sampling_strategy="group_by_length",
            disable_tqdm=True,
            report_to="none",
            dataloader_num_workers=0,
        )

    def _train_once(self, data: TrainingData, hardware: Hardware, batch_size: int, accumulation: int,
                    progress: ProgressCallback, stop: threading.Event):
        from transformers import DataCollatorWithPadding, EarlyStoppingCallback, PrinterCallback

        quiet_libraries()
        self._load_pretrained()
        if self.multi_label:
            weights = (positive_weights(indicator(data.train_labels, len(self.label_names)))
                       if self.settings.class_weighted else None)
        else:
            weights = label_weights(data.train_labels, len(self.label_names)) if self.settings.class_weighted else None
        if self.settings.warm_start:
            self._warm_start(data, hardware, weights, stop, progress)
        plan = self._epoch_plan(data)
        trainer = budget_trainer(plan)(
            model=self.model,
            args=self._arguments(hardware, batch_size, accumulation, plan),
            train_dataset=self._tokenised(data.train_texts, data.train_labels),
            eval_dataset=self._tokenised(data.validation_texts, data.validation_labels),
            processing_class=self.tokenizer,
            data_collator=DataCollatorWithPadding(self.tokenizer),
            compute_metrics=_compute_metrics(len(self.label_names), self.multi_label),
            compute_loss_func=(None if weights is None else _weighted_tag_loss(weights) if self.multi_label
                               else _weighted_loss(weights)),
            callbacks=[_progress_callback(progress, stop),
                       EarlyStoppingCallback(early_stopping_patience=self.settings.early_stopping_patience),
                       *([budget_callback(plan)] if plan else [])],
        )
        self.epoch_plan = plan
        trainer.remove_callback(PrinterCallback)  # progress goes through our callback, not stdout
        trainer.train()
        return trainer

    def fit(self, data: TrainingData, progress: ProgressCallback, stop: threading.Event,
            workdir: Path | None = None) -> "FineTunedTransformer":
        self.targets_for(data)  # a multi-label model gives tags by thresholds (tuned after fit)
        if not data.validation_texts:
            raise ValueError("fine-tuning needs a validation split to pick the best epoch")
        if stop.is_set():
            raise TrainingCancelled()
        if workdir is None:
            with tempfile.TemporaryDirectory(prefix="fs-fit-") as scratch:
                return self.fit(data, progress, stop, Path(scratch))
        self.checkpoint_dir = workdir / "checkpoints"
        self._fit_started = time.monotonic()  # the time budget counts from here, the probe-started head included
        hardware = detect_hardware(self.spec.cpu_threads, self.spec.precision)
        batch_size, accumulation, notes = self.settings.batch_size, 1, [hardware.describe()]
        while True:
            try:
                trainer = self._train_once(data, hardware, batch_size, accumulation, progress, stop)
                break
            except RuntimeError as error:
                if hardware.device != "cuda" or not _is_out_of_memory(error):
                    raise
                import torch

                torch.cuda.empty_cache()
                if batch_size > 1:
                    batch_size, accumulation = batch_size // 2, accumulation * 2
                    notes.append(f"GPU out of memory: retrying with batch size {batch_size} "
                                 f"× {accumulation} accumulation steps (same effective batch).")
                else:
                    hardware = detect_hardware(self.spec.cpu_threads, self.spec.precision,
                                               force_cpu=True)
                    batch_size, accumulation = self.settings.batch_size, 1
                    notes.append("GPU out of memory even at batch size 1: training on the CPU instead.")
                log.warning(notes[-1])
        if stop.is_set():
            raise TrainingCancelled()
        state = trainer.state
        # Without accelerate's mixed-precision wrapper around forward: inference picks its own precision.
        self.model = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False).eval()
        self.fit_info.update({
            "hardware": hardware.to_dict(), "hardware_notes": notes,
            "precision": "bf16" if hardware.bf16 else "fp32",
            "batch_size": batch_size, "gradient_accumulation_steps": accumulation,
            "world_size": trainer.args.world_size, "batch_size_per_process": per_process_batch(batch_size),
            "steps": state.global_step, "epochs_run": state.epoch,
            "best_checkpoint": state.best_model_checkpoint,
            f"best_validation_{'micro' if self.multi_label else 'macro'}_f1": state.best_metric,
            "stopped_early": state.global_step < state.max_steps,
            "log_history": state.log_history, "is_main_process": trainer.is_world_process_zero(),
            **({"epoch_plan": self.epoch_plan.summary()} if self.epoch_plan else {}),
        })
        return self

    # -- prediction -----------------------------------------------------------------------------
    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return self.score(texts)[0]

    def score(self, texts: list[str]) -> tuple[np.ndarray, list[bool]]:
        """Softmax scores in input order, and which texts were cut at ``max_length``.

        The fast path: the whole list is tokenised once, texts are grouped by
        token length so each batch pads little, and the model runs under
        ``inference_mode`` at the precision chosen for serving. The tokenizer's
        overflow rows tell which texts were truncated, so nothing is tokenised twice.
        """
        import torch

        if self.model is None:
            raise NotFittedError("fit or load the model first")
        self.model.eval()
        scores = np.zeros((len(texts), len(self.label_names)), dtype=np.float32)
        if not texts:
            return scores, []
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_length,
                                 return_overflowing_tokens=True)
        first_rows: dict[int, int] = {}
        pieces = np.bincount(encoded["overflow_to_sample_mapping"], minlength=len(texts))
        for row, sample in enumerate(encoded["overflow_to_sample_mapping"]):
            first_rows.setdefault(sample, row)
        rows = [first_rows[i] for i in range(len(texts))]
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
        order = sorted(range(len(texts)), key=lambda i: len(encoded["input_ids"][rows[i]]))
        batches = [order[start:start + PREDICT_BATCH] for start in range(0, len(order), PREDICT_BATCH)]
        pad = lambda index, tensors: self.tokenizer.pad({k: [encoded[k][rows[i]] for i in index] for k in keys},
                                                        return_tensors=tensors)
        if self.runtime is not None:
            for index in batches:
                logits = self.runtime(pad(index, "np"))
                scores[index] = expit(logits) if self.multi_label else softmax(logits, axis=1)
            return scores, [bool(n > 1) for n in pieces]
        device = next(self.model.parameters()).device
        for index in batches:
            # No autocast: a training run may leave it switched on in this thread; bf16 is chosen through the
            # weights instead.
            with torch.inference_mode(), torch.autocast(device.type, enabled=False):
                logits = self.model(**pad(index, "pt").to(device)).logits.float()
            scores[index] = (torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)).cpu().numpy()
        return scores, [bool(n > 1) for n in pieces]

    def use_precision(self, precision: str) -> None:
        """Serve with ``precision`` (fp32 or bf16 in PyTorch, onnx-fp32 or onnx-int8 in ONNX Runtime); the
        full-precision weights are kept."""
        self._full_model = getattr(self, "_full_model", None) or self.model
        if precision in ONNX_PRECISIONS:
            self.model, self.runtime = self._full_model, OnnxLogits(self._onnx_files()[precision], torch_threads())
        else:
            self.model, self.runtime = reduced_copy(self._full_model, precision), None

    def _onnx_files(self) -> dict[str, Path]:
        """The ONNX files saved with the model; a model saved before they were made is exported once per
        process, into a temporary folder (its own folder is left as it was saved)."""
        found = onnx_files(self.folder) if self.folder is not None else {}
        if len(found) < len(ONNX_PRECISIONS):
            if getattr(self, "_exported", None) is None:
                self._exported = export_onnx(self._full_model, self.tokenizer, Path(tempfile.mkdtemp(prefix="onnx-")))
            found = self._exported
        return found

    def precision_check(self, texts: list[str], label_ids: list[int], max_accuracy_loss: float,
                        min_agreement: float = 0.0, folder: Path | None = None) -> PrecisionCheck | None:
        """Quality and speed of each serving variant on (validation) texts; see :mod:`core.models.precision`.
        (Not yet for tags: a multi-label model is served at full precision.)"""
        if self.multi_label:
            return None
        self.folder = folder or self.folder
        try:
            return check_precisions(self.use_precision, self.predict_proba, texts, label_ids, max_accuracy_loss,
                                    min_agreement)
        finally:
            self.use_precision("fp32")

    def truncation(self) -> tuple[Any, int] | None:
        return self.tokenizer, self.max_length

    # -- persistence ----------------------------------------------------------------------------
    def write_files(self, folder: Path) -> dict[str, Any]:
        """The weights as ``save_pretrained`` writes them, and beside them (in ``onnx/``) the ONNX Runtime
        variants, so a plain ``pipeline`` still loads the folder."""
        full = getattr(self, "_full_model", None) or self.model
        full.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        exported = sorted(export_onnx(full, self.tokenizer, folder)) if onnx_runtime_installed() else []
        return {"format": "transformers", "max_length": self.max_length, "base_model": self.spec.model_name,
                "runtimes": ["fp32", "bf16", *exported]}

    @classmethod
    def load(cls, folder: Path, saved: dict[str, Any], spec: ModelSpec) -> "FineTunedTransformer":
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        quiet_libraries()
        model = cls(saved["label_names"], None, spec)
        model.max_length = saved.get("max_length", spec.max_length)
        model.tokenizer = AutoTokenizer.from_pretrained(folder)
        model.model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
        model.folder = folder
        return model


def torch_threads() -> int:
    """The thread count torch uses here (configure_cpu_threads set it), for ONNX Runtime alike."""
    import torch

    return torch.get_num_threads()


def typical_batch(texts: list[str], batch_size: int) -> list[str]:
    """A batch like the length-grouped ones training sees: texts of about the median length, little padding.

    Every k-th text (not the file's first ones) is taken from four batches' worth, sorted by length,
    and the middle batch kept.
    """
    spread = sorted(texts[::max(1, len(texts) // (4 * batch_size))], key=len)
    spread = (spread * (1 + batch_size // max(len(spread), 1)))[:max(len(spread), batch_size)]
    start = max(0, (len(spread) - batch_size) // 2)
    return spread[start:start + batch_size]


#: Untimed optimisation steps before the speed is measured.
WARM_UP_STEPS = 2


def measure_training_throughput(config: AppConfig, texts: list[str], batch_size: int = 32, steps: int = 8) -> float:
    """Training texts per second on this hardware, timed on a few real optimisation steps of the model as
    trained; the faster half of the steps counts (another process can only slow a step, never speed it up),
    so a moment of load does not shorten the plan — and the run plans again after each epoch anyway."""
    import statistics

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    quiet_libraries()
    hardware = detect_hardware(config.training.cpu_threads, config.training.precision)
    source = resolve_model_source(config.model.name)
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=2)
    if supports_mean_pooling(model):
        append_mean_pooling_layer(model)
    device = "cuda" if hardware.device == "cuda" else "cpu"
    model.to(device).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)  # the Trainer's default optimiser
    sample = typical_batch(texts, batch_size)
    batch = tokenizer(sample, padding=True, truncation=True, max_length=config.model.max_length,
                      return_tensors="pt").to(device)
    labels = torch.zeros(len(sample), dtype=torch.long, device=device)
    dtype = torch.bfloat16 if hardware.bf16 else torch.float32

    def step() -> None:
        with torch.autocast(device_type=device, dtype=dtype, enabled=hardware.bf16):
            loss = model(**batch, labels=labels).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()

    for _ in range(WARM_UP_STEPS):  # the first steps pay for kernel selection and allocation
        step()
    seconds = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - started)
    return len(sample) / statistics.fmean(sorted(seconds)[:max(1, len(seconds) // 2)])
