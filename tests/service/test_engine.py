"""InProcessEngine: a bounded pool, one execution per run id at a time, results in the journal."""

from __future__ import annotations

import threading
import time

import pytest

from supportdesk.errors import ConfigError, LLMError, RunNotFoundError
from supportdesk.service.engine import Engine, InProcessEngine, build_engine
from supportdesk.settings import Settings


class _BlockingFAQ:
    """An FAQ stage that blocks until released, then fails like a broken model (the run ends failed)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.active = 0
        self.most = 0
        self._lock = threading.Lock()

    def run(self, query: str):
        with self._lock:
            self.active += 1
            self.most = max(self.most, self.active)
        try:
            assert self.release.wait(60)
            raise LLMError("scripted failure after release")
        finally:
            with self._lock:
                self.active -= 1


@pytest.fixture
def blocking(tmp_path):
    """(settings, services whose FAQ step blocks, the FAQ stage)."""
    from supportdesk.crews.tools.ticketing import build_ticket_backend
    from supportdesk.flows.services import SupportServices

    settings = Settings(home=tmp_path / "home")
    faq = _BlockingFAQ()
    services = SupportServices(faq=faq, triage=None, tickets=build_ticket_backend(settings))  # type: ignore[arg-type]
    return settings, services, faq


def test_runs_queue_behind_a_bounded_pool_and_duplicates_are_not_queued_twice(blocking):
    """workers=2: at most two runs execute at once, the rest queue; resubmitting an in-flight id adds nothing."""
    from supportdesk._runner import open_journal

    settings, services, faq = blocking
    engine = InProcessEngine(settings, workers=2, services=services)
    assert isinstance(engine, Engine)
    for i in range(4):
        engine.submit(f"t.run-{i}", f"question number {i}", None, {"tenant": "t"})
    engine.submit("t.run-0", "question number 0", None, {"tenant": "t"})
    deadline = time.monotonic() + 30
    while faq.active < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert faq.active == 2 and engine.queue_depth() == 2
    assert engine.running("t.run-3")
    faq.release.set()
    for i in range(4):
        assert engine.wait(f"t.run-{i}", timeout=60)
    assert faq.most == 2 and engine.queue_depth() == 0
    journal = open_journal(settings)
    assert {journal.get(f"t.run-{i}").status.value for i in range(4)} == {"failed"}
    engine.close()
    assert not engine.ready()


def test_resume_of_an_unknown_run_raises_at_once(blocking):
    """resume() checks the journal before queueing anything."""
    settings, services, _ = blocking
    engine = InProcessEngine(settings, workers=1, services=services)
    engine.submit("t.exists", "a first question", None, {})
    faq = services.faq
    faq.release.set()
    engine.wait("t.exists", timeout=60)
    with pytest.raises(RunNotFoundError):
        engine.resume("t.nope")
    engine.close()


def test_build_engine_names_the_engine_or_fails_clearly(tmp_path):
    """'inprocess' builds the pool; an unknown engine name is a ConfigError; workers < 1 too."""
    engine = build_engine(Settings(home=tmp_path, engine="inprocess"), workers=3)
    assert isinstance(engine, InProcessEngine) and engine.workers == 3
    engine.close()
    with pytest.raises(ConfigError, match="inprocess"):
        build_engine(Settings(home=tmp_path, engine="celery"))
    with pytest.raises(ConfigError):
        InProcessEngine(Settings(home=tmp_path), workers=0)
