"""Converters from the public support datasets to supportdesk's evaluation files.

Every converter reads one dataset folder (layout as in ``../shared/datasets``) and writes, into
an output folder, some of::

    <name>.kb.jsonl                 FAQ entries (KBEntry), when the dataset has answers
    <name>.<split>.cases.jsonl      evaluation cases (Case) of the split asked for
    <name>.train.examples.jsonl     labelled training queries (LabeledExample), for kNN triage

Splits are never mixed: KB entries and examples come from training data only, and datasets without
an official split are split per label with a fixed seed (``random.Random(f"{seed}:{label}")``, so
the split of one label does not depend on the others). Tune on ``validation``; report on ``test``.
"""

from __future__ import annotations

import csv
import json
import logging
import random
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from supportdesk.eval.formats import Case, EvalDataError, KBEntry, LabeledExample, write_jsonl
from supportdesk.eval.mapping import CategoryMapping, load_mapping

__all__ = [
    "DATASETS",
    "DEFAULT_SEED",
    "ConversionResult",
    "EvalSplit",
    "convert_banking77",
    "convert_bitext",
    "convert_clinc150",
    "convert_dataset",
    "convert_stackfaq",
    "convert_tickets",
    "find_mapping",
    "split_by_label",
]

logger = logging.getLogger(__name__)

EvalSplit = Literal["test", "validation"]
DEFAULT_SEED = 13
MAPPING_FILE = "category_mapping.json"
T = TypeVar("T")


