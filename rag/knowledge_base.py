"""The FAQ knowledge base: entries from config/faq.yaml or a KB.jsonl file, and their cached embeddings.

::

    from supportdesk.rag.knowledge_base import KnowledgeBase

    kb = KnowledgeBase.from_config()                 # packaged config/faq.yaml (or an override dir)
    kb = KnowledgeBase.from_jsonl("clinc150_kb.jsonl")  # {"id", "question", "paraphrases"?, "answer"} a line
    kb.get("reset-password").answer
    vectors, owners = kb.embeddings(cache_dir=settings.home / "cache")   # (n_texts, 384), entry index per row

Embeddings are computed in batches and cached on disk, keyed by a hash of the model id and every text,
written to a temporary file and moved into place with ``os.replace`` (safe with concurrent writers).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from supportdesk._config import load_jsonl, load_yaml
from supportdesk.errors import ConfigError
from supportdesk.models.faq import FAQEntry

__all__ = ["KnowledgeBase", "atomic_save_npy", "atomic_write_text", "cached_embeddings"]

logger = logging.getLogger(__name__)


def _entry(raw: Any, where: str) -> FAQEntry:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping with id, question, answer")
    name = raw.get("id", "?")
    try:
        return FAQEntry.model_validate(dict(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "entry"
        raise ConfigError(f"{where}: FAQ entry {name!r}: {field}: {first['msg']}") from exc


def _text_key(text: str) -> str:
    return " ".join(text.casefold().split())


def _deduplicated(entries: list[FAQEntry], source: str) -> list[FAQEntry]:
    """``entries`` without repeats, with one warning saying what was dropped.

    An entry listed twice (same id, same content) is kept once; a paraphrase that repeats its own
    question, an earlier paraphrase or another entry's text (ignoring case and spacing) is dropped.
    Two different entries under one id stay a :class:`ConfigError`: which answer is meant is unknown.
    """
    kept: list[FAQEntry] = []
    by_id: dict[str, FAQEntry] = {}  # as given (before its paraphrases were deduplicated)
    owner: dict[str, str] = {}  # text key -> the entry that has it
    dropped: list[str] = []
    for entry in entries:
        if entry.id in by_id:
            if by_id[entry.id] != entry:
                raise ConfigError(f"{source}: duplicate FAQ entry id {entry.id!r} with different content")
            dropped.append(f"entry {entry.id!r} listed again")
            continue
        own = _text_key(entry.question)
        if owner.get(own, entry.id) != entry.id:
            logger.warning("%s: FAQ entry %r has the same question as entry %r", source, entry.id, owner[own])
        owner.setdefault(own, entry.id)
        paraphrases = []
        for text in entry.paraphrases:
            key = _text_key(text)
            if key in owner:
                dropped.append(f"{entry.id!r}: {text[:60]!r}")
                continue
            owner[key] = entry.id
            paraphrases.append(text)
        by_id[entry.id] = entry
        if len(paraphrases) != len(entry.paraphrases):
            entry = entry.model_copy(update={"paraphrases": paraphrases})
        kept.append(entry)
    if dropped:
        logger.warning("%s: dropped %d repeated FAQ text(s): %s", source, len(dropped), "; ".join(dropped[:5])
                       + (" ..." if len(dropped) > 5 else ""))
    return kept


class KnowledgeBase:
    """An ordered, id-unique collection of :class:`FAQEntry`, plus optional escalation examples.

    :param entries: the FAQ entries.
    :param escalate_examples: queries that must never be answered from the FAQ (they need a person).
    :param source: where the entries came from, for messages.
    :param company: the company the FAQ belongs to (prompts name it).
    """

    def __init__(
        self,
        entries: Iterable[FAQEntry],
        *,
        escalate_examples: Sequence[str] = (),
        source: str = "<memory>",
        company: str = "Nimbus Notes",
    ) -> None:
        self.entries: list[FAQEntry] = _deduplicated(list(entries), source)
        self.source = source
        self.company = company
        self.escalate_examples = [e.strip() for e in escalate_examples if e and e.strip()]
        if not self.entries:
            raise ConfigError(f"{source}: the knowledge base has no entries")
        self._by_id: dict[str, FAQEntry] = {entry.id: entry for entry in self.entries}

    # -- loading -------------------------------------------------------------------------------
    @classmethod
    def from_records(
        cls,
        records: Iterable[Any],
        *,
        source: str = "<memory>",
        escalate_examples: Sequence[str] = (),
        company: str = "Nimbus Notes",
    ) -> KnowledgeBase:
        """Build from dicts (as in faq.yaml); errors name the entry."""
        entries = [_entry(raw, f"{source} entry {i + 1}") for i, raw in enumerate(records)]
        return cls(entries, escalate_examples=escalate_examples, source=source, company=company)

    @classmethod
    def from_config(cls, override_dir: Path | None = None, name: str = "faq.yaml") -> KnowledgeBase:
        """Load config/faq.yaml (``override_dir/faq.yaml`` wins when it exists)."""
        data = load_yaml(name, override_dir)
        if isinstance(data, list):
            return cls.from_records(data, source=name)
        if not isinstance(data, Mapping) or not isinstance(data.get("entries"), list):
            raise ConfigError(f"{name}: expected a list of entries or a mapping with an 'entries' list")
        examples = data.get("escalate_examples") or []
        if not isinstance(examples, list) or not all(isinstance(e, str) for e in examples):
            raise ConfigError(f"{name}: escalate_examples must be a list of strings")
        company = data.get("company") or "Nimbus Notes"
        if not isinstance(company, str):
            raise ConfigError(f"{name}: company must be a string")
        return cls.from_records(data["entries"], source=name, escalate_examples=examples, company=company)

    @classmethod
    def from_jsonl(cls, path: Path | str, *, escalate_examples: Sequence[str] = ()) -> KnowledgeBase:
        """Load a KB.jsonl file: one JSON object a line with id, question, optional paraphrases, answer."""
        path = Path(path)
        return cls.from_records(load_jsonl(path), source=str(path), escalate_examples=escalate_examples)

    def to_jsonl(self, path: Path | str) -> None:
        """Write the entries as a KB.jsonl file (the format :meth:`from_jsonl` reads), atomically."""
        lines = [json.dumps(entry.model_dump(), ensure_ascii=False) for entry in self.entries]
        atomic_write_text(Path(path), "\n".join(lines) + "\n")

    # -- access --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.entries)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._by_id

    def get(self, entry_id: str) -> FAQEntry:
        """The entry with ``entry_id``; :class:`KeyError` if absent."""
        return self._by_id[entry_id]

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.entries]

    def texts(self) -> tuple[list[str], np.ndarray]:
        """Every question and paraphrase, and the index of its entry (same order)."""
        texts: list[str] = []
        owners: list[int] = []
        for i, entry in enumerate(self.entries):
            for text in entry.texts:
                texts.append(text)
                owners.append(i)
        return texts, np.asarray(owners, dtype=np.int64)

    def embeddings(self, cache_dir: Path | None = None, encoder: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings of :meth:`texts` (unit rows) and the owner index of each row; cached when ``cache_dir``."""
        texts, owners = self.texts()
        return cached_embeddings(texts, cache_dir=cache_dir, encoder=encoder), owners

    def fingerprint(self) -> str:
        """A short hash of every entry's texts and ids (changes when the KB changes)."""
        digest = hashlib.sha256()
        for entry in self.entries:
            digest.update(entry.id.encode())
            for text in entry.texts:
                digest.update(b"\x1f" + text.encode())
            digest.update(b"\x1e")
        for text in self.escalate_examples:
            digest.update(b"\x1d" + text.encode())
        return digest.hexdigest()[:20]


