"""Side by side: supportdesk's flow against two peer designs, same cases, same embedded model, one run.

    python benchmarks/compare_peers.py [--source ../shared/datasets] [--limit 100] [--seed 7] [--json OUT]

Cases (``--limit``, default 100, split about 40/30/30): FAQ questions (a paraphrase of a
config/faq.yaml entry, *removed* from the KB every system searches, so nobody answers from the very
text), out-of-scope questions (CLINC150 ``oos`` test utterances) and requests that need a person and a
ticket (BANKING77 test queries of account-specific intents, and ticket-set test subjects+bodies).
Expected: the entry's answer for FAQ questions, an escalation for the rest.

Systems, all on the embedded Gemma 3 270M of ``LLMFactory`` (one model instance, counted calls):

1. ``supportdesk``: :func:`supportdesk.handle_query` with the FAQ stage over that KB (offline: no web
   search), the triage crew and a ticket in a scratch home (``eval --stage flow``'s services);
2. ``haystack_tutorial``: Haystack's RAG tutorial pattern: ``InMemoryBM25Retriever`` (top 3) ->
   ``ChatPromptBuilder`` (answer from the documents or reply ``NO_ANSWER``) -> generator ->
   ``ConditionalRouter`` (``NO_ANSWER`` in the reply: escalate; else the reply is the answer);
3. ``crewai_agent``: a stock CrewAI ``Agent`` with three tools (FAQ search, customer lookup, create
   ticket) deciding everything in CrewAI's default agent loop and prompts; it escalated when it
   called the ticket tool.

An answer counts as right when the case expects one and it came from the expected entry (supportdesk:
the entry it returns; the peers: the entry whose answer shares the most words with the reply, among
the documents or search results shown to the model). Prints a table (accuracy, wrong-answer rate,
model calls and tokens per case, p50/p95 latency) and, as its last stdout line, JSON
``{"systems": {name: {"accuracy", "wrong_answer_rate", "llm_calls_per_case", "llm_tokens_per_case",
"p50_s", "p95_s", "n"}}}``. The embedded model runs at about 50 tokens/s on two cores: use
``--limit`` for a reduced run (the table says how many cases it used).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCOUNT_INTENTS = ("transaction_charged_twice", "card_payment_not_recognised", "request_refund",
                   "Refund_not_showing_up", "compromised_card", "cash_withdrawal_not_recognised",
                   "direct_debit_payment_not_recognised", "card_swallowed", "lost_or_stolen_card")


@dataclass
class PeerCase:
    query: str
    expected: str  # entry id, or "escalate"
    kind: str  # faq | oos | ticket


@dataclass
class Tally:
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, case: PeerCase, route: str, entry: str | None, calls: int, tokens: int, seconds: float) -> None:
        right = (route == "escalate") if case.expected == "escalate" else (route == "answer" and entry == case.expected)
        self.rows.append({"kind": case.kind, "route": route, "right": right, "calls": calls, "tokens": tokens,
                          "seconds": seconds, "wrong_answer": route == "answer" and not right})

    def summary(self) -> dict[str, Any]:
        n = len(self.rows)
        answered = [r for r in self.rows if r["route"] == "answer"]
        secs = sorted(r["seconds"] for r in self.rows)

        def pct(q: float) -> float:
            if not secs:
                return float("nan")
            pos = (len(secs) - 1) * q
            lo, hi = int(pos), min(int(pos) + 1, len(secs) - 1)
            return secs[lo] + (secs[hi] - secs[lo]) * (pos - lo)

        return {"n": n, "accuracy": sum(r["right"] for r in self.rows) / max(n, 1),
                "wrong_answer_rate": sum(r["wrong_answer"] for r in answered) / max(len(answered), 1),
                "coverage": len(answered) / max(n, 1),
                "llm_calls_per_case": sum(r["calls"] for r in self.rows) / max(n, 1),
                "llm_tokens_per_case": sum(r["tokens"] for r in self.rows) / max(n, 1),
                "p50_s": pct(0.5), "p95_s": pct(0.95)}


class CountingModel:
    """The shared chat model, counting calls and tokens per case (``reset`` between cases)."""

    def __init__(self, model: Any) -> None:
        self.model, self.name = model, model.name
        self.calls = self.tokens = 0

    def reset(self) -> None:
        self.calls = self.tokens = 0

    def complete(self, messages: Any, **kwargs: Any) -> Any:
        completion = self.model.complete(messages, **kwargs)
        self.calls += 1
        self.tokens += completion.prompt_tokens + completion.completion_tokens
        return completion


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2}


def attribute(reply: str, entries: list[Any]) -> str | None:
    """The shown entry whose answer shares the most words with ``reply`` (None if none shares any)."""
    best, best_overlap = None, 0.0
    said = _words(reply)
    for entry in entries:
        words = _words(entry.answer)
        overlap = len(said & words) / max(len(words), 1)
        if overlap > best_overlap:
            best, best_overlap = entry.id, overlap
    return best


def build_cases(source: Path, limit: int, seed: int) -> tuple[list[PeerCase], Any]:
    """The labelled cases and the KB every system searches (faq.yaml minus the queried paraphrases)."""
    from supportdesk.rag.knowledge_base import KnowledgeBase

    rng = random.Random(seed)
    kb = KnowledgeBase.from_config()
    n_faq, n_oos = round(limit * 0.4), round(limit * 0.3)
    n_ticket = limit - n_faq - n_oos
    entries = [e for e in kb.entries if e.paraphrases]
    rng.shuffle(entries)
    faq_cases, held = [], {}
    for entry in (entries * 3)[:n_faq]:
        left = [p for p in entry.paraphrases if p not in held.get(entry.id, set())]
        if len(left) < 2:
            continue
        query = rng.choice(left)
        held.setdefault(entry.id, set()).add(query)
        faq_cases.append(PeerCase(query, entry.id, "faq"))
    records = [{**e.model_dump(), "paraphrases": [p for p in e.paraphrases if p not in held.get(e.id, set())]}
               for e in kb.entries]
    kb = KnowledgeBase.from_records(records, source="faq.yaml minus held-out paraphrases",
                                    escalate_examples=kb.escalate_examples, company=kb.company)
    clinc = json.loads((source / "clinc150" / "data_full.json").read_text(encoding="utf-8"))
    oos = [PeerCase(t, "escalate", "oos") for t, _ in rng.sample(clinc["oos_test"], n_oos)]
    with (source / "banking77" / "test.csv").open(encoding="utf-8") as fh:
        banking = [r["text"] for r in csv.DictReader(fh) if r["category"] in ACCOUNT_INTENTS]
    tickets = []
    path = next((source / "tickets").glob("*v5*.csv"))
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row.get("language") == "en" and row.get("body"):
                tickets.append(f"{row.get('subject') or ''}\n{row['body']}".strip()[:600])
    ticket_cases = [PeerCase(t, "escalate", "ticket") for t in rng.sample(banking, n_ticket - n_ticket // 2)]
    ticket_cases += [PeerCase(t, "escalate", "ticket") for t in rng.sample(tickets, n_ticket // 2)]
    cases = faq_cases + oos + ticket_cases
    rng.shuffle(cases)
    return cases, kb


# ------------------------------------------------------------------------------------------- systems


def supportdesk_system(kb: Any, model: CountingModel, home: Path) -> Any:
    from supportdesk import handle_query
    from supportdesk.crews.tools.ticketing import build_ticket_backend
    from supportdesk.crews.triage.triage_crew import TriageCrew
    from supportdesk.flows.services import SupportServices
    from supportdesk.rag.pipeline import FAQPipeline, load_rag_policy
    from supportdesk.settings import load_settings

    settings = load_settings().model_copy(update={"home": home, "database_url": None, "jira_url": None,
                                                  "serper_api_key": None})
    cache = Path(load_settings().home) / "cache"
    faq = FAQPipeline(kb, model, None, load_rag_policy("embedded"), cache_dir=cache)
    services = SupportServices(faq=faq, triage=TriageCrew(model, policy="embedded"),
                               tickets=build_ticket_backend(settings), chat_model=model)

    def run(case: PeerCase) -> tuple[str, str | None]:
        state = handle_query(case.query, settings=settings, services=services)
        if state.status.value == "faq_answered":
            return "answer", state.faq_id
        return "escalate", None

    return run


HAYSTACK_PROMPT = """Given the following information, answer the question.
If the answer is not contained within the documents, reply with 'NO_ANSWER'.

