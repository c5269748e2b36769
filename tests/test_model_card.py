"""Every trained model folder describes itself: README.md with Hugging Face metadata (data fingerprint, labels, test
metrics, base model, CPU) and a body in words; the published model's card is on Home and Evaluate."""

from __future__ import annotations

from dataclasses import replace

from huggingface_hub import ModelCard

from core.training.model_card import read_model_card, write_model_card
from core.serving.publishing import publish
from core.training.finished import finished_run, load_run_model
from tests.conftest import ANALYST, save_demo_version, train_runs
from tests.test_pages import open_page
from tests.test_training import tiny_config


def test_each_trained_folder_carries_a_card_naming_its_data_and_test_figures(isolated_workspace, config_file,
                                                                            tiny_bert):
    config = tiny_config(config_file, tiny_bert, epochs=1)
    version = save_demo_version(isolated_workspace, config)
    for record in train_runs(isolated_workspace, config, version, kinds=("tfidf_logreg", "transformer")):
        assert record.state.value == "succeeded", record.error
        _, folder = finished_run(isolated_workspace, record.run_id)
        card = ModelCard.load(folder / "README.md")  # the Hugging Face convention, read by its own library
        meta = card.data.to_dict()
        studio = meta["feedback_studio"]
        assert studio["data_fingerprint"] == version.meta["fingerprint"] == record.dataset_fingerprint
        assert studio["split_fingerprint"] == version.meta["split_fingerprint"]
        assert studio["labels"] == version.labels and studio["run_id"] == record.run_id
        assert studio["test_metrics"]["macro_f1"] == round(record.test_metrics["macro_f1"], 4)
        # the fast kind says what its cross-validation found; the transformer was not cross-validated
        assert (studio.get("cross_validation", {}).get("folds") == 5) is (record.kind == "tfidf_logreg")
        assert studio["cpu"]["kind"] in {"avx512-bf16", "avx512", "avx2", "other"}
        assert meta["datasets"] == [version.ref] and meta["pipeline_tag"] == "text-classification"
        results = {r["name"]: r for r in meta["model-index"][0]["results"][0]["metrics"]}
        assert results["Accuracy"]["value"] == round(record.test_metrics["accuracy"], 4)
        if record.kind == "transformer":
            assert meta["base_model"] == str(tiny_bert) and meta["library_name"] == "transformers"
            assert studio["serving_variants"]["chosen"] == record.inference["chosen"]
            served = {"fp32": "PyTorch float32", "bf16": "PyTorch bfloat16", "onnx-fp32": "ONNX Runtime float32",
                      "onnx-int8": "ONNX Runtime int8"}[record.inference["chosen"]]
            assert "## Serving variants" in card.text and f"| {served} (served) |" in card.text
            assert "| ONNX Runtime int8" in card.text
        else:
            assert "base_model" not in meta and meta["library_name"] == "sklearn"
        assert "## Intended use and limits" in card.text and f"{record.train_examples:,} training examples" in card.text
        load_run_model(isolated_workspace, record.run_id, config)  # the card is no model file: loading still passes


def test_labels_and_names_in_a_card_are_literal_markdown(isolated_workspace, config):
    version = save_demo_version(isolated_workspace, config)
    (record,) = train_runs(isolated_workspace, config, version, kinds=("tfidf_nb",))
    _, folder = finished_run(isolated_workspace, record.run_id)
    tricky = replace(record, labels=["[click](http://example.com)", "# heading", "![img](x.png)"])
    write_model_card(folder, tricky)
    text = read_model_card(folder).text
    assert r"\[click\]\(http://example\.com\)" in text and r"\# heading" in text and r"\!\[img\]" in text
    assert "[click](http" not in text


def test_home_and_evaluate_show_the_published_models_card(isolated_workspace, config):
    version = save_demo_version(isolated_workspace, config)
    (record,) = train_runs(isolated_workspace, config, version, kinds=("tfidf_logreg",))
    app = open_page()
    assert not any(e.label == "Model card of the published model" for e in app.expander)  # nothing published
    publish(isolated_workspace, record.run_id, ANALYST)
    app.run()
    (card,) = [e for e in app.expander if e.label == "Model card of the published model"]
    shown = " ".join(m.value for m in card.markdown)
    assert record.dataset_fingerprint in shown and "Results on the test split" in shown
    evaluate = open_page("pages/views/evaluate.py")
    assert any(e.label == "Model card of the published model" for e in evaluate.expander)
