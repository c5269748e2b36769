"""Zero-shot by label names with the real MiniLM: right without learning from examples, its confidence scaled
on the validation split, saved and loaded like any kind, and trained through the command line."""

from __future__ import annotations

import threading

import numpy as np

from core.models.classifiers import ModelSpec
from core.models.model_kinds import load_model_folder
from core.models.zero_shot import ZeroShotClassifier, label_words
from tests.test_cli import run_cli
from tests.test_model_conformance import LABELS, training_data


def test_label_names_alone_sort_feedback_and_validation_only_scales_the_confidence(config, tmp_path):
    data = training_data(LABELS)
    model = ZeroShotClassifier(LABELS, None, ModelSpec.of(config)).fit(data, lambda _: None, threading.Event())
    probes = ["I was charged twice for one order", "my parcel never turned up", "the app crashes when I log in"]
    assert model.predict(probes) == ["billing", "delivery", "app"]
    temperature = model.calibration["temperature"]
    assert 0.005 <= temperature < 1.0 and model.fit_info["calibration"] == {"temperature": temperature}
    # the training texts taught it nothing: the same labels in another order give the same scores, reordered
    again = ZeroShotClassifier(LABELS[::-1], None, ModelSpec.of(config)).fit(
        training_data(LABELS[::-1]), lambda _: None, threading.Event())
    np.testing.assert_allclose(again.predict_proba(probes)[:, ::-1], model.predict_proba(probes), atol=1e-4)
    model.save(tmp_path / "model")
    loaded = load_model_folder(tmp_path / "model", ModelSpec.of(config))
    np.testing.assert_allclose(loaded.predict_proba(probes), model.predict_proba(probes), atol=1e-5)
    assert label_words("product_quality", "{label}") == "product quality"


def test_the_command_line_trains_zero_shot_beside_the_baselines(capsys, write_file):
    from tests.test_cli import labelled_rows
    import json

    path = write_file("small.jsonl", "\n".join(json.dumps(r) for r in labelled_rows()) + "\n")
    code, lines, err = run_cli(capsys, "train", "--data", path, "--models", "zero_shot,tfidf_logreg")
    assert code == 0, err
    rows = {line["model"]: line for line in lines if "model" in line}
    assert set(rows) == {"zero_shot", "tfidf_logreg"}
    assert rows["zero_shot"]["test_metrics"]["accuracy"] > 1 / 3 + 0.2  # three labels: better than chance


def test_descriptions_given_to_the_command_line_are_frozen_in_the_zero_shot_run_and_read(capsys, write_file,
                                                                                          isolated_workspace, config):
    import json

    from core.training.finished import load_run_model
    from core.training.runs import load_record
    from tests.test_cli import labelled_rows

    data = write_file("small.jsonl", "\n".join(json.dumps(r) for r in labelled_rows()) + "\n")
    wrong = write_file("wrong.json", json.dumps({"shipping": "where the parcel is"}))
    code, _, err = run_cli(capsys, "train", "--data", data, "--models", "zero_shot", "--descriptions", wrong)
    assert code != 0 and "'shipping' is not one of small/v1's labels" in err  # said before anything trains
    described = write_file("described.json", json.dumps({"billing": "charges, refunds and invoices"}))
    code, lines, err = run_cli(capsys, "train", "--data", data, "--models", "zero_shot", "--descriptions", described)
    assert code == 0, err
    record = load_record(isolated_workspace, lines[0]["run_id"])
    assert record.hyperparameters["descriptions"] == [["billing", "charges, refunds and invoices"]]
    model, _ = load_run_model(isolated_workspace, record.run_id, config)
    assert model.descriptions == {"billing": "charges, refunds and invoices"}
    plain = ZeroShotClassifier(model.label_names, None, ModelSpec.of(config))
    plain.fit(training_data(model.label_names), lambda _: None, threading.Event())
    billing = model.label_names.index("billing")
    others = [i for i in range(len(model.label_names)) if i != billing]
    assert not np.allclose(plain.label_vectors[billing], model.label_vectors[billing])  # read with its sentence
    assert np.allclose(plain.label_vectors[others], model.label_vectors[others], atol=1e-5)
