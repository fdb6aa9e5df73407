"""Client side of ``crash_driver.py`` for the crash, concurrency and budget suites.

:func:`driver` starts one ``crash_driver.py --serve`` process per test session (imports paid once;
every CLI run is still its own process, forked from it, killed with a real SIGKILL where asked).
``SUPPORTDESK_CRASH_FRESH=1`` makes every run a fresh ``python crash_driver.py ...`` interpreter
instead (slow: about ten seconds a run on two cores; for checking the fork server changes nothing).

Every case gets its own ``SUPPORTDESK_HOME`` holding a copy of a warm cache (FAQ embeddings, the
linear head and its calibration: building them takes ~25 s, reading them a few ms), its own
database (SQLite file or PostgreSQL schema) and its own local ticket store under the home.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "crash_driver.py"
DOUBLE_CHARGE = "I was charged twice for my subscription this month and I want one payment refunded."
CUSTOMER = "C-1001"
RUN_ID = "crash-run"
STEPS = ("intake", "answer_from_faq", "triage", "check_approval", "file_ticket")
# What the environment of a CLI run must not inherit from the developer's shell.
UNSET = (
    "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "SERPER_API_KEY", "JIRA_URL",
    "JIRA_USER", "JIRA_EMAIL", "JIRA_API_TOKEN", "SUPPORTDESK_LLM", "SUPPORTDESK_DATABASE_URL", "SUPPORTDESK_HOME",
    "SUPPORTDESK_BUDGET_LLM_CALLS", "SUPPORTDESK_BUDGET_TOKENS", "SUPPORTDESK_BUDGET_SECONDS",
    "SUPPORTDESK_BUDGET_COST_USD", "SUPPORTDESK_DECISION_POLICY", "SUPPORTDESK_RUN_WAIT_S",
)
# State fields that legitimately differ between two executions of the same run: the wall-clock
# time the state object was built. Everything else (ids, route, answers, ticket id, counters of
# LLM calls and tokens) must be identical to an uninterrupted run's.
RUN_SPECIFIC_FIELDS = frozenset({"created_at"})


@dataclass
class Result:
    """One CLI run: exit status (``-9``: killed by SIGKILL) and its output."""

    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def ask_argv(run_id: str = RUN_ID) -> list[str]:
    return ["ask", DOUBLE_CHARGE, "--customer", CUSTOMER, "--run-id", run_id, "--json"]


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONUNBUFFERED"] = "1"
    env["TOKENIZERS_PARALLELISM"] = "false"
    return env


class Driver:
    """Runs the CLI through the fork server (or fresh interpreters) with optional kill points."""

    def __init__(self, fresh: bool = False) -> None:
        self.fresh = fresh
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self.scratch = Path(tempfile.mkdtemp(prefix="supportdesk-crash-"))
        self._warm_cache: Path | None = None
        if not fresh:
            self._proc = subprocess.Popen(
                [sys.executable, str(DRIVER), "--serve"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=_base_env(),
                cwd=str(HERE.parent.parent),
            )
            assert self._proc.stdout is not None
            ready = self._proc.stdout.readline()
            if not ready:
                raise RuntimeError(f"crash driver server did not start (exit {self._proc.wait()})")

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        shutil.rmtree(self.scratch, ignore_errors=True)

    # --- running ----------------------------------------------------------------------------

    @staticmethod
    def env_for(home: Path, db_url: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {"SUPPORTDESK_HOME": str(home), "CREWAI_STORAGE_DIR": str(home / "crewai")}
        if db_url:
            env["SUPPORTDESK_DATABASE_URL"] = db_url
        env.update(extra or {})
        return env

    def _request(self, argv: list[str], env: dict[str, str], kill_at: str | None, kill_nth: int,
                 calls_log: Path | None) -> dict[str, Any]:
        return {"argv": argv, "env": env, "unset": list(UNSET), "kill_at": kill_at, "kill_nth": kill_nth,
                "calls_log": str(calls_log) if calls_log else None}

    def run(self, argv: list[str], *, env: dict[str, str], kill_at: str | None = None, kill_nth: int = 1,
            calls_log: Path | None = None, timeout: float = 240) -> Result:
        """Run ``supportdesk <argv>`` in its own process; ``kill_at`` arms a SIGKILL."""
        if self.fresh:
            return self._run_fresh(argv, env, kill_at, kill_nth, calls_log, timeout)
        return self._rpc(self._request(argv, env, kill_at, kill_nth, calls_log))

    def run_together(self, argvs: list[list[str]], *, env: dict[str, str], calls_log: Path | None = None,
                     timeout: float = 300) -> list[Result]:
        """Start one process per argv, all released at the same instant; wait for all."""
        if self.fresh:
            return self._run_fresh_together(argvs, env, calls_log, timeout)
        batch = [self._request(a, env, None, 1, calls_log) for a in argvs]
        return self._rpc({"batch": batch})

    def _rpc(self, request: dict[str, Any]) -> Any:
        assert self._proc is not None and self._proc.stdin is not None and self._proc.stdout is not None
        with self._lock:
            self._proc.stdin.write(json.dumps(request) + "\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"crash driver server died (exit {self._proc.poll()})")
        data = json.loads(line)
        if isinstance(data, list):
            return [Result(d["returncode"], d["stdout"], d["stderr"]) for d in data]
        return Result(data["returncode"], data["stdout"], data["stderr"])

    def _fresh_cmd(self, argv: list[str], kill_at: str | None, kill_nth: int, calls_log: Path | None) -> list[str]:
        cmd = [sys.executable, str(DRIVER)]
        if kill_at:
            cmd += ["--kill-at", kill_at, "--kill-nth", str(kill_nth)]
        if calls_log:
            cmd += ["--calls-log", str(calls_log)]
        return [*cmd, "--", *argv]

    def _run_fresh(self, argv: list[str], env: dict[str, str], kill_at: str | None, kill_nth: int,
                   calls_log: Path | None, timeout: float) -> Result:
        proc = subprocess.run(
            self._fresh_cmd(argv, kill_at, kill_nth, calls_log), env={**_base_env(), **env}, capture_output=True,
            text=True, timeout=timeout, stdin=subprocess.DEVNULL, cwd=str(HERE.parent.parent),
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def _run_fresh_together(self, argvs: list[list[str]], env: dict[str, str], calls_log: Path | None,
                            timeout: float) -> list[Result]:
        """Fresh interpreters released together: each waits for a go-file before running the CLI."""
        go = self.scratch / f"go-{os.getpid()}-{id(argvs)}"
        wrapper = (
            "import os, sys, time, runpy\n"
            "go = os.environ['SUPPORTDESK_TEST_GO_FILE']\n"
            "import crash_driver\ncrash_driver._preload()\n"
            "while not os.path.exists(go): time.sleep(0.01)\n"
            "sys.argv = [crash_driver.__file__, *sys.argv[1:]]\nsys.exit(crash_driver.main())\n"
        )
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", wrapper, *self._fresh_cmd(a, None, 1, calls_log)[2:]],
                env={**_base_env(), **env, "SUPPORTDESK_TEST_GO_FILE": str(go)}, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL, cwd=str(HERE.parent.parent),
            )
            for a in argvs
        ]
        go.touch()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            results.append(Result(proc.returncode, out, err))
        return results

    # --- homes ------------------------------------------------------------------------------

    def warm_cache(self) -> Path:
        """A cache folder with the FAQ embeddings, head and calibration built (once per session)."""
        if self._warm_cache is None:
            home = self.scratch / "warm-home"
            result = self.run(ask_argv("warm-up"), env=self.env_for(home, None))
            assert result.returncode == 0, result.stderr[-3000:]
            self._warm_cache = home / "cache"
        return self._warm_cache

    def new_home(self, base: Path) -> Path:
        """A fresh SUPPORTDESK_HOME under ``base`` holding a copy of the warm cache."""
        cache = self.warm_cache()
        home = base / "home"
        home.mkdir(parents=True, exist_ok=True)
        shutil.copytree(cache, home / "cache", dirs_exist_ok=True)
        return home


_DRIVER: Driver | None = None


def driver() -> Driver:
    """The session's driver (started on first use, stopped at exit)."""
    global _DRIVER
    if _DRIVER is None:
        _DRIVER = Driver(fresh=os.environ.get("SUPPORTDESK_CRASH_FRESH") == "1")
        atexit.register(_DRIVER.close)
    return _DRIVER


# --- what the assertions read -------------------------------------------------------------------


def projection(state: dict[str, Any]) -> dict[str, Any]:
    """The state without the fields that differ between two executions of one run."""
    return {k: v for k, v in state.items() if k not in RUN_SPECIFIC_FIELDS}


def calls_log_counts(path: Path) -> tuple[Counter[str], Counter[str]]:
    """(started, completed) request digests of the real model calls in a calls log."""
    started: Counter[str] = Counter()
    ended: Counter[str] = Counter()
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            kind, _, digest = line.partition(" ")
            (started if kind == "start" else ended)[digest] += 1
    return started, ended


def call_order(path: Path) -> list[str]:
    """Digests of completed calls in the order they completed."""
    return [line.split(" ", 1)[1] for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("end ")]