def _texts_key(texts: Sequence[str], model_id: str) -> str:
    digest = hashlib.sha256(model_id.encode())
    for text in texts:
        digest.update(b"\x1f" + text.encode("utf-8"))
    return digest.hexdigest()[:32]


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, array)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a unique temporary file in the same folder and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


#: KB embeddings already computed in this process, newest last (several pipelines over one KB, e.g. a
#: service's tenants or an evaluation, embed it once): at most this many arrays, read-only.
_MEMO_SIZE = 8
_memo: OrderedDict[str, np.ndarray] = OrderedDict()
_memo_lock = threading.Lock()


def cached_embeddings(texts: Sequence[str], *, cache_dir: Path | None = None, encoder: Any = None) -> np.ndarray:
    """Embed ``texts`` with ``encoder`` (default: the configured one, :func:`~supportdesk.rag._minilm.get_encoder`),
    reading/writing ``cache_dir/emb-<hash>.npy`` when given. Lists of two texts or more are also kept
    in memory for the process (the last :data:`_MEMO_SIZE`), so their array is read-only."""
    if encoder is None:
        from supportdesk.rag._minilm import get_encoder

        encoder = get_encoder()
    key = _texts_key(texts, encoder.model_id)
    memo = len(texts) > 1
    if memo and key in _memo:
        with _memo_lock:
            _memo.move_to_end(key)
            vectors = _memo[key]
        if cache_dir is not None and not (Path(cache_dir) / f"emb-{key}.npy").exists():
            _save(Path(cache_dir) / f"emb-{key}.npy", vectors)
        return vectors
    vectors = _read_or_encode(texts, encoder, Path(cache_dir) / f"emb-{key}.npy" if cache_dir is not None else None)
    if memo:
        vectors.setflags(write=False)
        with _memo_lock:
            _memo[key] = vectors
            while len(_memo) > _MEMO_SIZE:
                _memo.popitem(last=False)
    return vectors


def _read_or_encode(texts: Sequence[str], encoder: Any, path: Path | None) -> np.ndarray:
    if path is not None and path.exists():
        try:
            cached = np.load(path)
            if cached.shape == (len(texts), encoder.dimension):
                logger.debug("embedding cache hit %s", path)
                return cached
        except (OSError, ValueError) as exc:
            logger.warning("ignoring unreadable embedding cache %s: %s", path, exc)
    vectors = encoder.encode(list(texts))
    if path is not None:
        _save(path, vectors)
    return vectors


def _save(path: Path, vectors: np.ndarray) -> None:
    try:
        atomic_save_npy(path, vectors)
    except OSError as exc:
        logger.warning("could not write embedding cache %s: %s", path, exc)
