"""Run the ``supportdesk`` CLI with a scripted model and an optional SIGKILL at a named point.

Fault injection lives only here (tests), never in the package::

    python tests/durable/crash_driver.py --kill-at llm_before --kill-nth 2 --calls-log calls.log -- \
        ask "I was charged twice ..." --customer C-1001 --run-id R --json

Before calling :func:`supportdesk.cli.main` it patches

* the model: ``LLMFactory.chat_model`` returns a deterministic :class:`ScriptedModel` (answers by the
  request's JSON schema) that appends ``start <hash>`` / ``end <hash>`` lines to ``--calls-log``
  around every real (not replayed) call;
* the kill points (``os.kill(os.getpid(), SIGKILL)`` at the Nth occurrence):

  ============================  ====================================================================
  ``step_start:<step>``          a durable step is entered (before its lease renewal and audit entry)
  ``step_end:<step>``            a durable step has left its journal scope (checkpoint committed)
  ``checkpoint_write:<step>``    inside the checkpoint transaction: every row written, not committed
  ``llm_before``                 the model is about to be called (Nth real call)
  ``llm_after``                  the model returned, its answer is not journaled yet
  ``llm_recorded``               the model's answer is journaled (the call is complete)
  ``ticket_before``              ``LocalTicketStore.create`` is about to run (intent recorded)
  ``ticket_after``               the ticket exists, its outcome is not recorded yet
  ``finish_write``               inside the transaction that marks the run finished, not committed
  ============================  ====================================================================

``--serve`` turns the driver into a fork server for the test suite: it imports the heavy
libraries once, then reads one JSON request per line on stdin (``{"argv": [...], "env": {...},
"kill_at": ..., "kill_nth": ..., "calls_log": ...}``), forks a child per request that applies the
patches and runs the CLI exactly as above, and answers one JSON line with the child's exit status
(``-9`` when it died of SIGKILL) and its captured stdout/stderr. Every run is still its own
process killed with a real SIGKILL; only the interpreter start-up and imports are shared.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

CLASSIFICATION = {"category": "billing", "priority": "high", "rationale": "A duplicate subscription charge."}
TITLE = {"title": "Refund duplicate subscription charge"}
FAQ_NO_ANSWER = {"verdict": "no_answer", "answer": ""}


def respond(call: Any) -> dict[str, Any] | str:
    """The scripted model's answer to a request, decided by the request's JSON schema only."""
    props = set((call.json_schema or {}).get("properties", {}))
    if "category" in props:
        return CLASSIFICATION
    if "title" in props:
        return TITLE
    if "verdict" in props:
        return FAQ_NO_ANSWER
    if "summary" in props:
        return {"summary": "Customer C-1001 on an active plan; two charges this month."}
    return "ok"


def request_digest(messages: Sequence[Any], json_schema: Any) -> str:
    body = {"messages": [[m.role, m.content] for m in messages], "schema": json_schema}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]


class _Killer:
    """Counts occurrences of kill points and SIGKILLs this process at the armed one."""

    def __init__(self, point: str | None, nth: int) -> None:
        self.point = point
        self.nth = nth
        self.seen: dict[str, int] = {}
        self._lock = threading.Lock()

    def hit(self, point: str) -> None:
        with self._lock:
            self.seen[point] = n = self.seen.get(point, 0) + 1
        if point == self.point and n == self.nth:
            sys.stdout.flush()
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)


def install(kill_at: str | None, kill_nth: int, calls_log: str | None) -> _Killer:
    """Patch the model factory and wrap the kill points (in this process only)."""
    from supportdesk.crews.tools.ticketing import LocalTicketStore
    from supportdesk.durable import replay
    from supportdesk.durable.journal import RunJournal
    from supportdesk.llm import ScriptedModel
    from supportdesk.llm.factory import LLMFactory

    killer = _Killer(kill_at, kill_nth)

    def log(line: str) -> None:
        if calls_log:
            with open(calls_log, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
                fh.flush()
                os.fsync(fh.fileno())

    class LoggedScriptedModel(ScriptedModel):
        def complete(self, messages: list[Any], **kwargs: Any) -> Any:
            digest = request_digest(messages, kwargs.get("json_schema"))
            killer.hit("llm_before")
            log(f"start {digest}")
            completion = super().complete(messages, **kwargs)
            log(f"end {digest}")
            killer.hit("llm_after")
            return completion

    model = LoggedScriptedModel(respond)
    LLMFactory.chat_model = lambda self: model  # type: ignore[method-assign]

    real_journaled_complete = replay.JournaledChatModel.complete

    def journaled_complete(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = real_journaled_complete(self, *args, **kwargs)
        if not (result.raw or {}).get("replayed"):
            killer.hit("llm_recorded")
        return result

    replay.JournaledChatModel.complete = journaled_complete  # type: ignore[method-assign]

    real_step = RunJournal.step

    @contextlib.contextmanager
    def step(self: Any, run_id: str, name: str) -> Any:
        killer.hit(f"step_start:{name}")
        with real_step(self, run_id, name) as scope:
            yield scope
        killer.hit(f"step_end:{name}")

    RunJournal.step = step  # type: ignore[method-assign]

    real_audit = RunJournal._audit

    def audit(self: Any, tx: Any, run_id: str, kind: str, data: dict[str, Any], *, step: str | None = None) -> int:
        seq = real_audit(self, tx, run_id, kind, data, step=step)
        if kind == "checkpoint":  # the checkpoint's last statement: its rows are written, not committed
            killer.hit(f"checkpoint_write:{step}")
        elif kind == "run_finished":
            killer.hit("finish_write")
        return seq

    RunJournal._audit = audit  # type: ignore[method-assign]

    real_create = LocalTicketStore.create

    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        killer.hit("ticket_before")
        receipt = real_create(self, *args, **kwargs)
        killer.hit("ticket_after")
        return receipt

    LocalTicketStore.create = create  # type: ignore[method-assign]
    return killer


def run_cli(argv: Sequence[str], kill_at: str | None, kill_nth: int, calls_log: str | None) -> int:
    """Patch, then run ``supportdesk.cli.main(argv)``."""
    install(kill_at, kill_nth, calls_log)
    from supportdesk.cli import main

    return main(list(argv))


def _parse(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    argv = list(argv)
    rest: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, rest = argv[:i], argv[i + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--kill-at", help="the kill point (see the module docstring)")
    parser.add_argument("--kill-nth", type=int, default=1, help="kill at the Nth occurrence of the point")
    parser.add_argument("--calls-log", help="append one line per real model call start/end here")
    parser.add_argument("--serve", action="store_true", help="fork server mode (requests on stdin)")
    return parser.parse_args(argv), rest


# --------------------------------------------------------------------------------------- fork server


def _preload() -> None:
    """Import what every run imports, so forked children start warm (no threads are started here)."""
    import supportdesk  # noqa: F401
    import supportdesk.cli  # noqa: F401
    import supportdesk.crews.triage.triage_crew  # noqa: F401
    import supportdesk.durable  # noqa: F401
    import supportdesk.flows.support_flow  # noqa: F401
    import supportdesk.rag.pipeline  # noqa: F401
    from supportdesk.eval import cli as _eval_cli  # noqa: F401

    from supportdesk.rag._minilm import get_encoder

    with contextlib.suppress(ImportError):
        import psycopg  # noqa: F401
    with contextlib.suppress(ImportError):
        import crewai.memory.storage.lancedb_storage  # noqa: F401  (CrewAI imports it in every flow)
    get_encoder("all-MiniLM-L6-v2")  # the prefilter's weights: NumPy arrays, shared copy-on-write by the children


def _child(request: dict[str, Any], out_path: str, err_path: str) -> None:
    """In the forked child: redirect stdio to files, set the environment, run the CLI, exit."""
    code = 70
    try:
        out_fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        err_fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        null_fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null_fd, 0)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
        for name in request.get("unset", []):
            os.environ.pop(name, None)
        os.environ.update(request.get("env", {}))
        if request.get("cwd"):
            os.chdir(request["cwd"])
        code = run_cli(request["argv"], request.get("kill_at"), int(request.get("kill_nth", 1)), request.get("calls_log"))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 71
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _start_child(
    request: dict[str, Any], scratch: str, n: int, gate: tuple[int, int] | None
) -> tuple[int, str, str]:
    """Fork one child; with ``gate`` (a pipe) it waits until the server closes the write end."""
    out_path, err_path = os.path.join(scratch, f"{n}.out"), os.path.join(scratch, f"{n}.err")
    pid = os.fork()
    if pid == 0:
        if gate is not None:
            os.close(gate[1])
            os.read(gate[0], 1)  # EOF once the server has forked every child of the batch
            os.close(gate[0])
        _child(request, out_path, err_path)  # never returns
    return pid, out_path, err_path


def _collect(pid: int, out_path: str, err_path: str) -> dict[str, Any]:
    _, status = os.waitpid(pid, 0)
    returncode = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    result = {"pid": pid, "returncode": returncode}
    for key, path in (("stdout", out_path), ("stderr", err_path)):
        result[key] = Path(path).read_text(encoding="utf-8", errors="replace")
        os.unlink(path)
    return result


def serve() -> int:
    """Fork server loop: one request line in, one result line out (``{"batch": [...]}`` runs the
    requests as simultaneous children, released together, and answers with a list)."""
    import warnings

    warnings.filterwarnings("ignore", message=".*fork support is experimental.*")
    _preload()
    scratch = tempfile.mkdtemp(prefix="crash-driver-")
    out = sys.stdout
    print(json.dumps({"ready": True, "pid": os.getpid()}), file=out, flush=True)
    n = 0
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        batch = request.get("batch")
        children = []
        gate = os.pipe() if batch is not None else None
        for req in batch if batch is not None else [request]:
            n += 1
            children.append(_start_child(req, scratch, n, gate))
        if gate is not None:
            os.close(gate[0])
            os.close(gate[1])  # releases the whole batch at once
        results = [_collect(*child) for child in children]
        print(json.dumps(results if batch is not None else results[0]), file=out, flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args, rest = _parse(sys.argv[1:] if argv is None else argv)
    if args.serve:
        return serve()
    return run_cli(rest, args.kill_at, args.kill_nth, args.calls_log)


if __name__ == "__main__":
    sys.exit(main())
