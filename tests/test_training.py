"""Model kinds behind one interface: baselines, embeddings, the transformer (tiny and real)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from core.models.classifiers import ModelFileError, ModelSpec, TrainingCancelled
from core.models.model_kinds import model_kinds
from core.training.runs import RunRequest, RunState, list_runs
from core.training.execution import training_data
from core.training.finished import load_run_model
from tests.conftest import ANALYST, QueueWithWorker, save_demo_version


def run_to_end(workspace, config, version, kind, preset="quick", **request):
    runner = QueueWithWorker(workspace, config)
    record = runner.submit(RunRequest(version.ref, kind, preset, config.training.hyperparameters(preset), **request),
                           ANALYST)
    return runner.wait(record.run_id, timeout=600)


@pytest.mark.parametrize("kind", ["tfidf_logreg", "tfidf_nb", "embedding_logreg"])
def test_fast_models_learn_the_demo_set_well_above_chance(isolated_workspace, config, kind):
    version = save_demo_version(isolated_workspace, config)
    record = run_to_end(isolated_workspace, config, version, kind)
    assert record.state is RunState.SUCCEEDED, record.error
    chance = 1 / len(version.labels)
    assert record.test_metrics["macro_f1"] > 2.5 * chance, record.test_metrics
    assert record.test_metrics["accuracy"] > 0.6
    assert len(record.test_per_class) == len(version.labels)
    model, _ = load_run_model(isolated_workspace, record.run_id, config)
    scores = model.predict_proba(["I was charged twice for one order", "the parcel never arrived"])
    assert scores.shape == (2, len(version.labels)) and np.allclose(scores.sum(axis=1), 1)


def test_a_tampered_model_file_is_refused(isolated_workspace, config):
    version = save_demo_version(isolated_workspace, config)
    record = run_to_end(isolated_workspace, config, version, "tfidf_nb")
    model_file = isolated_workspace.runs / record.run_id / "model" / record.model["file"]
    model_file.write_bytes(model_file.read_bytes() + b"\0")
    with pytest.raises(ModelFileError, match="does not match the checksum"):
        load_run_model(isolated_workspace, record.run_id, config)


def test_training_data_never_contains_the_test_split(isolated_workspace, config):
    version = save_demo_version(isolated_workspace, config)
    data = training_data(version)
    test_texts = set(version.split_frame("test")["text"])
    assert not test_texts & set(data.train_texts) and not test_texts & set(data.validation_texts)
    sample = training_data(version, max_train_examples=100)
    assert 95 <= len(sample.train_texts) <= 105 and set(sample.train_labels) == set(data.train_labels)


def tiny_config(config_file, tiny_bert, epochs=2, patience=2, extra=""):
    return config_file(f"""
[model]
name = "{tiny_bert}"
max_length = 64
[training.quick]
epochs = {epochs}
batch_size = 16
learning_rate = 1e-3
early_stopping_patience = {patience}
{extra}
""")


@pytest.mark.slow
def test_tiny_transformer_trains_saves_and_loads_through_pipeline(isolated_workspace, config_file, tiny_bert):
    from transformers import pipeline

    config = tiny_config(config_file, tiny_bert)
    version = save_demo_version(isolated_workspace, config)
    record = run_to_end(isolated_workspace, config, version, "transformer")
    assert record.state is RunState.SUCCEEDED, record.error
    assert record.step == record.total_steps > 0
    evaluations = [h for h in record.history if "validation_macro_f1" in h]
    assert [round(h["epoch"]) for h in evaluations] == [1, 2]  # evaluated every epoch on validation
    assert record.fit_info["best_checkpoint"] and record.fit_info["precision"] in ("bf16", "fp32")
    folder = isolated_workspace.runs / record.run_id / "model"
    assert not (isolated_workspace.runs / record.run_id / "checkpoints").exists()

    model, _ = load_run_model(isolated_workspace, record.run_id, config)
    texts = ["The courier left my parcel in the rain", "Refund still missing after two weeks"]
    ours = model.predict_proba(texts)
    hub = pipeline("text-classification", model=str(folder), top_k=None)(texts)
    for row, scored in zip(ours, hub):
        by_label = {item["label"]: item["score"] for item in scored}
        assert np.allclose([by_label[name] for name in version.labels], row, atol=1e-4)


@pytest.mark.slow
def test_early_stopping_ends_training_before_the_last_epoch(isolated_workspace, config_file, tiny_bert):
    # learning rate 0: validation F1 can never improve after the first evaluation
    config = tiny_config(config_file, tiny_bert, epochs=6, patience=1)
    config.training.quick.learning_rate = 0.0
    version = save_demo_version(isolated_workspace, config)
    record = run_to_end(isolated_workspace, config, version, "transformer")
    assert record.state is RunState.SUCCEEDED, record.error
    assert record.fit_info["stopped_early"] and record.fit_info["epochs_run"] <= 2.0


def test_cancelling_during_fit_raises(config, tiny_bert, isolated_workspace, config_file):
    config = tiny_config(config_file, tiny_bert)
    version = save_demo_version(isolated_workspace, config)
    kind = model_kinds()["transformer"]
    model = kind(version.labels, config.training.hyperparameters("quick"), ModelSpec.of(config))
    model.checkpoint_dir = isolated_workspace.root / "ckpt"
    stop = threading.Event()
    stop.set()
    with pytest.raises(TrainingCancelled):
        model.fit(training_data(version), lambda event: None, stop)


def test_a_cancel_stops_at_once_without_a_validation_pass_or_checkpoint(config, tiny_bert, isolated_workspace,
                                                                           config_file):
    """Stopping mid-epoch used to run the epoch's whole validation pass (and save) before it ended."""
    config = tiny_config(config_file, tiny_bert, epochs=3)
    version = save_demo_version(isolated_workspace, config)
    model = model_kinds()["transformer"](version.labels, config.training.hyperparameters("quick"), ModelSpec.of(config))
    model.checkpoint_dir = isolated_workspace.root / "ckpt"
    stop, events = threading.Event(), []

    def progress(event):
        events.append(event)
        if not event.message and event.step >= 1:  # a training step (not the probe's reading)
            stop.set()  # as the Cancel button does, during the first epoch

    with pytest.raises(TrainingCancelled):
        model.fit(training_data(version), progress, stop)
    assert not [e for e in events if e.eval_metrics is not None]  # no validation pass after the cancel
    assert max(e.step for e in events if not e.message) == 1
    assert not list((isolated_workspace.root / "ckpt").glob("checkpoint-*"))


