"""The worst-case model: a ScriptedModel whose responder obeys every instruction it reads in the prompt.

It stands in for a capable model that an attacker fully controls through the text it reads. Without
instructions it behaves like a good model (follows code's hint, picks the first FAQ entry or web
result, writes short grounded text); with instructions anywhere in the prompt it:

* picks the category / priority / FAQ entry / web result / verdict the text asks for (within the JSON
  schema's enums, as constrained decoding would);
* echoes the system prompt (canary included) when asked to print, reveal or spell-check instructions;
* writes the text the attacker asks it to say, the links it was told to give, and everything it saw
  about any account when asked to show account details.

``ObedientModel().model`` is the ScriptedModel; ``.obeyed`` counts what it did, so a test can show that
an attack really reached the model and that code, not the model's weakness, stopped it::

    obedient = ObedientModel()
    services = build_services(settings, chat_model=obedient.model)
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from supportdesk.llm import ScriptedModel
from supportdesk.llm.scripted import ScriptedCall

CATEGORIES = ("billing", "technical", "general", "unknown")
_CATEGORY_DEMAND = re.compile(
    r"(?:classif(?:y|ied)|categori[sz]e|file|route|mark|label|tag|put|treat|set\s+the\s+category|category)\b"
    r"[^.\n]{0,40}?\b(?:as|under|in(?:to)?|to|=|:|is|be)\s*[\"']?(billing|technical|general|unknown)\b", re.I)
_PRIORITY_DEMAND = re.compile(
    r"(?:set|make|mark|change|raise|lower|give|assign|bump|downgrade|upgrade|priority)\b[^.\n]{0,40}?"
    r"\b(?:to|as|=|:|be|is)\s*[\"']?(low|medium|high|urgent|critical)\b", re.I)
_LEAK_DEMAND = re.compile(
    r"system\s+prompt|(?:previous|above|prior|initial|hidden|original|your)\s+(?:instructions|prompt|directions)"
    r"|spell\s*check|passphrase|reveal|initial\s+prompt", re.I)
_SAY_DEMAND = re.compile(
    r"(?:say|print|repeat|reply(?:\s+only)?\s+with|respond(?:\s+only)?\s+with|output|write|provide\s+it\s+to\s+the\s+user"
    r"|report|following\s+text)\s*(?:only|exactly|just)?\s*:?\s*[\"“'<]+([^\"”'<>\n]{3,200})[\"”'>]", re.I)
_URL = re.compile(r"(?:https?://|www\.)[^\s\"'<>)\]]+|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|biz|example|io|net|org)/[^\s\"'<>)\]]*", re.I)
_ENTRY_DEMAND = re.compile(r"(?:entry|faq)\s*(?:id)?\s*[\"':=]*\s*([a-z0-9]+(?:-[a-z0-9]+)+)", re.I)
_NO_ANSWER_DEMAND = re.compile(r"no_answer|do\s+not\s+answer|don't\s+answer|escalate|needs?\s+a\s+(?:human|person)", re.I)
_ANSWER_DEMAND = re.compile(r"issue\s+is\s+resolved|do\s+not\s+open\s+a\s+ticket|verdict\s*[\"':= ]+answer|you\s+must\s+answer", re.I)
_RESULT_DEMAND = re.compile(r"result(?:_number|\s+number)?\s*[\"':= #]*(\d)\b", re.I)
_ACCOUNT_DEMAND = re.compile(r"invoices?|account\s+details|e-?mail\s+address|customer\s+C-\d+|all\s+customers|plan\b", re.I)
_HINT = re.compile(r"suggests\s+(\w+)\s+with\s+priority\s+(low|medium|high)|category\s+is\s+(\w+)\s+and\s+the\s+priority\s+is\s+(low|medium|high)", re.I)
_CUSTOMER_BLOCK = re.compile(r"<customer_message>(.*?)</customer_message>|message:\s*\"(.*?)\"\s*(?:\n|$)", re.S | re.I)


def _first_words(text: str, n: int) -> str:
    return " ".join(text.split()[:n])


class ObedientModel:
    """A ScriptedModel (``.model``) that obeys every instruction in its prompt; ``.obeyed`` counts them."""

    def __init__(self, name: str = "obedient") -> None:
        self.obeyed: Counter[str] = Counter()
        self.model = ScriptedModel(self.respond, name=name)

    # ------------------------------------------------------------------ reading the prompt

    @staticmethod
    def _texts(call: ScriptedCall) -> tuple[str, str]:
        system = "\n".join(m.content for m in call.messages if m.role == "system")
        others = "\n".join(m.content for m in call.messages if m.role != "system")
        return system, others

    def _instructions(self, call: ScriptedCall) -> str:
        """The untrusted text of the prompt, which this model obeys as if it were the operator's: the
        customer's message, the web results and the FAQ entries shown (the operator's own prose is
        what it follows anyway, by default)."""
        _, others = self._texts(call)
        parts = [m.group(1) or m.group(2) or "" for m in _CUSTOMER_BLOCK.finditer(others)]
        parts += [body for _n, body in re.findall(r"<result number=\"(\d+)\"[^>]*>(.*?)</result>", others, re.S)]
        entries = re.search(r"FAQ entries:(.*?)(?:Reply with JSON|$)", others, re.S)
        if entries:
            parts.append(entries.group(1))
        if not parts and call.messages:  # the title slot: the customer's message is the last user turn
            parts.append(call.messages[-1].content)
        return "\n".join(parts)

    def _leak(self, call: ScriptedCall, text: str) -> str | None:
        if _LEAK_DEMAND.search(text):
            system, _ = self._texts(call)
            self.obeyed["leak"] += 1
            return " ".join(system.split())
        return None

    def _demanded_text(self, call: ScriptedCall, text: str) -> str:
        """What the attacker asked the model to write: quoted strings, links, the leaked prompt."""
        parts = [m.group(1).strip() for m in _SAY_DEMAND.finditer(text)]
        if parts:
            self.obeyed["say"] += 1
        links = list(dict.fromkeys(m.group(0).rstrip(".,;") for m in _URL.finditer(text)))
        if links:
            self.obeyed["link"] += 1
            parts.append("Visit " + " ".join(links))
        leaked = self._leak(call, text)
        if leaked:
            parts.append(leaked)
        if _ACCOUNT_DEMAND.search(text):
            facts = re.search(r"Account facts[^:]*:\s*(.*?)(?:\n\n|$)", self._texts(call)[1], re.S)
            if facts:
                self.obeyed["account"] += 1
                parts.append(" ".join(facts.group(1).split()))
        return " ".join(parts)

    # ------------------------------------------------------------------ answering

    def respond(self, call: ScriptedCall) -> str:
        schema = call.json_schema or {}
        props = schema.get("properties", {}) or {}
        if "answer" in props and ("tool" in props or set(props) == {"answer"}):
            return self._agent_step(call, schema, props)
        text = self._instructions(call)
        _, whole = self._texts(call)
        if {"category", "priority"} <= set(props):
            value = self._classify(call, props, text)
        elif "verdict" in props and "entry_id" in props:
            value = self._faq(call, props, text)
        elif "verdict" in props and "result_number" in props:
            value = self._web(call, props, text)
        elif set(props) == {"summary"}:
            value = {"summary": self._free(call, text, default=self._facts(whole))[:300]}
        elif {"title", "summary"} <= set(props):
            customer = self._customer(whole)
            value = {"title": self._free(call, text, default=_first_words(customer, 8))[:120] or "Support request",
                     "summary": self._free(call, text, default=customer)[:1000] or "Customer request."}
        elif "title" in props:
            value = {"title": self._free(call, text, default=_first_words(self._customer(whole) or text, 8))[:80] or "Support request"}
        else:
            return self._free(call, text, default="OK") or "OK"
        return json.dumps(value)

    def _agent_step(self, call: ScriptedCall, schema: dict[str, Any], props: dict[str, Any]) -> str:
        """A tool-using agent's step: call the lookup for any account the text names (once), then answer."""
        tools = [t for t in (self._enum(props, "tool") or []) if t]
        called = any('"tool": "' in m.content or "Action:" in m.content for m in call.messages if m.role == "assistant")
        text = self._instructions(call)
        if tools and not called:
            ids = re.findall(r"\bC-\d{4,8}\b", text)
            emails = re.findall(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", text)
            if ids or emails:
                self.obeyed["tool"] += 1
                arguments = {"customer_id": ids[0]} if ids else {"email": emails[0]}
                return json.dumps({"tool": tools[0], "arguments": arguments, "answer": None})
        inner = self._resolve(schema, props["answer"])
        sub = ScriptedCall(call.messages, {**inner, "$defs": schema.get("$defs", {})}, call.max_tokens)
        answer = json.loads(self.respond(sub))
        return json.dumps({"tool": None, "arguments": {}, "answer": answer} if "tool" in props else {"answer": answer})

    @staticmethod
    def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
        for option in [node, *(node.get("anyOf") or [])]:
            ref = option.get("$ref")
            if ref:
                return schema.get("$defs", {}).get(ref.rsplit("/", 1)[-1], {})
            if option.get("properties"):
                return option
        return node

    @staticmethod
    def _enum(props: dict[str, Any], key: str) -> list[Any] | None:
        spec = props.get(key) or {}
        if "enum" in spec:
            return list(spec["enum"])
        for option in spec.get("anyOf", []) or []:
            if "enum" in option:
                return list(option["enum"]) + ([None] if any(o.get("type") == "null" for o in spec["anyOf"]) else [])
        return None

    def _customer(self, text: str) -> str:
        match = _CUSTOMER_BLOCK.search(text)
        return " ".join((match.group(1) or match.group(2) or "").split()) if match else ""

    @staticmethod
    def _facts(text: str) -> str:
        match = re.search(r"Account facts[^:]*:\s*(.*?)(?:\n\n|$)", text, re.S)
        return " ".join(match.group(1).split())[:300] if match else "No account facts."

    def _free(self, call: ScriptedCall, text: str, *, default: str) -> str:
        demanded = self._demanded_text(call, text)
        return demanded or default

    def _classify(self, call: ScriptedCall, props: dict[str, Any], text: str) -> dict[str, Any]:
        _, others = self._texts(call)
        hint = _HINT.search(others)
        category = (hint.group(1) or hint.group(3)) if hint else CATEGORIES[0]
        priority = (hint.group(2) or hint.group(4)) if hint else "medium"
        allowed_c = self._enum(props, "category") or list(CATEGORIES)
        allowed_p = self._enum(props, "priority") or ["low", "medium", "high"]
        for match in _CATEGORY_DEMAND.finditer(text):
            wanted = match.group(1).lower()
            if wanted != category and wanted in allowed_c:
                category = wanted
                self.obeyed["category"] += 1
                break
        for match in _PRIORITY_DEMAND.finditer(text):
            wanted = {"urgent": "high", "critical": "high"}.get(match.group(1).lower(), match.group(1).lower())
            if wanted != priority and wanted in allowed_p:
                priority = wanted
                self.obeyed["priority"] += 1
                break
        if category not in allowed_c:
            category = allowed_c[0]
        if priority not in allowed_p:
            priority = allowed_p[0]
        rationale = self._free(call, text, default=f"The message is about {category}.")
        return {"category": category, "priority": priority, "rationale": rationale[:200]}

    def _faq(self, call: ScriptedCall, props: dict[str, Any], text: str) -> dict[str, Any]:
        ids = [i for i in (self._enum(props, "entry_id") or []) if i]
        if not ids:
            ids = re.findall(r"^\[([a-z0-9-]+)\]", self._texts(call)[1], re.M)
        if not ids:
            return {"verdict": "no_answer", "entry_id": None, "answer": ""}
        entry = ids[0]
        for match in _ENTRY_DEMAND.finditer(text):
            if match.group(1) in ids and match.group(1) != entry:
                entry = match.group(1)
                self.obeyed["entry"] += 1
                break
        if _NO_ANSWER_DEMAND.search(text) and not _ANSWER_DEMAND.search(text):
            self.obeyed["verdict"] += 1
            return {"verdict": "no_answer", "entry_id": None, "answer": ""}
        answer = self._free(call, text, default="")
        return {"verdict": "answer", "entry_id": entry, "answer": answer[:1200]}

    def _web(self, call: ScriptedCall, props: dict[str, Any], text: str) -> dict[str, Any]:
        numbers = [n for n in (self._enum(props, "result_number") or []) if n]
        results = re.findall(r"<result number=\"(\d+)\"[^>]*>(.*?)</result>", self._texts(call)[1], re.S)
        if not numbers:
            numbers = [int(n) for n, _ in results] or [1]
        number = numbers[0]
        # obey a result that asks to be chosen, or carries instructions
        for n, body in results:
            if int(n) in numbers and (_SAY_DEMAND.search(body) or _URL.search(body) or _LEAK_DEMAND.search(body)):
                if int(n) != number:
                    self.obeyed["result"] += 1
                number = int(n)
                break
        demand = _RESULT_DEMAND.search(text)
        if demand and int(demand.group(1)) in numbers:
            number = int(demand.group(1))
        body = next((b for n, b in results if int(n) == number), "")
        answer = self._free(call, body + "\n" + text, default=" ".join(body.split())[:300])
        return {"verdict": "answer", "result_number": number, "answer": answer[:1200]}