Context:
{% for document in documents %}
    {{ document.content }}
{% endfor %}

Question: {{ question }}
Answer:"""


def haystack_system(kb: Any, model: CountingModel) -> Any:
    from haystack import Document, Pipeline
    from haystack.components.builders import ChatPromptBuilder
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
    from haystack.components.routers import ConditionalRouter
    from haystack.dataclasses import ChatMessage
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    from supportdesk.llm.haystack_generator import ChatModelGenerator

    store = InMemoryDocumentStore()
    store.write_documents([Document(content=f"{e.question}\n{e.answer}", meta={"entry_id": e.id}) for e in kb.entries])
    routes = [
        {"condition": "{{'NO_ANSWER' in replies[0].text}}", "output": "{{question}}", "output_name": "escalate",
         "output_type": str},
        {"condition": "{{'NO_ANSWER' not in replies[0].text}}", "output": "{{replies[0].text}}", "output_name": "answer",
         "output_type": str},
    ]
    pipe = Pipeline()
    pipe.add_component("retriever", InMemoryBM25Retriever(store, top_k=3))
    pipe.add_component("prompt", ChatPromptBuilder(template=[ChatMessage.from_user(HAYSTACK_PROMPT)],
                                                   required_variables="*"))
    pipe.add_component("llm", ChatModelGenerator(model, max_tokens=200))
    pipe.add_component("router", ConditionalRouter(routes))
    pipe.connect("retriever.documents", "prompt.documents")
    pipe.connect("llm.replies", "router.replies")
    pipe.connect("prompt.prompt", "llm.messages")

    def run(case: PeerCase) -> tuple[str, str | None]:
        out = pipe.run({"retriever": {"query": case.query}, "prompt": {"question": case.query},
                        "router": {"question": case.query}}, include_outputs_from={"retriever"})
        if "escalate" in out["router"]:
            return "escalate", None
        shown = [kb.get(d.meta["entry_id"]) for d in out["retriever"]["documents"]]
        return "answer", attribute(out["router"]["answer"], shown)

    return run


def crewai_system(kb: Any, model: CountingModel, faq: Any, home: Path) -> Any:
    from crewai import Agent, Crew, Task
    from crewai.tools import BaseTool

    from supportdesk.crews.tools.customer_db import CustomerDB
    from supportdesk.llm.crewai_llm import CrewChatLLM
    from supportdesk.settings import load_settings

    db = CustomerDB.from_settings(load_settings().model_copy(update={"home": home}))
    state: dict[str, Any] = {}

    class FAQSearch(BaseTool):
        name: str = "faq_search"
        description: str = "Search the company FAQ. Input: the customer's question. Returns the best entries."

        def _run(self, query: str) -> str:
            found = [kb.get(i) for i, _ in faq.candidates(query, top_k=3)]
            state["shown"].extend(found)
            return "\n\n".join(f"[{e.id}] Q: {e.question}\nA: {e.answer}" for e in found)

    class CustomerLookup(BaseTool):
        name: str = "customer_lookup"
        description: str = "Look up a customer account by e-mail address."

        def _run(self, email: str) -> str:
            record = db.get_by_email(email.strip())
            return "no customer with that e-mail" if record is None else record.model_dump_json()

    class CreateTicket(BaseTool):
        name: str = "create_ticket"
        description: str = "Create a support ticket for a person to handle. Input: a short summary."

        def _run(self, summary: str) -> str:
            state["ticket"] = summary
            return "ticket T-1 created"

    def run(case: PeerCase) -> tuple[str, str | None]:
        state.clear()
        state["shown"] = []
        agent = Agent(role="Customer support agent", goal="Resolve customer messages correctly",
                      backstory="You answer customers from the company FAQ and create a ticket when the FAQ "
                                "does not answer or the request needs a person.",
                      tools=[FAQSearch(), CustomerLookup(), CreateTicket()], llm=CrewChatLLM.wrap(model), verbose=False)
        task = Task(description=f"Customer message: {case.query}\nAnswer it from the FAQ if the FAQ answers it; "
                                "otherwise create a ticket.",
                    expected_output="The reply to the customer.", agent=agent)
        try:
            result = str(Crew(agents=[agent], tasks=[task], verbose=False).kickoff())
        except Exception as exc:  # noqa: BLE001 - an agent failure counts as an escalation
            print(f"crewai_agent: {type(exc).__name__}: {str(exc)[:120]}", file=sys.stderr)
            return "escalate", None
        if "ticket" in state:
            return "escalate", None
        return "answer", attribute(result, state["shown"])

    return run


# ---------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "datasets")
    parser.add_argument("--limit", type=int, default=100, help="cases (default 100)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--systems", default="supportdesk,haystack_tutorial,crewai_agent")
    parser.add_argument("--json", type=Path, default=None, help="also write per-case rows and the summary")
    args = parser.parse_args(argv)

    from supportdesk.llm.factory import LLMFactory
    from supportdesk.llm.scripted import ScriptedModel
    from supportdesk.rag.pipeline import FAQPipeline, load_rag_policy
    from supportdesk.settings import load_settings

    cases, kb = build_cases(args.source, args.limit, args.seed)
    model = CountingModel(LLMFactory(load_settings()).chat_model())
    scratch = Path(tempfile.mkdtemp(prefix="compare-peers-"))
    faq_search = FAQPipeline(kb, ScriptedModel([]), None, load_rag_policy("embedded"),
                             cache_dir=Path(load_settings().home) / "cache")
    builders = {"supportdesk": lambda: supportdesk_system(kb, model, scratch / "sd"),
                "haystack_tutorial": lambda: haystack_system(kb, model),
                "crewai_agent": lambda: crewai_system(kb, model, faq_search, scratch / "crew")}
    tallies: dict[str, Tally] = {}
    for name in args.systems.split(","):
        run, tally = builders[name](), Tally()
        for i, case in enumerate(cases, 1):
            model.reset()
            started = time.perf_counter()
            route, entry = run(case)
            tally.add(case, route, entry, model.calls, model.tokens, time.perf_counter() - started)
            print(f"[{name} {i}/{len(cases)}] {case.kind} -> {route} {entry or ''} ({time.perf_counter() - started:.1f}s)",
                  file=sys.stderr, flush=True)
        tallies[name] = tally
    summary = {name: t.summary() for name, t in tallies.items()}
    print(f"{len(cases)} cases ({sum(c.kind == 'faq' for c in cases)} FAQ, {sum(c.kind == 'oos' for c in cases)} "
          f"out of scope, {sum(c.kind == 'ticket' for c in cases)} need a ticket), embedded model, seed {args.seed}")
    print(f"{'system':20s} {'accuracy':>8s} {'wrong':>6s} {'cover':>6s} {'calls/c':>8s} {'tok/c':>8s} {'p50 s':>7s} {'p95 s':>7s}")
    for name, s in summary.items():
        print(f"{name:20s} {s['accuracy']:8.3f} {s['wrong_answer_rate']:6.3f} {s['coverage']:6.3f} "
              f"{s['llm_calls_per_case']:8.2f} {s['llm_tokens_per_case']:8.1f} {s['p50_s']:7.2f} {s['p95_s']:7.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps({"systems": summary, "rows": {k: t.rows for k, t in tallies.items()}}, indent=1))
    print(json.dumps({"systems": summary}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
