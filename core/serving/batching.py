"""Micro-batching: the texts of calls that arrive together are scored in one model pass.

Under many concurrent API calls, each call scoring its own few texts on its own thread makes the model's passes
compete for the same cores (and each pass pays its fixed cost). A :class:`MicroBatcher` puts the calls in a queue;
one thread takes the first with every call already waiting behind it (and, with ``wait_s`` > 0, those arriving
within ``wait_s``), never past ``max_texts`` texts, scores them all in one pass and hands each call its own
predictions. With ``wait_s`` 0 a lone call waits for nothing: calls batch only when they queue up behind a pass,
which is when the load makes it pay.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from core.models.predict import Prediction


@dataclass
class _Call:
    texts: list[Any]
    done: threading.Event = field(default_factory=threading.Event)
    results: list[Prediction] | None = None
    error: BaseException | None = None


class MicroBatcher:
    """Scores concurrent calls together with ``predict`` (texts → one Prediction each, in order)."""

    def __init__(self, predict: Callable[[list[Any]], list[Prediction]], wait_s: float, max_texts: int) -> None:
        self._predict, self.wait_s, self.max_texts = predict, wait_s, max_texts
        self._calls: queue.Queue[_Call] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        #: Model passes made, and calls served (the tests and the load benchmark read them).
        self.passes = self.calls = 0

    def predict(self, texts: Sequence[Any]) -> list[Prediction]:
        """This call's predictions, scored with whatever other calls arrived meanwhile."""
        self._ensure_thread()
        call = _Call(list(texts))
        self._calls.put(call)
        call.done.wait()
        if call.error is not None:
            raise call.error
        return call.results  # type: ignore[return-value]

    def _ensure_thread(self) -> None:
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="micro-batcher", daemon=True)
                self._thread.start()

    def _gather(self) -> list[_Call]:
        """The next call and those that arrive within ``wait_s`` of it, up to ``max_texts`` texts."""
        batch = [self._calls.get()]
        count, deadline = len(batch[0].texts), time.monotonic() + self.wait_s
        while count < self.max_texts:
            try:
                left = deadline - time.monotonic()
                batch.append(self._calls.get(timeout=left) if left > 0 else self._calls.get_nowait())
            except queue.Empty:
                break
            count += len(batch[-1].texts)
        return batch

    def _serve(self) -> None:
        while True:
            batch = self._gather()
            try:
                found = self._predict([text for call in batch for text in call.texts])
            except BaseException as error:  # each waiting call gets the error, none waits for ever
                for call in batch:
                    call.error = error
                    call.done.set()
                continue
            self.passes, self.calls, start = self.passes + 1, self.calls + len(batch), 0
            for call in batch:
                call.results, start = found[start:start + len(call.texts)], start + len(call.texts)
                call.done.set()
