"""The registry of model kinds, and loading a saved model of any of them.

Explicit: the kinds are listed here, so nothing depends on which module happened to be imported first, and
``core.models.classifiers`` (the interface) never needs to know the kinds that implement it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.models.baselines import TfidfLogisticRegression, TfidfNaiveBayes
from core.models.classifiers import MODEL_CARD, ModelFileError, ModelSpec, TextClassifier, verify_folder
from core.models.embeddings import EmbeddingLogisticRegression
from core.models.few_shot import FewShotClassifier
from core.models.multilabel import TagDecisions
from core.models.transformer import FineTunedTransformer
from core.models.zero_shot import ZeroShotClassifier
from core.platform.workspace import read_json

#: Every kind the studio trains, in the order they are offered and queued (cheaper first: results come early).
KINDS: tuple[type[TextClassifier], ...] = tuple(sorted(
    (TfidfLogisticRegression, TfidfNaiveBayes, ZeroShotClassifier, EmbeddingLogisticRegression, FewShotClassifier,
     FineTunedTransformer),
    key=lambda kind: kind.cost_rank))


def model_kinds() -> dict[str, type[TextClassifier]]:
    """Kind name → class, cheapest first."""
    return {kind.kind: kind for kind in KINDS}


def load_saved(folder: Path, card: dict[str, Any], spec: ModelSpec, where: str) -> TextClassifier:
    """A saved model from its card: the kind it names, every file checked against the checksums recorded at
    save (a changed, missing or added file is refused by name; models saved before checksums covered every
    file check what they recorded). ``where`` names the card in errors."""
    kinds = model_kinds()
    if card.get("kind") not in kinds:
        raise ModelFileError(f"{where} names an unknown model kind {card.get('kind')!r} (known: {', '.join(kinds)})")
    if "files" in card:
        verify_folder(folder, card["files"])
    model = kinds[card["kind"]].load(folder, card, spec)
    if card.get("task") == "multi-label":
        model.decisions = TagDecisions.from_dict(card["decisions"])
    return model


def load_model_folder(folder: Path, spec: ModelSpec) -> TextClassifier:
    """Any saved model folder, on its own: its ``model.json`` says what it is (no run record needed)."""
    card_path = folder / MODEL_CARD
    if not card_path.exists():
        raise ModelFileError(f"{folder} has no {MODEL_CARD}: it is not a saved Feedback Studio model")
    return load_saved(folder, read_json(card_path), spec, str(card_path))
