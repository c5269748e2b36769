"""The model card every trained model folder carries: ``README.md`` in the Hugging Face convention (YAML metadata,
then Markdown), so a folder copied out of the workspace still says what it is, what data made it, how well it did
and what it is for.

The metadata follows ``huggingface_hub``'s ``ModelCardData`` (base model, dataset, test results as
``eval_results``); what only Feedback Studio knows (data and split fingerprints, labels, recipe, precision, the CPU
it trained on) sits under one ``feedback_studio`` key. The card is documentation: loading a model never reads
it, and the folder's checksums (``model.json``) leave it out.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from core.models.classifiers import MODEL_README as README
from core.platform.hardware import cpu_features, cpu_kind
from core.models.model_kinds import model_kinds
from core.models.multilabel import MIN_POSITIVES_TO_TUNE
from core.models.precision import VARIANT_TITLES, PrecisionCheck
from core.training.runs import RunRecord

#: The test metrics a card reports, with the words people read them by.
CARD_METRICS = {"accuracy": "Accuracy", "micro_f1": "Micro-F1 (every tag decision counts the same)",
                "macro_f1": "Macro-F1 (every label counts the same)",
                "weighted_f1": "Weighted F1 (labels count by how often they occur)",
                "samples_f1": "Samples F1 (each text's tag set, averaged over texts)",
                "subset_accuracy": "Subset accuracy (the whole tag set right)",
                "hamming_loss": "Hamming loss (share of text × tag decisions wrong)"}
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")


def write_model_card(folder: Path, record: RunRecord) -> Path:
    """Write ``folder/README.md`` for the finished run ``record`` (its test metrics set); the path written."""
    metadata = ModelCardData(
        model_name=record.name, base_model=_base_model(record), datasets=[record.dataset_ref],
        pipeline_tag="text-classification", tags=["feedback-studio", record.kind, "text-classification"],
        library_name="transformers" if (record.model or {}).get("format") == "transformers" else "sklearn",
        eval_results=_eval_results(record) or None,
        feedback_studio=_studio_metadata(record),
    )
    card = ModelCard(f"---\n{metadata.to_yaml()}\n---\n\n{_body(record)}")
    path = folder / README
    card.save(path)
    return path


def read_model_card(folder: Path) -> ModelCard | None:
    """The card in a model folder, or None when it has none (models trained before cards existed)."""
    path = folder / README
    return ModelCard.load(path) if path.is_file() else None


def _base_model(record: RunRecord) -> str | None:
    saved = record.model or {}
    return saved.get("base_model") or saved.get("encoder")


def _eval_results(record: RunRecord) -> list[EvalResult]:
    metrics = record.test_metrics or {}
    return [EvalResult(task_type="text-classification", dataset_type="feedback-studio-dataset",
                       dataset_name=record.dataset_ref, dataset_split="test", metric_type=name,
                       metric_name=words, metric_value=round(float(metrics[name]), 4))
            for name, words in CARD_METRICS.items() if metrics.get(name) is not None]


def _studio_metadata(record: RunRecord) -> dict[str, Any]:
    features = cpu_features()
    return {
        "run_id": record.run_id, "kind": record.kind, "trained_at": record.finished_at or record.started_at,
        "trained_by": record.created_by, "dataset": record.dataset_ref,
        "data_fingerprint": record.dataset_fingerprint, "split_fingerprint": record.split_fingerprint,
        "base_model_fingerprint": (record.settings or {}).get("model_fingerprint"),
        "labels": list(record.labels), "train_examples": record.train_examples,
        "test_metrics": {k: round(float(v), 4) for k, v in (record.test_metrics or {}).items()},
        **({"cross_validation": {k: round(float(v), 4) for k, v in record.cv_metrics.items()}}
           if record.cv_metrics else {}),
        "hyperparameters": record.hyperparameters, "recipe": record.recipe,
        "precision": (record.inference or {}).get("chosen", "fp32"),
        "serving_variants": record.inference,  # each variant's validation quality and speed, which may serve
        "train_seconds": record.durations.get("train_s"),
        "cpu": {"kind": cpu_kind(), "flags": sorted(name for name, present in features.items() if present)},
    }


def _escaped(text: str) -> str:
    """User text (labels, names) as literal Markdown: no links, images or headings out of a label."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _serving_lines(record: RunRecord) -> list[str]:
    """Each serving variant's validation quality and speed, as measured when the run was saved."""
    check = PrecisionCheck.from_dict(record.inference)
    if check is None:
        return []
    lines = ["", "## Serving variants", "", "Measured on the validation split when the run was saved (speed on a "
             f"CPU of kind {cpu_kind()}); a variant may serve if it loses at most "
             f"{100 * check.max_accuracy_loss:.1f} points of macro-F1 and labels at least "
             f"{100 * check.min_agreement:.1f} % of the texts as float32 does.", "",
             "| Variant | Validation macro-F1 | Same label as float32 | Texts/s | May serve |",
             "| --- | --- | --- | --- | --- |"]
    for variant, speed in check.texts_per_second.items():
        f1, same = check.macro_f1.get(variant), check.agreement.get(variant)
        lines.append(f"| {VARIANT_TITLES.get(variant, variant)}{' (served)' if variant == check.chosen else ''} | "
                     f"{'' if f1 is None else f'{f1:.3f}'} | {'' if same is None else f'{100 * same:.1f} %'} | "
                     f"{speed:,.0f} | {'yes' if check.passed.get(variant) else 'no'} |")
    return lines


