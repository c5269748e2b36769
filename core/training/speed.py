"""Training-speed measurements for the Train page's estimate, made by a training worker, never by the web server.

The page (through :func:`core.services.runs.transformer_plan`) asks once per model, maximum length, batch size
and sample of texts: the question is a file in ``workspace/speed/``. An idle worker takes each question (a
rename: of several workers, one wins), times a few real optimisation steps of the model as trained, and writes
the answer beside it; the page reads the answer on its next poll. A failed measurement is answered with its
reason, which the page shows; it is not retried until the question is asked again after the answer is gone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from core.platform.config import AppConfig
from core.platform.workspace import Workspace, read_json, write_json_atomic

log = logging.getLogger(__name__)

SPEED_DIR = "speed"
ASKED, TAKEN, ANSWER = ".asked.json", ".taken.json", ".answer.json"


class SpeedError(ValueError):
    """The worker could not measure the speed (the model would not load, say), with its reason."""


@dataclass(frozen=True)
class SpeedQuestion:
    """How fast does this model train on this machine, at this length and batch size, on texts like these?"""

    model: str
    max_length: int
    batch_size: int
    texts: tuple[str, ...]

    @property
    def key(self) -> str:
        text = json.dumps(dataclasses.asdict(self), ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def _folder(workspace: Workspace) -> Path:
    folder = workspace.root / SPEED_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def ask_speed(workspace: Workspace, question: SpeedQuestion) -> float | None:
    """The measured speed in training texts per second; None while a worker has not answered (the question is
    left for one the first time). SpeedError when the worker could not measure it."""
    folder = _folder(workspace)
    answer = folder / (question.key + ANSWER)
    if answer.exists():
        found = read_json(answer)
        if found.get("error"):
            raise SpeedError(found["error"])
        return float(found["texts_per_second"])
    asked, taken = folder / (question.key + ASKED), folder / (question.key + TAKEN)
    if not asked.exists() and not taken.exists():
        write_json_atomic(asked, dataclasses.asdict(question))
    return None


Measure = Callable[[AppConfig, list[str], int], float]


def answer_questions(workspace: Workspace, config: AppConfig, measure: Measure | None = None) -> int:
    """A worker's turn: take every question waiting, measure it with the question's model and length, write the
    answer (or why there is none). Returns how many were answered."""
    if measure is None:
        from core.models.transformer import measure_training_throughput as measure
    answered = 0
    for asked in sorted(_folder(workspace).glob("*" + ASKED)):
        key = asked.name[:-len(ASKED)]
        taken = asked.with_name(key + TAKEN)
        try:
            asked.rename(taken)  # one worker wins each question
        except FileNotFoundError:
            continue
        asked_for = read_json(taken)
        question = SpeedQuestion(**{**asked_for, "texts": tuple(asked_for["texts"])})
        model = dataclasses.replace(config.model, name=question.model, max_length=question.max_length)
        try:
            speed = measure(dataclasses.replace(config, model=model), list(question.texts), question.batch_size)
            found = {"texts_per_second": speed}
        except Exception as error:  # noqa: BLE001 (the page shows why: a missing model, too little memory, …)
            log.warning("speed of %s (batch %d) could not be measured: %s", question.model, question.batch_size,
                        error)
            found = {"error": f"{type(error).__name__}: {error}"}
        write_json_atomic(taken.with_name(key + ANSWER), found)
        taken.unlink(missing_ok=True)
        answered += 1
    return answered
