"""Training-speed probes that run in the background, so a page that plans a run never waits for one."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Hashable


class SpeedProbes:
    """Measurements run one at a time on a worker thread; each result is kept for the next page that asks.

    ``result`` starts the measurement the first time a key is asked for and answers None until
    it is done; a failed measurement raises its error to every asker (it is not retried).
    """

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="speed-probe")
        self._futures: dict[Hashable, Future[float]] = {}
        self._lock = threading.Lock()

    def result(self, key: Hashable, measure: Callable[[], float]) -> float | None:
        """The measured speed for ``key``, or None while it is being measured (started on first ask)."""
        with self._lock:
            future = self._futures.get(key)
            if future is None:
                future = self._futures[key] = self._executor.submit(measure)
        return future.result() if future.done() else None

    def wait(self, key: Hashable, timeout: float | None = None) -> float:
        """Block until ``key``'s measurement (already asked for) is done; for tests and the command line."""
        with self._lock:
            future = self._futures[key]
        return future.result(timeout)