def _body(record: RunRecord) -> str:
    labels = ", ".join(_escaped(label) for label in record.labels)
    metrics = record.test_metrics or {}
    decisions = (record.model or {}).get("decisions")  # a multi-label model's: tags given by per-tag thresholds
    does = (f"tags customer feedback with any of {len(record.labels)} tags (none, one or several per text)"
            if decisions else f"sorts customer feedback into {len(record.labels)} labels")
    lines = [f"# {_escaped(record.name)}", "",
             f"A model of the kind *{_escaped(record.title)}* that {does}: {labels}.", "",
             "## Training", "",
             f"- Data: {_escaped(record.dataset_ref)} (fingerprint `{record.dataset_fingerprint}`, split "
             f"`{record.split_fingerprint}`), {record.train_examples:,} training examples.",
             f"- Base model: {_escaped(_base_model(record) or 'none (trained from the words of the data)')}."]
    if model_kinds()[record.kind].family == "transformer":  # the baselines take none of these settings
        lines.append(f"- Preset: {record.preset}; settings: " + ", ".join(
            f"{key} {value}" for key, value in sorted(record.hyperparameters.items()) if value is not None) + ".")
    for reason in (record.recipe or {}).get("reasons", []):
        lines.append(f"- Recipe: {_escaped(str(reason))}")
    train_s = record.durations.get("train_s")
    trained = f"in {train_s:,.1f} s " if train_s is not None else ""
    lines += [f"- Trained {trained}on a CPU of kind {cpu_kind()}; served at "
              f"{VARIANT_TITLES.get(served := (record.inference or {}).get('chosen', 'fp32'), served)}."]
    if decisions:
        how = ("per tag, each chosen on the validation split for the tag's F1 (a tag on fewer than "
               f"{MIN_POSITIVES_TO_TUNE} validation texts keeps 0.5)" if decisions["tuned"]
               else "0.5 for every tag (per-tag thresholds did no better on the validation split)")
        lines.append(f"- A tag is given when its score reaches its threshold: {how}"
                     + ("; a text whose scores all fall short gets its best-scoring tag" if decisions["at_least_one"]
                        else "") + ". Thresholds: " + ", ".join(
                         f"{_escaped(label)} {threshold:.2f}" for label, threshold in zip(record.labels,
                                                                                          decisions["thresholds"])) + ".")
    lines += _serving_lines(record)
    lines += ["", "## Results on the test split", ""]
    if metrics:
        lines += ["| Measure | Value |", "| --- | --- |"]
        lines += [f"| {words} | {metrics[name]:.3f} |" for name, words in CARD_METRICS.items()
                  if metrics.get(name) is not None]
        weakest = sorted((row for row in record.test_per_class or [] if row.get("f1") is not None),
                         key=lambda row: row["f1"])[:3]
        if weakest:
            lines += ["", "Weakest labels (F1): " + ", ".join(
                f"{_escaped(str(row['label']))} {row['f1']:.2f}" for row in weakest) + "."]
    else:
        lines.append("No test figures (the version has no test split).")
    lines += ["", "## Intended use and limits", "",
              "- Sorting customer feedback like the training data (its language, channels and wording) into the "
              "labels above; it knows no others, so a text about something else still gets one of them.",
              "- Predictions below the review threshold are meant for a person to check; the test figures come "
              "from one split of one dataset version and carry sampling noise.",
              "- Made with Feedback Studio; loaded by it from this folder, whose files `model.json` checksums."]
    return "\n".join(lines) + "\n"
