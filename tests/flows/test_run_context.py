"""Runs never mix: a run's model binding lives in its context only; concurrent runs on one services object stay apart."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor

from supportdesk import handle_query
from supportdesk._runner import open_journal
from supportdesk.flows.run_context import RunScopedModel
from supportdesk.flows.services import build_services
from supportdesk.llm import ChatMessage, ScriptedModel
from supportdesk.llm.scripted import ScriptedCall
from supportdesk.models import TicketStatus
from supportdesk.settings import Settings

HELLO = [ChatMessage("user", "hello")]


def _named(name: str) -> ScriptedModel:
    return ScriptedModel(lambda call: name, name=name)


def test_a_plain_thread_outside_the_run_never_reaches_the_run_model(caplog):
    """While a run is bound, a plain thread's call goes to the inner model, unjournaled, counted and logged."""
    inner, run_model = _named("inner"), _named("run")
    proxy = RunScopedModel(inner)
    seen: list[str] = []
    with caplog.at_level(logging.WARNING, logger="supportdesk.flows.run_context"), proxy.bind(run_model):
        thread = threading.Thread(target=lambda: seen.append(proxy.complete(HELLO).text))
        thread.start()
        thread.join()
        seen.append(proxy.complete(HELLO).text)
    assert seen == ["inner", "run"] and len(run_model.calls) == 1 and proxy.unscoped_calls == 1
    assert "outside any run's context" in caplog.text


def test_a_copied_context_stays_in_its_run():
    """A thread started in a copy of the run's context (as CrewAI starts its workers) reaches the run's model."""
    proxy, run_model = RunScopedModel(_named("inner")), _named("run")
    with proxy.bind(run_model), ThreadPoolExecutor(1) as pool:
        text = pool.submit(contextvars.copy_context().run, lambda: proxy.complete(HELLO).text).result()
    assert text == "run" and proxy.unscoped_calls == 0


def test_two_runs_bound_at_once_each_see_only_their_own():
    """Two runs bound in two threads at the same time: each thread's calls reach its own run model only."""
    proxy = RunScopedModel(_named("inner"))
    models = {"a": _named("a"), "b": _named("b")}
    both_bound = threading.Barrier(2)
    got: dict[str, list[str]] = {"a": [], "b": []}

    def run(name: str) -> None:
        with proxy.bind(models[name]):
            both_bound.wait()
            got[name] += [proxy.complete(HELLO).text for _ in range(20)]
            both_bound.wait()

    threads = [threading.Thread(target=run, args=(n,)) for n in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == {"a": ["a"] * 20, "b": ["b"] * 20} and proxy.current() is None


def test_binding_one_proxy_leaves_another_unbound():
    """Two services objects (two proxies) in one context: binding one never routes the other's calls."""
    first, second = RunScopedModel(_named("first")), RunScopedModel(_named("second"))
    with first.bind(_named("run")):
        assert second.complete(HELLO).text == "second" and first.complete(HELLO).text == "run"


def _answer(call: ScriptedCall) -> dict:
    """Classify with the schema's allowed values; a title made of the message's own first words."""
    props = (call.json_schema or {}).get("properties", {})
    if "title" in props:
        return {"title": " ".join(re.sub(r"</?[a-z_]+>", " ", call.messages[-1].content).split()[:5])}
    return {"category": props["category"]["enum"][0], "priority": props.get("priority", {}).get("enum", ["high"])[0],
            "rationale": "Account request."}


# First sentences too long for a title as they stand: the embedded policy asks the model for one.
QUERIES = {
    "mix-a": ("I was charged twice for my subscription in November and would like you to refund one of them.", "C-1001"),
    "mix-b": ("The export button does nothing when I click it on the web app, in Firefox and in Chrome alike.", "C-1002"),
    "mix-c": ("I was billed for three seats but we only have two users on the account, refund the difference.", None),
    "mix-d": ("The desktop app crashes every time I open a shared notebook, since the update of last Tuesday.", "C-1003"),
}


def test_concurrent_runs_sharing_services_keep_their_own_journal_and_budget(tmp_path):
    """Four runs at once on one services object, plus a stray thread calling the model: every journaled call,
    title and customer belongs to its own run, and the stray calls are in no run's journal or budget."""
    settings = Settings(home=tmp_path / "home", budget_llm_calls=4)
    model = ScriptedModel(_answer)
    services = build_services(settings, chat_model=model)
    stop = threading.Event()

    def stray() -> None:  # a plain worker thread, outside every run's context
        while not stop.wait(0.02):
            services.chat_model.complete([ChatMessage("user", "stray call")], json_schema={
                "properties": {"title": {"type": "string"}}})

    stray_thread = threading.Thread(target=stray)
    stray_thread.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            futures = {rid: pool.submit(handle_query, q, customer=c, run_id=rid, settings=settings, services=services)
                       for rid, (q, c) in QUERIES.items()}
            states = {rid: f.result() for rid, f in futures.items()}
    finally:
        stop.set()
        stray_thread.join()
    journal = open_journal(settings)
    with journal.db.transaction(write=False) as tx:
        rows = tx.fetchall("SELECT run_id, response_json FROM durable_calls ORDER BY run_id")
    assert services.chat_model.unscoped_calls > 0 and "stray" not in json.dumps(rows)
    for rid, (query, customer) in QUERIES.items():
        state = states[rid]
        assert state.status is TicketStatus.TICKET_CREATED, state.failure_reason
        assert state.customer_id == customer and state.ticket_title == " ".join(query.split()[:5])
        own = [r for r in rows if r[0] == rid]
        assert len(own) == state.llm_calls == 1  # within its own budget of 4, whatever the stray thread spent
        calls = [e for e in journal.audit(rid) if e.kind == "llm_call"]
        assert len(calls) == 1
    assert len(rows) == sum(s.llm_calls for s in states.values())
