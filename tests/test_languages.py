"""Texts in languages the model was not trained on are reported with their languages and lines; English texts,
short texts and a model said to read any language give no such report."""

from __future__ import annotations

import dataclasses

from core.data.cleaning import CleaningOptions
from core.data.ingest import records_from_list
from core.data.preparation import prepare, prepare_texts
from core.platform.config import load_config

ENGLISH = ["The parcel arrived two weeks late and damaged", "My card was charged twice for one order",
           "The app crashes every time I open the settings", "Support never answered my three emails"] * 10
SPANISH = ["El paquete llegó dos semanas tarde y dañado", "Me cobraron dos veces el mismo pedido en la tarjeta",
           "La aplicación se cierra cada vez que abro la configuración",
           "El servicio de atención nunca respondió a mis correos"]


def report(texts, config=None):
    rows = [{"text": f"{t} ({i})"} for i, t in enumerate(texts)]
    return prepare_texts(records_from_list(rows), "text", CleaningOptions(), config or load_config()).raw_report


def test_texts_in_another_language_are_reported_with_the_language_and_their_lines():
    found = report(ENGLISH + SPANISH * 2).get("other_languages")
    assert found is not None and 6 <= found.count <= 8  # a guess counts only when sure
    assert f"Spanish ({found.count})" in found.message and "trained on English" in found.message
    assert set(found.lines) <= set(range(41, 49)) and found.severity.value == "warning"


def test_english_texts_short_texts_and_a_model_for_any_language_give_no_report():
    assert report(ENGLISH).get("other_languages") is None
    assert report(ENGLISH + ["ok gracias", "muy mal", "no funciona"] * 3).get("other_languages") is None
    config = load_config()
    anything = dataclasses.replace(config, model=dataclasses.replace(config.model, languages="any"))
    assert report(ENGLISH + SPANISH * 2, anything).get("other_languages") is None


def test_labelled_files_are_checked_for_languages_too():
    rows = [{"text": t, "label": "a" if i % 2 else "b"} for i, t in enumerate(ENGLISH + SPANISH * 3)]
    prepared = prepare(records_from_list(rows), "text", "label", CleaningOptions(), load_config())
    assert prepared.raw_report.get("other_languages").count >= 4
