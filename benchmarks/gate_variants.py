"""Variants of the FAQ answer gate, and the best any single threshold could do, on the public sets.

    python benchmarks/gate_variants.py DATA [--split validation|test] [--limit 400] [--seed 7]

``DATA`` holds the files of ``supportdesk eval-data`` for that split (clinc150, stackfaq, bitext and
banking77; the FAQ-mode cases for the last two). For each set it scores the same stratified sample
as ``supportdesk eval --stage rag --limit 400 --seed 7`` in NumPy (a full scan of the index: the
shipped rule reproduces that command's full accuracy, wrong-answer rate and coverage), calibrates
each variant with the same cross-fit on the KB (``rag.scoring.calibrate``), and prints full accuracy / wrong-answer rate / coverage:

* the shipped rule;
* the margin to the second-best entry added to the confidence (weights 0.25, 0.5, 1.0);
* per-entry thresholds: the score minus the entry's typical leave-one-out similarity of its own
  texts (relative to the median entry; weights 0.5, 1.0);
* query novelty: the score minus a weight times the query's Mahalanobis distance to the nearest
  entry's mean (one within-entry covariance shared by all entries, shrunk towards its mean variance;
  shrinkage 0.1 and 0.5, weights 0.02 and 0.05 per dimension);
* the bootstrap bound at 80 %, 95 % and 99 % instead of 90 %;
* the escalation examples carrying a fixed half (the sixth pass's rule), 3/4 or all of the
  out-of-scope mass, instead of the share their number of topics earns (sets that have them;
  ``benchmarks/escalation_evidence.py`` gives the other sets examples);
* the ceiling: the best single threshold chosen on the cases themselves, at wrong-answer <= 0.05 and
  <= 0.10 (no calibration can beat it with this score), and with the novelty penalty at <= 0.05.

A variant changes how an index scores for the duration of its row only. Figures:
``supportdesk/eval/README.md``. Prints figures; asserts nothing; offline.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import numpy as np

from supportdesk.eval.formats import load_cases
from supportdesk.eval.sampling import stratified_sample
from supportdesk.eval.stages import _load_kb, escalate_examples
from supportdesk.rag.knowledge_base import cached_embeddings
from supportdesk.rag.scoring import EntryIndex, calibrate

# set: (KB file, cases file pattern, examples file whose "unknown" rows are escalation examples)
SETS = {
    "clinc150": ("clinc150.kb.jsonl", "clinc150.{split}.cases.jsonl", "clinc150.train.examples.jsonl"),
    "stackfaq": ("stackfaq.kb.jsonl", "stackfaq.{split}.cases.jsonl", None),
    "bitext": ("bitext.kb.jsonl", "bitext.{split}.faq.cases.jsonl", None),
    "banking77": ("banking77.kb.jsonl", "banking77.{split}.faq.cases.jsonl", None),
}


class Data:
    """One set's KB vectors, escalation examples and sampled cases (embedded once, cached on disk)."""

    def __init__(self, folder: Path, name: str, split: str, limit: int, seed: int, cache: Path,
                 encoder: Any = None) -> None:
        kb_file, cases_file, examples = SETS[name]
        kb = _load_kb(folder / kb_file, escalate_examples(folder / examples) if examples else [])
        texts, owners = kb.texts()
        embed = partial(cached_embeddings, cache_dir=cache, encoder=encoder)  # None: the configured encoder
        self.vectors = embed(texts)
        self.owners = np.asarray(owners, dtype=np.int64)
        self.n = len(kb.ids)
        self.escalate = embed(list(kb.escalate_examples)) if kb.escalate_examples else None
        cases = stratified_sample(load_cases(folder / cases_file.format(split=split)), limit, seed=seed)
        self.queries = embed([c.query for c in cases])
        self.expected = np.array([kb.ids.index(c.expected_faq_id) if c.expected_faq_id else -1 for c in cases])

    @cached_property
    def index(self) -> EntryIndex:
        """The whole KB's index, with the escalation pseudo-entry as at run time (built once: the
        variants change how it scores, not what it holds)."""
        vectors, owners, n = self.vectors, self.owners, self.n
        if self.escalate is not None:
            vectors = np.vstack([vectors, self.escalate])
            owners = np.concatenate([owners, np.full(len(self.escalate), n, dtype=np.int64)])
            n += 1
        return EntryIndex.build(vectors, owners, n)

    def case_scores(self) -> tuple[np.ndarray, np.ndarray]:
        """(confidence, top entry) of every case against the whole KB, as the gate sees them."""
        scores = self.index.score(self.queries)
        best = scores.argmax(axis=1)
        return np.where(best == self.n, -np.inf, scores.max(axis=1)), best

    def calibrated(self, **options: float) -> float:
        """The shipped calibration (``rag.scoring.calibrate``) with ``options`` changed (``max_wrong`` too)."""
        options = {"max_wrong": 0.1, **options}
        return calibrate(self.vectors, self.owners, self.n, oos_share=0.5, escalate=self.escalate,
                         **options).threshold

    def outcome(self, threshold: float, scored: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[float, float, float]:
        """(full accuracy, wrong-answer rate, coverage) of answering at ``threshold``."""
        conf, best = scored if scored is not None else self.case_scores()
        answered = conf >= threshold
        right = np.where(answered, best == self.expected, self.expected < 0)
        wrong = answered & (best != self.expected)
        return float(right.mean()), float(wrong.sum() / max(int(answered.sum()), 1)), float(answered.mean())


#: How a variant rescores: (index, query vectors, fused scores) -> scores, same shape.
Adjust = Callable[[EntryIndex, np.ndarray, np.ndarray], np.ndarray]


@contextmanager
def scoring(adjust: Adjust | None) -> Iterator[None]:
    """Every index scores with ``adjust(index, queries, fused scores)`` inside the block (None: unchanged)."""
    if adjust is None:
        yield
        return
    original = EntryIndex.score
    EntryIndex.score = lambda self, queries: adjust(self, queries, original(self, queries))  # type: ignore[method-assign]
    try:
        yield
    finally:
        EntryIndex.score = original  # type: ignore[method-assign]


def margin(weight: float) -> Adjust:
    """Each entry's score plus ``weight`` times its lead over the best other entry (argmax unchanged)."""
    def adjust(_: EntryIndex, __: np.ndarray, s: np.ndarray) -> np.ndarray:
        if s.shape[1] < 2:
            return s
        part = np.partition(s, -2, axis=1)
        top, second = part[:, -1:], part[:, -2:-1]
        return s + weight * (s - np.where(s == top, second, top))
    return adjust


def per_entry(weight: float) -> Adjust:
    """The score minus ``weight`` times the entry's typical own-text similarity above the median entry's."""
    def offsets(index: EntryIndex) -> np.ndarray:
        sims = index.vectors @ index.vectors.T
        np.fill_diagonal(sims, -np.inf)
        typical = np.full(index.n_entries, np.nan)
        for e in range(index.n_entries):
            rows = np.flatnonzero(index.owners == e)
            if len(rows) >= 2:
                typical[e] = np.median(sims[np.ix_(rows, rows)].max(axis=1))
        if np.isnan(typical).all():
            return np.zeros(index.n_entries, dtype=np.float32)
        return np.nan_to_num(typical - np.nanmedian(typical)).astype(np.float32)

    def adjust(index: EntryIndex, _: np.ndarray, s: np.ndarray) -> np.ndarray:
        if not hasattr(index, "_typical_offset"):
            index._typical_offset = offsets(index)  # type: ignore[attr-defined]
        return s - weight * index._typical_offset[None, :]  # type: ignore[attr-defined]
    return adjust


def novelty(shrinkage: float, weight: float) -> Adjust:
    """Every entry's score minus ``weight`` times the query's Mahalanobis distance (per dimension) to
    the nearest entry mean: one confidence penalty for queries far from everything the KB holds
    (argmax unchanged). A KB with under 10 degrees of freedom (one text per entry) uses the identity."""
    def whitening(index: EntryIndex) -> tuple[np.ndarray, np.ndarray]:
        x, owners, n = index.vectors.astype(np.float64), index.owners, index.n_entries
        counts = np.bincount(owners, minlength=n).clip(1, None)
        means = np.zeros((n, x.shape[1]))
        np.add.at(means, owners, x)
        means /= counts[:, None]
        dof = len(x) - n
        resid = x - means[owners]
        cov = resid.T @ resid / dof if dof >= 10 else np.eye(x.shape[1])
        cov = (1 - shrinkage) * cov + shrinkage * np.trace(cov) / x.shape[1] * np.eye(x.shape[1])
        values, vectors = np.linalg.eigh(cov)
        white = vectors / np.sqrt(values)[None, :]
        return white, means @ white

    def adjust(index: EntryIndex, queries: np.ndarray, s: np.ndarray) -> np.ndarray:
        cached = index.__dict__.setdefault("_whitening", {})
        if shrinkage not in cached:
            cached[shrinkage] = whitening(index)
        white, means = cached[shrinkage]
        z = np.atleast_2d(queries).astype(np.float64) @ white
        dist = ((z ** 2).sum(1)[:, None] + (means ** 2).sum(1)[None, :] - 2 * z @ means.T) / white.shape[0]
        return (s - weight * dist.min(axis=1, keepdims=True)).astype(np.float32)
    return adjust


def ceiling(data: Data, max_wrong: float) -> tuple[float, float, float, float]:
    """The best full accuracy of any single threshold whose wrong-answer rate stays <= ``max_wrong``."""
    scored = data.case_scores()
    best = (0.0, 0.0, 0.0, float("nan"))
    for threshold in np.linspace(0.3, 1.0, 281):
        acc, wrong, cov = data.outcome(threshold, scored)
        if wrong <= max_wrong and acc > best[0]:
            best = (acc, wrong, cov, float(threshold))
    return best


def arguments(doc: str) -> argparse.ArgumentParser:
    """The options every gate benchmark takes: DATA, --split, --limit, --seed, --cache."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("data", type=Path, help="folder of supportdesk eval-data files for --split")
    parser.add_argument("--split", default="validation", choices=["validation", "test"])
    parser.add_argument("--limit", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache", type=Path, help="embedding cache (default: a temporary folder)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = arguments(__doc__).parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gate-variants-") as tmp:
        cache = args.cache or Path(tmp)
        sets = {name: Data(args.data, name, args.split, args.limit, args.seed, cache) for name in SETS
                if (args.data / SETS[name][0]).exists()}
        rows: list[tuple[str, Adjust | None, dict]] = [
            ("shipped rule", None, {}),
            *[(f"margin, weight {w}", margin(w), {}) for w in (0.25, 0.5, 1.0)],
            *[(f"per-entry thresholds, weight {w}", per_entry(w), {}) for w in (0.5, 1.0)],
            *[(f"novelty, shrinkage {a}, weight {w}", novelty(a, w), {}) for a in (0.1, 0.5) for w in (0.02, 0.05)],
            *[(f"bootstrap bound at {c:.0%}", None, {"confidence": c}) for c in (0.8, 0.95, 0.99)],
            *[(f"escalation examples carry {1 - n:.0%} of out of scope", None, {"near_share": n})
              for n in (0.5, 0.25, 0.0)],
        ]
        print(f"{args.split}, stratified {args.limit}, seed {args.seed}: full accuracy / wrong-answer / coverage")
        print(f"  {'variant':<48}" + "".join(f"{name:>32}" for name in sets))
        for label, adjust, options in rows:
            cells = []
            with scoring(adjust):
                for name, data in sets.items():
                    if "near_share" in options and data.escalate is None:
                        cells.append("-")
                        continue
                    acc, wrong, cov = data.outcome(data.calibrated(**options))
                    cells.append(f"{acc:.3f} / {wrong:.3f} / {cov:.3f}")
            print(f"  {label:<48}" + "".join(f"{c:>32}" for c in cells), flush=True)
        ceilings = [("", None, (0.05, 0.10)), (", novelty 0.1 / 0.02", novelty(0.1, 0.02), (0.05,))]
        for suffix, adjust, bounds in ceilings:
            with scoring(adjust):
                for max_wrong in bounds:
                    cells = [f"{a:.3f} / {w:.3f} / {c:.3f} at {t:.3f}"
                             for a, w, c, t in (ceiling(d, max_wrong) for d in sets.values())]
                    print(f"  {f'ceiling{suffix}: best threshold, wrong <= {max_wrong:.2f}':<48}"
                          + "".join(f"{c:>32}" for c in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