@pytest.mark.slow
def test_real_packaged_minilm_fine_tunes_well_above_chance(isolated_workspace, config):
    from core.training.execution import measured_plan

    version = save_demo_version(isolated_workspace, config)
    recipe = measured_plan(version, "quick", config)  # as the Train page and the CLI plan it
    assert recipe.speed and recipe.estimate_s < config.training.quick.time_budget_minutes * 60
    runner = QueueWithWorker(isolated_workspace, config)
    submitted = runner.submit(RunRequest(version.ref, "transformer", "quick", recipe.hyperparameters, recipe=recipe),
                              ANALYST)
    record = runner.wait(submitted.run_id, timeout=600)
    assert record.state is RunState.SUCCEEDED, record.error
    assert record.recipe["summary"] == recipe.summary and record.fit_info["pooling"] == "mean"
    chance = 1 / len(version.labels)
    # the head starts from a probe on MiniLM's mean-pooled features: far above chance before any fine-tuning
    assert record.fit_info["starting_validation_accuracy"] > 3 * chance, record.fit_info
    assert record.test_metrics["accuracy"] > 3 * chance, record.test_metrics
    assert [r.state for r in list_runs(isolated_workspace)] == [RunState.SUCCEEDED]


def test_cheaper_kinds_are_offered_and_queued_first():
    import core.models.transformer  # noqa: F401  (importing the slow kind first must not change the order)

    assert list(model_kinds()) == ["tfidf_logreg", "tfidf_nb", "zero_shot", "embedding_logreg", "few_shot",
                                  "transformer"]


@pytest.mark.slow
def test_a_split_is_tokenised_once_per_tokenizer_and_length(config_file, tiny_bert):
    from core.models.pretrained import load_tokenizer
    from core.models.transformer import FineTunedTransformer

    config = tiny_config(config_file, tiny_bert)
    model = FineTunedTransformer(["a", "b"], config.training.hyperparameters("quick"), ModelSpec.of(config))
    model.tokenizer = load_tokenizer(str(tiny_bert))
    texts, labels = ["late parcel", "refund please", "a much longer text about a refund that never came"], [0, 1, 1]
    first = model._tokenised(texts, labels)
    assert model._tokenised(list(texts), list(labels)) is first  # same content: reused, not re-tokenised
    assert model._tokenised(texts, [0, 1, 0]) is not first  # other labels, other split
    model.max_length = 4
    shorter = model._tokenised(texts, labels)
    assert shorter is not first and max(len(ids) for ids in shorter["input_ids"]) == 4


def test_a_transformer_file_changed_or_added_after_saving_is_refused_by_name(isolated_workspace, config_file,
                                                                              tiny_bert):
    """Edited weights or config loaded silently."""
    config = tiny_config(config_file, tiny_bert, epochs=1)
    version = save_demo_version(isolated_workspace, config)
    record = run_to_end(isolated_workspace, config, version, "transformer")
    folder = isolated_workspace.runs / record.run_id / "model"
    assert "config.json" in record.model["files"] and "model.safetensors" in record.model["files"]
    load_run_model(isolated_workspace, record.run_id, config)  # untouched: loads
    config_file_path = folder / "config.json"
    original = config_file_path.read_bytes()
    config_file_path.write_bytes(original.replace(b'"num_attention_heads"', b' "num_attention_heads"'))
    with pytest.raises(ModelFileError, match="config.json does not match the checksum"):
        load_run_model(isolated_workspace, record.run_id, config)
    config_file_path.write_bytes(original)
    (folder / "extra.pkl").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(ModelFileError, match="extra.pkl was not saved with the model"):
        load_run_model(isolated_workspace, record.run_id, config)


def test_an_untrusted_skops_file_is_refused_in_one_line(isolated_workspace, config):
    """A file with types outside skops' trust list surfaced as a traceback."""
    import json

    import skops.io as sio

    from core.models.classifiers import sha256_file

    version = save_demo_version(isolated_workspace, config)
    record = run_to_end(isolated_workspace, config, version, "tfidf_nb")
    path = isolated_workspace.runs / record.run_id / "model" / record.model["file"]
    sio.dump(threading.Event(), path)  # a type nobody trusts, with its checksum recorded as if saved so
    run_json = isolated_workspace.runs / record.run_id / "run.json"
    saved = json.loads(run_json.read_text())
    saved["model"]["sha256"] = saved["model"]["files"][path.name] = sha256_file(path)
    run_json.write_text(json.dumps(saved))
    with pytest.raises(ModelFileError, match=f"model file {path} holds types that are not trusted"):
        load_run_model(isolated_workspace, record.run_id, config)