@dataclass
class ConversionResult:
    """What a converter wrote: file kind ('kb', 'cases', 'examples') -> path, and line counts."""

    dataset: str
    split: str
    files: dict[str, Path] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """Plain-text lines for a terminal: one per file written, then the notes."""
        lines = [f"{self.dataset} ({self.split}):"]
        for kind, path in self.files.items():
            lines.append(f"  {kind:<9} {self.counts.get(kind, 0):>7,} lines  {path}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)

    def _write(self, kind: str, path: Path, items: Sequence[KBEntry | Case | LabeledExample]) -> None:
        self.counts[kind] = write_jsonl(path, items)
        self.files[kind] = path
        logger.info("%s: wrote %d %s lines to %s", self.dataset, self.counts[kind], kind, path)


# ---------------------------------------------------------------------------------------------- helpers


def _check_split(split: str) -> EvalSplit:
    if split not in ("test", "validation"):
        raise EvalDataError(f"split must be 'test' or 'validation', not {split!r}")
    return split  # type: ignore[return-value]


def _dataset_dir(source: Path, folder: str) -> Path:
    """``source`` may be the datasets root (holding ``folder``) or the dataset folder itself."""
    source = Path(source)
    if (source / folder).is_dir():
        return source / folder
    if source.is_dir():
        return source
    raise EvalDataError(f"{source}: no such folder")


def find_mapping(source: Path) -> Path:
    """``category_mapping.json`` in ``source`` or its parent folder."""
    source = Path(source)
    for candidate in (source / MAPPING_FILE, source.parent / MAPPING_FILE):
        if candidate.is_file():
            return candidate
    raise EvalDataError(f"no {MAPPING_FILE} in {source} or its parent; pass the mapping explicitly")


def _mapping(source: Path, mapping: CategoryMapping | Path | str | None) -> CategoryMapping:
    if isinstance(mapping, CategoryMapping):
        return mapping
    return load_mapping(Path(mapping) if mapping is not None else find_mapping(source))


def _clean(text: str) -> str:
    """Collapse whitespace runs into one space."""
    return " ".join(text.split())


def split_by_label(
    items: Sequence[T], label: Callable[[T], str], fractions: dict[str, float], seed: int
) -> dict[str, list[T]]:
    """Split ``items`` into named parts with about ``fractions`` of each label's items, deterministically.

    Each label's items are shuffled with ``random.Random(f"{seed}:{label}")``; the parts take
    ``round(n * fraction)`` of them in the order given, the last part takes the rest. Items keep
    their input order inside each part.
    """
    if not fractions or abs(sum(fractions.values()) - 1.0) > 1e-9:
        raise ValueError("fractions must sum to 1")
    groups: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        groups[label(item)].append(index)
    names = list(fractions)
    assigned: dict[str, list[int]] = {name: [] for name in names}
    for key in sorted(groups):
        indices = groups[key][:]
        random.Random(f"{seed}:{key}").shuffle(indices)
        start = 0
        for name in names[:-1]:
            take = round(len(indices) * fractions[name])
            assigned[name].extend(indices[start : start + take])
            start += take
        assigned[names[-1]].extend(indices[start:])
    return {name: [items[i] for i in sorted(assigned[name])] for name in names}


def _read_csv(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    if not path.is_file():
        raise EvalDataError(f"{path}: no such file")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [name for name in required if name not in (reader.fieldnames or [])]
        if missing:
            raise EvalDataError(f"{path}: missing columns {missing}")
        rows = [row for row in reader if all((row.get(name) or "").strip() for name in required)]
    return rows


def _readable(intent: str) -> str:
    """``bill_due`` -> ``Bill due``."""
    words = intent.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


#: Share of a labelled dataset's intents that become FAQ entries in its FAQ-mode files; the other
#: intents' queries are out of scope (expected to escalate), as on real traffic where half or more of
#: what customers type matches no entry.
FAQ_INTENT_FRACTION = 0.5
#: Training utterances per FAQ entry in FAQ mode (question + paraphrases), like a hand-written FAQ.
FAQ_TEXTS_PER_ENTRY = 20


def _faq_mode(
    result: ConversionResult, name: str, split: str, train: Sequence[tuple[str, str]],
    split_rows: Sequence[tuple[str, str]], out: Path, seed: int,
) -> None:
    """FAQ-mode files of an intent-labelled dataset: ``<name>.kb.jsonl`` and
    ``<name>.<split>.faq.cases.jsonl``.

    A seeded :data:`FAQ_INTENT_FRACTION` of the intents (``random.Random(f"{seed}:faq-intents")``)
    become entries built from their training utterances only (at most :data:`FAQ_TEXTS_PER_ENTRY`);
    cases of those intents expect ``answer`` from their entry, cases of the other intents ``escalate``
    (near out-of-scope: same domain, no entry). ``train``/``split_rows``: (text, intent) pairs.
    """
    by_intent: dict[str, list[str]] = defaultdict(list)
    for text, intent in train:
        if text.strip():
            by_intent[intent].append(_clean(text))
    intents = sorted(by_intent)
    random.Random(f"{seed}:faq-intents").shuffle(intents)
    kept = set(intents[: max(1, round(len(intents) * FAQ_INTENT_FRACTION))])
    def slug(intent: str) -> str:  # entry ids are slugs (BANKING77 has 'reverted_card_payment?')
        return re.sub(r"[^A-Za-z0-9_.:-]+", "_", intent).strip("_") or "intent"

    kb = []
    for intent in sorted(kept):
        texts = list(dict.fromkeys(by_intent[intent]))[:FAQ_TEXTS_PER_ENTRY]
        readable = _readable(intent)
        kb.append(KBEntry(id=slug(intent), question=texts[0], paraphrases=texts[1:],
                          answer=f"{readable}: this is the help-desk answer for '{readable.lower()}' ({name} intent {intent})."))
    cases = [
        Case(id=f"{name}-{split}-faq-{i:05d}", query=text.strip(),
             expected_route="answer" if intent in kept else "escalate",
             expected_faq_id=slug(intent) if intent in kept else None, split=split, meta={"intent": intent})
        for i, (text, intent) in enumerate(split_rows) if text.strip()
    ]
    result._write("kb", out / f"{name}.kb.jsonl", kb)
    result._write("faq cases", out / f"{name}.{split}.faq.cases.jsonl", cases)
    result.notes.append(f"FAQ mode: {len(kept)} of {len(intents)} intents are entries, the rest out of scope")


# --------------------------------------------------------------------------------------------- clinc150


def convert_clinc150(
    source: Path,
    out: Path,
    *,
    split: EvalSplit = "test",
    mapping: CategoryMapping | Path | str | None = None,
    max_paraphrases: int | None = None,
) -> ConversionResult:
    """CLINC150 (``data_full.json``): answer-or-escalate over 150 intents.

    KB: one entry per intent from the train split (id = intent, question = its first train
    utterance, paraphrases = the other train utterances, at most ``max_paraphrases``, answer = a
    templated text naming the intent). Cases: ``test`` + ``oos_test`` (or ``val`` + ``oos_val``);
    in-scope ones expect route ``answer`` and their intent's entry, ``oos`` ones expect ``escalate``.
    Every case and example also carries the mapped category (``oos`` -> unknown).
    """
    split = _check_split(split)
    folder = _dataset_dir(source, "clinc150")
    labels = _mapping(folder, mapping).for_dataset("clinc150")
    path = folder / "data_full.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise EvalDataError(f"{path}: no such file") from exc
    parts = ("test", "oos_test") if split == "test" else ("val", "oos_val")
    for key in ("train", "oos_train", *parts):
        if key not in data:
            raise EvalDataError(f"{path}: no {key!r} list")

    by_intent: dict[str, list[str]] = defaultdict(list)
    for text, intent in data["train"]:
        by_intent[intent].append(text.strip())
    kb = []
    for intent in sorted(by_intent):
        utterances = by_intent[intent]
        rest = utterances[1:] if max_paraphrases is None else utterances[1 : 1 + max_paraphrases]
        name = _readable(intent)
        kb.append(KBEntry(
            id=intent,
            question=utterances[0],
            paraphrases=rest,
            answer=f"{name}: this is the help-desk answer for requests about '{name.lower()}' "
                   f"(CLINC150 intent {intent}).",
        ))
    examples = [
        LabeledExample(query=text.strip(), category=labels.category(intent), label=intent, id=f"clinc150-train-{i:05d}")
        for i, (text, intent) in enumerate([*data["train"], *data["oos_train"]])
    ]
    cases = []
    rows = [row for key in parts for row in data[key]]
    for i, (text, intent) in enumerate(rows):
        in_scope = intent != "oos"
        cases.append(Case(
            id=f"clinc150-{split}-{i:05d}",
            query=text.strip(),
            expected_route="answer" if in_scope else "escalate",
            expected_faq_id=intent if in_scope else None,
            expected_category=labels.category(intent),
            split=split,
            meta={"intent": intent},
        ))
    unknown = {intent for _, intent in rows if intent != "oos" and intent not in by_intent}
    if unknown:
        raise EvalDataError(f"{path}: {split} intents missing from train: {sorted(unknown)[:5]}")

    result = ConversionResult("clinc150", split)
    out = Path(out)
    result._write("kb", out / "clinc150.kb.jsonl", kb)
    result._write("cases", out / f"clinc150.{split}.cases.jsonl", cases)
    result._write("examples", out / "clinc150.train.examples.jsonl", examples)
    return result


# -------------------------------------------------------------------------------------------- banking77


def convert_banking77(
    source: Path,
    out: Path,
    *,
    split: EvalSplit = "test",
    mapping: CategoryMapping | Path | str | None = None,
    seed: int = DEFAULT_SEED,
    validation_fraction: float = 0.1,
) -> ConversionResult:
    """BANKING77 (``train.csv``, ``test.csv``: ``text,category``): category triage, no routes.

    ``validation_fraction`` of each intent's train rows (fixed seed) is held out as the validation
    split; the remaining train rows are the examples file, whichever split is asked for, so tuning
    and reporting use the same examples. Test cases come from ``test.csv``. Cases carry only
    ``expected_category`` (an intent says nothing about whether the FAQ could answer it).
    """
    split = _check_split(split)
    folder = _dataset_dir(source, "banking77")
    labels = _mapping(folder, mapping).for_dataset("banking77")
    train = _read_csv(folder / "train.csv", ("text", "category"))
    parts = split_by_label(
        train, lambda row: row["category"], {"validation": validation_fraction, "train": 1 - validation_fraction}, seed
    )
    examples = [
        LabeledExample(query=row["text"].strip(), category=labels.category(row["category"]), label=row["category"],
                       id=f"banking77-train-{i:05d}")
        for i, row in enumerate(parts["train"])
    ]
    rows = parts["validation"] if split == "validation" else _read_csv(folder / "test.csv", ("text", "category"))
    cases = [
        Case(id=f"banking77-{split}-{i:05d}", query=row["text"].strip(), expected_category=labels.category(row["category"]),
             split=split, meta={"intent": row["category"]})
        for i, row in enumerate(rows)
    ]
    result = ConversionResult("banking77", split)
    result._write("cases", Path(out) / f"banking77.{split}.cases.jsonl", cases)
    result._write("examples", Path(out) / "banking77.train.examples.jsonl", examples)
    _faq_mode(result, "banking77", split, [(r["text"], r["category"]) for r in parts["train"]],
              [(r["text"], r["category"]) for r in rows], Path(out), seed)
    return result


# ----------------------------------------------------------------------------------------------- bitext


def convert_bitext(
    source: Path,
    out: Path,
    *,
    split: EvalSplit = "test",
    mapping: CategoryMapping | Path | str | None = None,
    seed: int = DEFAULT_SEED,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
) -> ConversionResult:
    """Bitext customer support (one CSV, no official split): category triage.

    Rows whose instruction repeats an earlier one (case-insensitively) are dropped, then each intent's
    rows are split train/validation/test by ``fractions`` with a fixed seed. Category: intent-level
    keys of the mapping first (``technical_intents``), then the category-level keys, else general.
    """
    split = _check_split(split)
    folder = _dataset_dir(source, "bitext")
    labels = _mapping(folder, mapping).for_dataset("bitext")
    files = sorted(folder.glob("*.csv"))
    if len(files) != 1:
        raise EvalDataError(f"{folder}: expected exactly one CSV file, found {len(files)}")
    rows = _read_csv(files[0], ("instruction", "intent", "category"))
    seen: set[str] = set()
    unique = []
    for row in rows:
        key = _clean(row["instruction"]).lower()
        if key not in seen:
            seen.add(key)
            unique.append(row)
    parts = split_by_label(
        unique, lambda row: row["intent"], dict(zip(("train", "validation", "test"), fractions, strict=True)), seed
    )

    def category(row: dict[str, str]) -> str:
        return labels.category(row["category"], row["intent"])

    examples = [
        LabeledExample(query=row["instruction"].strip(), category=category(row), label=row["intent"],
                       id=f"bitext-train-{i:05d}")
        for i, row in enumerate(parts["train"])
    ]
    cases = [
        Case(id=f"bitext-{split}-{i:05d}", query=row["instruction"].strip(), expected_category=category(row),
             split=split, meta={"intent": row["intent"], "category": row["category"]})
        for i, row in enumerate(parts[split])
    ]
    result = ConversionResult("bitext", split)
    if len(unique) < len(rows):
        result.notes.append(f"dropped {len(rows) - len(unique)} duplicate instructions before splitting")
    result._write("cases", Path(out) / f"bitext.{split}.cases.jsonl", cases)
    result._write("examples", Path(out) / "bitext.train.examples.jsonl", examples)
    _faq_mode(result, "bitext", split, [(r["instruction"], r["intent"]) for r in parts["train"]],
              [(r["instruction"], r["intent"]) for r in parts[split]], Path(out), seed)
    return result


# ---------------------------------------------------------------------------------------------- tickets


def _ticket_query(row: dict[str, str]) -> str:
    """Subject and body, with the literal ``\\n`` sequences of the CSV turned into newlines."""
    parts = [(row.get("subject") or "").strip(), (row.get("body") or "").strip()]
    return "\n\n".join(part.replace("\\n", "\n").strip() for part in parts if part)


def _ticket_file(folder: Path, version: str) -> Path:
    matches = sorted(folder.glob(f"tickets_{version}*.csv"))
    if not matches:
        raise EvalDataError(f"{folder}: no tickets_{version}*.csv")
    return matches[0]


def convert_tickets(
    source: Path,
    out: Path,
    *,
    split: EvalSplit = "test",
    mapping: CategoryMapping | Path | str | None = None,
    seed: int = DEFAULT_SEED,
    validation_fraction: float = 0.2,
    language: str = "en",
) -> ConversionResult:
    """Synthetic tickets (``tickets_v4*.csv`` for tuning, ``tickets_v5*.csv`` for reporting): category
    and priority triage of English rows.

    Query = subject + blank line + body. ``expected_category`` via the ``tickets_queue`` mapping,
    ``expected_priority`` via ``tickets_priority`` (or the label itself when it is low/medium/high).
    v4 is split per queue into train (the examples file) and validation; v5 is the test split.
    Rows lacking a body, queue or priority (the files are truncated copies) are skipped.
    """
    split = _check_split(split)
    folder = _dataset_dir(source, "tickets")
    full = _mapping(folder, mapping)
    queues = full.for_dataset("tickets_queue")
    required = ("body", "queue", "priority", "language")
    result = ConversionResult("tickets", split)

    def english(path: Path) -> list[dict[str, str]]:
        rows = _read_csv(path, required)
        kept = [row for row in rows if row["language"].strip().lower() == language]
        logger.info("%s: %d rows, %d in language %r", path.name, len(rows), len(kept), language)
        return kept

    def priority(row: dict[str, str]) -> str | None:
        mapped = full.priority(row["priority"])
        if mapped is None:
            logger.warning("tickets: unknown priority %r left unlabelled", row["priority"])
        return mapped

    v4 = english(_ticket_file(folder, "v4"))
    parts = split_by_label(
        v4, lambda row: row["queue"], {"validation": validation_fraction, "train": 1 - validation_fraction}, seed
    )
    examples = [
        LabeledExample(query=_ticket_query(row), category=queues.category(row["queue"]), priority=priority(row),
                       label=row["queue"], id=f"tickets-train-{i:05d}")
        for i, row in enumerate(parts["train"])
    ]
    rows = parts["validation"] if split == "validation" else english(_ticket_file(folder, "v5"))
    cases = [
        Case(id=f"tickets-{split}-{i:05d}", query=_ticket_query(row), expected_category=queues.category(row["queue"]),
             expected_priority=priority(row), split=split,  # type: ignore[arg-type]
             meta={"queue": row["queue"], "priority": row["priority"], "type": row.get("type") or ""})
        for i, row in enumerate(rows)
    ]
    result._write("cases", Path(out) / f"tickets.{split}.cases.jsonl", cases)
    result._write("examples", Path(out) / "tickets.train.examples.jsonl", examples)
    return result


# --------------------------------------------------------------------------------------------- stackfaq


@dataclass(frozen=True)
class _Thread:
    index: int
    question: str
    answer: str
    rephrasings: tuple[str, ...]

    @property
    def faq_id(self) -> str:
        return f"stackfaq-{self.index:03d}"


def _read_stackfaq(path: Path) -> list[_Thread]:
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError as exc:
        raise EvalDataError(f"{path}: no such file") from exc
    except ET.ParseError as exc:
        raise EvalDataError(f"{path}: not XML: {exc}") from exc
    threads = []
    for index, pair in enumerate(root.iter("qapair")):
        question = _clean(pair.findtext("question") or "")
        answers = [_clean(node.text or "") for node in pair.findall("answer")]
        answers = [answer for answer in answers if answer]
        rephrasings = tuple(
            text for text in (_clean(node.text or "") for node in pair.findall("rephr")) if text and text != "*"
        )
        if not question or not answers:
            logger.warning("%s: thread %d has no question or no answer; skipped", path.name, index)
            continue
        threads.append(_Thread(index, question, answers[0], rephrasings))
    if not threads:
        raise EvalDataError(f"{path}: no <qapair> threads")
    return threads


def _hold_out(thread: _Thread, fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(test, validation) rephrasings of one thread: a seeded shuffle, the first ``fraction`` is test."""
    order = list(thread.rephrasings)
    random.Random(f"{seed}:{thread.index}").shuffle(order)
    take = round(len(order) * fraction)
    if len(order) >= 2:
        take = min(max(take, 1), len(order) - 1)
    return order[:take], order[take:]


def convert_stackfaq(
    source: Path,
    out: Path,
    *,
    split: EvalSplit = "test",
    seed: int = DEFAULT_SEED,
    test_fraction: float = 0.5,
    kb_paraphrases: bool = False,
) -> ConversionResult:
    """StackFAQ (``stackExchange-FAQ.xml``): FAQ retrieval, every case expects route ``answer``.

    KB: one entry per thread (id ``stackfaq-NNN`` from the thread index, question, answer = the first
    answer). The rephrasings (``*`` and empty ones dropped) are divided per thread with a fixed seed:
    ``test_fraction`` are the test cases, the rest the validation cases. By default the KB holds no
    rephrasings. ``kb_paraphrases=True`` (only with ``split='test'``) puts the validation rephrasings
    into the KB as paraphrases: never the test ones.
    """
    split = _check_split(split)
    if kb_paraphrases and split == "validation":
        raise EvalDataError("stackfaq: kb_paraphrases uses the validation rephrasings; evaluate it on split=test")
    folder = _dataset_dir(source, "stackfaq")
    files = sorted(folder.glob("*.xml"))
    if len(files) != 1:
        raise EvalDataError(f"{folder}: expected exactly one XML file, found {len(files)}")
    threads = _read_stackfaq(files[0])
    kb: list[KBEntry] = []
    cases: list[Case] = []
    for thread in threads:
        test, validation = _hold_out(thread, test_fraction, seed)
        kb.append(KBEntry(id=thread.faq_id, question=thread.question,
                          paraphrases=validation if kb_paraphrases else [], answer=thread.answer))
        chosen = test if split == "test" else validation
        cases.extend(
            Case(id=f"stackfaq-{split}-{thread.index:03d}-{j:02d}", query=text, expected_route="answer",
                 expected_faq_id=thread.faq_id, split=split)
            for j, text in enumerate(chosen)
        )
    result = ConversionResult("stackfaq", split)
    if kb_paraphrases:
        result.notes.append("KB paraphrases are the validation rephrasings (disjoint from the test cases)")
    result._write("kb", Path(out) / "stackfaq.kb.jsonl", kb)
    result._write("cases", Path(out) / f"stackfaq.{split}.cases.jsonl", cases)
    return result


# ------------------------------------------------------------------------------------------------ entry


DATASETS: tuple[str, ...] = ("clinc150", "banking77", "bitext", "tickets", "stackfaq")


def convert_dataset(
    name: str,
    source: Path | str,
    out: Path | str,
    *,
    split: EvalSplit = "test",
    mapping: Path | str | None = None,
    seed: int = DEFAULT_SEED,
    max_paraphrases: int | None = None,
    kb_paraphrases: bool = False,
) -> ConversionResult:
    """Convert dataset ``name`` (one of :data:`DATASETS`) found in ``source`` (the datasets root or the
    dataset's own folder) into ``out``. ``mapping`` defaults to ``category_mapping.json`` next to it."""
    source, out = Path(source), Path(out)
    if name == "clinc150":
        return convert_clinc150(source, out, split=split, mapping=mapping, max_paraphrases=max_paraphrases)
    if name == "banking77":
        return convert_banking77(source, out, split=split, mapping=mapping, seed=seed)
    if name == "bitext":
        return convert_bitext(source, out, split=split, mapping=mapping, seed=seed)
    if name == "tickets":
        return convert_tickets(source, out, split=split, mapping=mapping, seed=seed)
    if name == "stackfaq":
        return convert_stackfaq(source, out, split=split, seed=seed, kb_paraphrases=kb_paraphrases)
    raise EvalDataError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
