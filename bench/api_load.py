"""The HTTP API under load: 1, 5 and 20 concurrent clients, each sending 1 to 32 texts per call for a while.

    python -m bench.api_load [--seconds 60] [--clients 1,5,20] [--workers 1] [--batch-wait-ms 5,0]
                             [--run RUN_FOLDER] [--kind tfidf_logreg]

Serves ``python -m core api --workers N`` on a fresh workspace with the model published (a run folder given, or
``--kind`` trained on the demo data here) and drives it with an asyncio client (httpx), every call with a
personal API token as other systems would. Printed per micro-batching setting and client count: calls, p50 and
p95 latency, texts/s and failed calls; then whether every call is in the audit log. The named baseline is one
client, measured in the same run. Targets (the issue's, 2 cores): p95 at 20 clients within 10x p95 at 1 client;
texts/s at 20 clients at least 1.5x one client's; no failed call; every call audited.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import check_targets, cpu_line, demo_texts, mixed_texts, summary
from bench.file_jobs import trained_run
from core.accounts.auth import Role
from core.platform.config import CONFIG_ENV_VAR, WORKSPACE_ENV_VAR, load_config
from core.platform.store import events
from core.platform.workspace import Workspace
from core.serving.publishing import publish
from core.services.accounts import create_first_admin
from core.services.studio import Caller, Studio
from core.services.tokens import create_token

TARGETS = {"p95_20_vs_1": ("<=", 10.0), "texts_per_s_20_vs_1": (">=", 1.5), "failed_calls": ("<=", 0.0),
           "calls_not_audited": ("<=", 0.0)}
PASSWORD = "bench pass phrase 1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def client(url: str, token: str, texts: list[str], until: float, seed: int) -> tuple[list[float], int, int]:
    """Calls until ``until``: each call's seconds, the texts sent, the calls that failed."""
    rng, latencies, sent, failed = random.Random(seed), [], 0, 0
    async with httpx.AsyncClient(timeout=120, headers={"Authorization": f"Bearer {token}"}) as http:
        while time.monotonic() < until:
            batch = rng.sample(texts, rng.randint(1, 32))
            started = time.perf_counter()
            try:
                answer = await http.post(f"{url}/v1/classify", json={"texts": batch})
                ok = answer.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - started)
            sent += len(batch) if ok else 0
            failed += not ok
    return latencies, sent, failed


async def load(url: str, token: str, texts: list[str], clients: int, seconds: float) -> dict[str, float]:
    until = time.monotonic() + seconds
    started = time.perf_counter()
    results = await asyncio.gather(*(client(url, token, texts, until, seed) for seed in range(clients)))
    spent = time.perf_counter() - started
    latencies = sorted(t for r in results for t in r[0])
    return {"calls": len(latencies), "p50_ms": 1000 * statistics.median(latencies),
            "p95_ms": 1000 * latencies[int(0.95 * (len(latencies) - 1))],
            "texts_per_s": sum(r[1] for r in results) / spent, "failed": sum(r[2] for r in results)}


def serve(workspace: Workspace, settings: Path, workers: int, port: int) -> subprocess.Popen:
    env = {**os.environ, WORKSPACE_ENV_VAR: str(workspace.root), CONFIG_ENV_VAR: str(settings)}
    server = subprocess.Popen([sys.executable, "-m", "core", "api", "--workers", str(workers), "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/docs", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.3)
    server.terminate()
    raise SystemExit("the API did not start within 2 minutes")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.api_load", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of load per client count")
    parser.add_argument("--clients", default="1,5,20")
    parser.add_argument("--workers", type=int, default=1, help="API processes")
    parser.add_argument("--batching", default="on,off", help="micro-batching settings to compare (the first is judged)")
    parser.add_argument("--run", help="a finished run folder to publish (default: train --kind here)")
    parser.add_argument("--kind", default="tfidf_logreg")
    args = parser.parse_args(argv)
    print(cpu_line())
    workspace = Workspace(Path(tempfile.mkdtemp(prefix="fs-bench-api-"))).ensure()
    os.environ[WORKSPACE_ENV_VAR] = str(workspace.root)
    config = load_config()
    if args.run:
        workspace.runs.mkdir(parents=True, exist_ok=True)
        os.symlink(Path(args.run).resolve(), workspace.runs / Path(args.run).name)
        run_id = Path(args.run).name
    else:
        run_id = trained_run(workspace, args.kind, config)
    studio = Studio(config)
    admin = create_first_admin(studio, Caller(None), "bench-admin", "Bench Admin", "", PASSWORD)
    token = create_token(studio, Caller(admin.actor, "bench"), "bench-admin", "load", Role.USER)[1]
    publish(workspace, run_id, admin.actor)
    texts = mixed_texts(demo_texts(), 2_000)
    figures: dict[str, float | str] = {}
    clients = [int(n) for n in args.clients.split(",")]
    settings_tried = args.batching.split(",")
    for batching in settings_tried:
        settings = workspace.root / f"settings-{batching}.toml"
        settings.write_text(f"[api]\nmicro_batching = {'true' if batching == 'on' else 'false'}\n", encoding="utf-8")
        port = free_port()
        server = serve(workspace, settings, args.workers, port)
        try:
            for count in clients:
                row = asyncio.run(load(f"http://127.0.0.1:{port}", token, texts, count, args.seconds))
                print(f"micro-batching {batching}, {args.workers} process(es), {count:>2} client(s): "
                      f"{row['calls']:>5} calls, p50 {row['p50_ms']:7.1f} ms, p95 {row['p95_ms']:7.1f} ms, "
                      f"{row['texts_per_s']:8.1f} texts/s, {row['failed']} failed", flush=True)
                for key, value in row.items():
                    figures[f"{key}_{count}c_batching_{batching}"] = value
        finally:
            server.terminate()
            server.wait(60)
    judged, low, high = settings_tried[0], clients[0], clients[-1]
    figures["p95_20_vs_1"] = figures[f"p95_ms_{high}c_batching_{judged}"] / figures[f"p95_ms_{low}c_batching_{judged}"]
    figures["texts_per_s_20_vs_1"] = (figures[f"texts_per_s_{high}c_batching_{judged}"]
                                      / figures[f"texts_per_s_{low}c_batching_{judged}"])
    figures["failed_calls"] = float(sum(v for k, v in figures.items() if k.startswith("failed_")))
    with studio.store.engine.connect() as connection:
        audited = sum(1 for row in connection.execute(events.select()) if row.event_type in ("classified_file",
                                                                                           "classified_text"))
    answered = sum(v for k, v in figures.items() if k.startswith("calls_")) - figures["failed_calls"]
    figures["calls_not_audited"] = float(answered - audited)
    summary(figures)
    check_targets(figures, TARGETS)


if __name__ == "__main__":
    main()
