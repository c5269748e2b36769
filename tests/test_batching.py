"""Micro-batching: concurrent calls scored in one model pass get exactly what they would have got alone, and an
error reaches every call that waited for it."""

from __future__ import annotations

import threading

import pytest

from core.models.predict import Prediction, Predictor
from core.serving.batching import MicroBatcher
from core.training.finished import load_run_model
from tests.conftest import save_demo_version, train_runs
from tests.test_file_jobs import DEMO


def test_concurrent_calls_share_passes_and_each_gets_its_own_predictions(isolated_workspace, config):
    (run,) = train_runs(isolated_workspace, config, save_demo_version(isolated_workspace, config),
                        kinds=("tfidf_logreg",))
    model, _ = load_run_model(isolated_workspace, run.run_id, config)
    predictor = Predictor.for_model(model)
    passes: list[int] = []

    def counted(texts):
        passes.append(len(texts))
        return predictor.predict(texts)

    batcher = MicroBatcher(counted, wait_s=0.3, max_texts=1_000)
    calls = [[row["text"] for row in DEMO[i * 7:i * 7 + 1 + i % 5]] + ([""] if i == 3 else []) for i in range(12)]
    got: dict[int, list] = {}
    start = threading.Barrier(len(calls))

    def call(i: int) -> None:
        start.wait()
        got[i] = batcher.predict(calls[i])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert {i: [p.to_dict() for p in got[i]] for i in got} == {
        i: [p.to_dict() for p in predictor.predict(texts)] for i, texts in enumerate(calls)}
    assert got[3][-1].status == "empty"
    assert len(passes) < len(calls) and sum(passes) == sum(map(len, calls)) and batcher.calls == len(calls)
    small = MicroBatcher(counted, wait_s=0.3, max_texts=3)  # a pass never takes more than max_texts once it has one
    passes.clear()
    threads = [threading.Thread(target=small.predict, args=([DEMO[i]["text"]] * 2,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(passes) == [4, 4]


def test_an_error_in_a_pass_reaches_every_call_in_it():
    def broken(texts):
        raise RuntimeError("the model file is gone")

    batcher = MicroBatcher(broken, wait_s=0.2, max_texts=100)
    errors: list[str] = []

    def call() -> None:
        with pytest.raises(RuntimeError) as raised:
            batcher.predict(["a text"])
        errors.append(str(raised.value))

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == ["the model file is gone"] * 3


def test_without_waiting_the_calls_that_queue_behind_a_pass_join_the_next_one():
    gate, passes = threading.Event(), []

    def slow(texts):
        passes.append(len(texts))
        gate.wait(10)  # the first pass runs while the others arrive
        return [Prediction("ok", "a", 1.0) for _ in texts]

    batcher = MicroBatcher(slow, wait_s=0.0, max_texts=100)
    first = threading.Thread(target=batcher.predict, args=(["x"],))
    first.start()
    while not passes:
        threading.Event().wait(0.01)
    behind = [threading.Thread(target=batcher.predict, args=(["y", "z"],)) for _ in range(5)]
    for thread in behind:
        thread.start()
    while batcher._calls.qsize() < 5:
        threading.Event().wait(0.01)
    gate.set()
    for thread in [first, *behind]:
        thread.join(10)
    assert passes == [1, 10] and batcher.calls == 6
