"""What an evaluation's figures mean, in words, for people who do not read metrics every day."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.evaluation.scoring import Evaluation

#: One line per figure the Evaluate page shows: what it measures, in plain words.
METRIC_MEANINGS = {
    "accuracy": "The share of test texts it labelled right.",
    "macro_f1": "F1 (the balance of catching a label's texts and not crying wolf) averaged over the labels, each "
                "label counting the same: low when the model neglects a small label.",
    "weighted_f1": "The same F1 averaged with each label weighted by its number of texts: follows the big labels.",
    "calibration_error": "How far its confidence is from how often it is right (0 is perfect: when it says 80 %, "
                         "it is right 80 % of the time).",
    "texts_per_second": "How many texts it scored per second here, on the test split.",
    # a tagger's (several tags per text)
    "micro_f1": "F1 over every text × tag decision together: how well it tags overall, common tags counting most.",
    "tag_macro_f1": "F1 of each tag on its own, averaged over the tags, each counting the same: low when the model "
                    "neglects a rare tag.",
    "samples_f1": "F1 of each text's tag set against the right one, averaged over the texts.",
    "subset_accuracy": "The share of test texts whose whole tag set it got exactly right (strict).",
    "hamming_loss": "The share of text × tag decisions it got wrong (0 is perfect).",
}


def tags_in_words(metrics: dict[str, float], per_tag: list[dict], examples: int) -> str:
    """One sentence on a tagger's test figures: how many texts got exactly their tags, and its weakest tag."""
    if "subset_accuracy" not in metrics or not examples:
        return ""
    sentence = (f"On {examples:,} texts it had not seen, it gave exactly the right tags to "
                f"{metrics['subset_accuracy']:.0%} of them")
    scored = [row for row in per_tag if row["support"] and row["f1"] is not None]
    if len(scored) >= 2:
        weakest = min(scored, key=lambda row: (row["f1"], row["label"]))
        sentence += (f"; weakest on “{weakest['label']}” (F1 {weakest['f1']:.2f}, found {weakest['recall']:.0%} of "
                     f"its {weakest['support']} texts)")
    return sentence + "."


def evaluation_in_words(evaluation: Evaluation) -> str:
    """One sentence on what the figures mean for this model: how often it is right on texts it had not seen,
    its weakest label and the label it most often takes it for."""
    accuracy = evaluation.metrics.get("accuracy")
    if accuracy is None or not evaluation.examples:
        return ""
    sentence = f"On {evaluation.examples:,} texts it had not seen, it was right {accuracy:.0%} of the time"
    scored = [row for row in evaluation.per_class if row["support"] and row["f1"] is not None]
    if len(scored) < 2:
        return sentence + "."
    weakest = min(scored, key=lambda row: (row["f1"], row["label"]))
    index = evaluation.labels.index(weakest["label"])
    confusions = [(count, evaluation.labels[j]) for j, count in enumerate(evaluation.confusion[index]) if j != index]
    count, mistaken_for = max(confusions, default=(0, None))
    sentence += f"; weakest on “{weakest['label']}” (F1 {weakest['f1']:.2f})"
    if count:
        sentence += f", which it most often takes for “{mistaken_for}” ({count} of {weakest['support']} texts)"
    return sentence + "."
