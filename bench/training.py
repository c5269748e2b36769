"""Training speed: a plain ``Trainer`` padding every text to 128 tokens versus the project's training path.

    python -m bench.training

Same data (the demo training split), same packaged MiniLM, one epoch each. The
project's path pads each batch only to its longest text, groups texts of similar
length into batches, and trains in bfloat16 mixed precision where the CPU has it.
"""

from __future__ import annotations

import tempfile
import threading
import time

import numpy as np

from bench.common import summary
from core.classifiers import Progress
from core.cleaning import CleaningOptions
from core.config import Hyperparameters, load_config
from core.dataset_versions import DatasetVersion
from core.hardware import configure_cpu_threads, detect_hardware
from core.ingest import DEMO_DATASET, read_feedback_file
from core.preparation import prepare, save_preparation
from core.auth import command_line_actor
from core.pretrained import resolve_model_source
from core.split import SplitPlan
from core.training import training_data
from core.transformer import FineTunedTransformer
from core.workspace import Workspace
from pathlib import Path

HYPER = Hyperparameters(batch_size=16, epochs=1.0, learning_rate=1e-4, early_stopping_patience=1)


def demo_version(config) -> DatasetVersion:
    workspace = Workspace(Path(tempfile.mkdtemp(prefix="fs-bench-train-"))).ensure()
    prepared = prepare(read_feedback_file(DEMO_DATASET, 10_000_000), "text", "label", CleaningOptions(), config)
    return save_preparation(workspace, "demo", prepared, SplitPlan.from_config(config.split), command_line_actor())


def max_length_trainer(version: DatasetVersion, config) -> tuple[float, float]:
    """The plain way: every text padded to 128 tokens, float32, random batches."""
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    source = resolve_model_source(config.model.name)
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=len(version.labels))
    data = training_data(version)

    def encode(texts, labels):
        encoded = tokenizer(texts, truncation=True, max_length=128, padding="max_length")
        return Dataset.from_dict({**encoded, "labels": labels})

    train = encode(data.train_texts, data.train_labels)
    arguments = TrainingArguments(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=HYPER.batch_size,
                                  num_train_epochs=HYPER.epochs, learning_rate=HYPER.learning_rate, use_cpu=True,
                                  save_strategy="no", eval_strategy="no", logging_strategy="no", seed=42,
                                  disable_tqdm=True)
    trainer = Trainer(model=model, args=arguments, train_dataset=train)
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    texts, labels = data.validation_texts, np.asarray(data.validation_labels)
    logits = trainer.predict(encode(texts, labels.tolist())).predictions
    return len(train) / seconds, float((logits.argmax(axis=1) == labels).mean())


def project_path(version: DatasetVersion, config) -> tuple[float, float, str]:
    """The project's training path, exactly as a run uses it."""
    data = training_data(version)
    model = FineTunedTransformer(version.labels, HYPER, config)
    model.checkpoint_dir = Path(tempfile.mkdtemp())
    started = time.perf_counter()
    model.fit(data, lambda event: None, threading.Event())
    seconds = time.perf_counter() - started
    accuracy = float((model.predict_proba(data.validation_texts).argmax(axis=1) == np.asarray(data.validation_labels)).mean())
    return len(data.train_texts) / seconds, accuracy, model.fit_info["precision"]


def main() -> None:
    config = load_config()
    configure_cpu_threads(config.training.cpu_threads)
    print(detect_hardware(config.training.cpu_threads, config.training.precision).describe())
    version = demo_version(config)
    plain_speed, plain_accuracy = max_length_trainer(version, config)
    print(f"plain Trainer, padding='max_length' (128), fp32: {plain_speed:6.1f} samples/s, "
          f"validation accuracy {plain_accuracy:.3f}")
    ours_speed, ours_accuracy, precision = project_path(version, config)
    print(f"project path (dynamic padding, length groups, {precision}): {ours_speed:6.1f} samples/s, "
          f"validation accuracy {ours_accuracy:.3f}")
    summary({"max_length_trainer_samples_per_s": plain_speed, "project_samples_per_s": ours_speed,
             "training_speedup": ours_speed / plain_speed,
             "validation_accuracy_delta": 100 * (plain_accuracy - ours_accuracy), "training_precision": precision})


if __name__ == "__main__":
    main()
