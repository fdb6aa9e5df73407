"""Entry scoring and answer-threshold calibration, in NumPy: the part of the RAG stage that decides.

An FAQ entry is represented by the embeddings of its question and paraphrases. A query is scored
against every entry with three signals, fused into one number per entry:

* ``maxcos``: the highest cosine similarity between the query and any text of the entry;
* ``centroid``: the cosine similarity with the entry's mean embedding (robust to one odd paraphrase);
* ``logprob``: the log-probability of a softmax linear head trained on the KB's own texts (a
  per-KB classifier; it sharpens the ranking between neighbouring entries).

``score = (maxcos + centroid) / 2 + head_weight * max(logprob, floor)``. The top entry's score is
compared with a threshold calibrated on the KB itself by cross-fitting (:func:`calibrate`): in each
fold some entries are held out entirely and some texts of the remaining entries are held out; held-out
texts of known entries are positives, texts of held-out entries are negatives (they look like
plausible questions the KB cannot answer). The threshold either is the lowest that escalates a target
share of those negatives (``target_tnr``, what the embedded policy uses: it needs no paraphrases) or
maximises ``TPR + w * TNR`` (class-balanced rates; ``w`` down-weights these deliberately hard
negatives), see :func:`calibrate`.
No test data is ever used.

Usage::

    index = EntryIndex.build(vectors, owners, entry_ids)     # vectors: (n, 384) unit rows
    scores = index.score(query_vectors)                       # (q, n_entries)
    report = calibrate(vectors, owners, len(entry_ids))      # CalibrationReport(threshold=0.58, ...)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "CalibrationReport",
    "EntryIndex",
    "ScoringParams",
    "calibrate",
    "calibration_scores",
    "train_linear_head",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoringParams:
    """How the signals are fused. The defaults were chosen on CLINC150 train/validation only."""

    head_weight: float = 0.1
    logprob_floor: float = -6.0
    head_scale: float = 20.0
    head_epochs: int = 150
    head_l2: float = 1e-4
    use_head: bool = True


def train_linear_head(
    vectors: np.ndarray, owners: np.ndarray, n_entries: int, params: ScoringParams = ScoringParams()
) -> tuple[np.ndarray, np.ndarray]:
    """Fit a softmax classifier text -> entry on unit vectors (full-batch gradient descent, momentum).

    Deterministic (zero initialisation). Returns ``(weights (d, n_entries), bias (n_entries,))``.
    """
    x = (vectors * params.head_scale).astype(np.float32)
    n, dim = x.shape
    weights = np.zeros((dim, n_entries), dtype=np.float32)
    bias = np.zeros(n_entries, dtype=np.float32)
    vel_w = np.zeros_like(weights)
    vel_b = np.zeros_like(bias)
    onehot_rows = np.arange(n)
    lr, momentum = 0.5, 0.9
    for _ in range(params.head_epochs):
        logits = x @ weights + bias
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        probs[onehot_rows, owners] -= 1.0
        probs /= n
        grad_w = x.T @ probs + params.head_l2 * weights
        grad_b = probs.sum(axis=0)
        vel_w = momentum * vel_w - lr * grad_w
        vel_b = momentum * vel_b - lr * grad_b
        weights += vel_w
        bias += vel_b
    return weights, bias


@dataclass
class EntryIndex:
    """Everything needed to score queries against a KB's entries: built once, scored many times."""

    vectors: np.ndarray  # (n_texts, d) unit rows
    owners: np.ndarray  # (n_texts,) entry index of each text
    n_entries: int
    centroids: np.ndarray  # (n_entries, d) unit rows
    head_w: np.ndarray | None = None
    head_b: np.ndarray | None = None
    params: ScoringParams = field(default_factory=ScoringParams)

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        owners: np.ndarray,
        n_entries: int,
        params: ScoringParams = ScoringParams(),
        head: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> EntryIndex:
        """Index ``vectors`` whose row ``i`` belongs to entry ``owners[i]``; trains the head unless given."""
        owners = np.asarray(owners, dtype=np.int64)
        dim = vectors.shape[1]
        sums = np.zeros((n_entries, dim), dtype=np.float64)
        np.add.at(sums, owners, vectors)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        centroids = (sums / np.clip(norms, 1e-12, None)).astype(np.float32)
        if params.use_head and head is None and n_entries > 1:
            head = train_linear_head(vectors, owners, n_entries, params)
        head_w, head_b = head if (params.use_head and head is not None) else (None, None)
        return cls(vectors.astype(np.float32), owners, n_entries, centroids, head_w, head_b, params)

    def _max_per_entry(self, sims: np.ndarray) -> np.ndarray:
        order = np.argsort(self.owners, kind="stable")
        sorted_owners = self.owners[order]
        starts = np.flatnonzero(np.r_[True, sorted_owners[1:] != sorted_owners[:-1]])
        present = sorted_owners[starts]
        out = np.full((sims.shape[0], self.n_entries), -1.0, dtype=np.float32)
        out[:, present] = np.maximum.reduceat(sims[:, order], starts, axis=1)
        return out

    def signals(self, queries: np.ndarray) -> dict[str, np.ndarray]:
        """The per-entry signals for each query row: ``maxcos``, ``centroid``, ``logprob``: (q, n_entries)."""
        queries = np.atleast_2d(queries).astype(np.float32)
        maxcos = self._max_per_entry(queries @ self.vectors.T)
        centroid = queries @ self.centroids.T
        if self.head_w is not None and self.head_b is not None:
            logits = (queries * self.params.head_scale) @ self.head_w + self.head_b
            logits -= logits.max(axis=1, keepdims=True)
            logprob = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        else:
            logprob = np.zeros_like(maxcos)
        return {"maxcos": maxcos, "centroid": centroid, "logprob": logprob.astype(np.float32)}

    def score(self, queries: np.ndarray) -> np.ndarray:
        """Fused score per (query, entry): higher is better; comparable with the calibrated threshold."""
        s = self.signals(queries)
        head = np.maximum(s["logprob"], self.params.logprob_floor) if self.head_w is not None else 0.0
        return (s["maxcos"] + s["centroid"]) / 2.0 + self.params.head_weight * head


@dataclass(frozen=True)
class CalibrationReport:
    """Result of :func:`calibrate`: the threshold and how well it separated the held-out data."""

    threshold: float
    balanced_accuracy: float
    true_positive_rate: float
    true_negative_rate: float
    positives: int
    negatives: int
    method: str = "cross-fit: held-out texts vs held-out entries, class-balanced rates"


def _best_threshold(pos: np.ndarray, neg: np.ndarray, negative_weight: float) -> tuple[float, float, float, float]:
    candidates = np.unique(np.concatenate([pos, neg]))
    if candidates.size > 2000:
        candidates = np.quantile(candidates, np.linspace(0, 1, 2001))
    best = (-1.0, 0.0, 0.0, 0.0, 0.0)
    for thr in candidates:
        tpr = float((pos >= thr).mean())
        tnr = float((neg < thr).mean())
        objective = tpr + negative_weight * tnr
        if objective > best[0] + 1e-12:
            best = (objective, float(thr), tpr, tnr, (tpr + tnr) / 2.0)
    _, thr, tpr, tnr, bal = best
    # Put the threshold halfway between the chosen score and the next lower candidate: less brittle.
    lower = candidates[candidates < thr]
    if lower.size:
        thr = float((thr + lower.max()) / 2.0)
    return thr, bal, tpr, tnr


@dataclass(frozen=True)
class CalibrationScores:
    """Cross-fitted top scores: held-out texts of known entries (and whether their top entry was
    their own), texts of held-out entries, and the extra negatives (escalation examples)."""

    positives: np.ndarray
    positives_right: np.ndarray
    held_out_entries: np.ndarray
    extra_negatives: np.ndarray


def _threshold_at_tnr(pos: np.ndarray, neg: np.ndarray, target_tnr: float) -> tuple[float, float, float, float]:
    """The lowest threshold with ``mean(neg < threshold) >= target_tnr``, halfway to the next score."""
    if not 0.0 <= target_tnr <= 1.0:
        raise ValueError(f"target TNR must lie in [0, 1], not {target_tnr}")
    ordered = np.sort(neg)
    k = int(np.ceil(target_tnr * ordered.size))  # negatives that must fall below the threshold
    if k <= 0:
        thr = float(ordered[0])
    elif k >= ordered.size:
        thr = float(ordered[-1]) + 1e-6
    else:
        thr = float((ordered[k - 1] + ordered[k]) / 2.0)
    tnr = float((neg < thr).mean())
    tpr = float((pos >= thr).mean()) if pos.size else float("nan")
    bal = (tpr + tnr) / 2.0 if pos.size else float("nan")
    return thr, bal, tpr, tnr


def calibration_scores(
    vectors: np.ndarray,
    owners: np.ndarray,
    n_entries: int,
    *,
    params: ScoringParams = ScoringParams(),
    folds: int = 5,
    max_texts: int = 6000,
    seed: int = 0,
    extra_negatives: np.ndarray | None = None,
) -> CalibrationScores:
    """Cross-fitted top scores of the KB's own texts (see :class:`CalibrationScores`).

    In each fold some entries are held out entirely and some texts of the remaining entries are held
    out; a held-out text of a known entry is a positive (its top score, and whether the top entry is
    its own), a text of a held-out entry a negative. ``extra_negatives`` (vectors of queries that must escalate,
    e.g. the KB's escalation examples) are scored by every fold's index; their scores come third.
    """
    owners = np.asarray(owners, dtype=np.int64)
    rng = np.random.default_rng(seed)
    n = len(owners)
    entry_fold = rng.permutation(n_entries) % folds
    text_fold = np.empty(n, dtype=np.int64)
    for e in range(n_entries):
        rows = np.flatnonzero(owners == e)
        text_fold[rows] = rng.permutation(len(rows)) % folds
        if len(rows) < 2:  # an entry's only text is never held out (the entry would vanish)
            text_fold[rows] = -1
    budget = np.ones(n, dtype=bool)
    if n > max_texts:
        budget[:] = False
        budget[rng.choice(n, size=max_texts, replace=False)] = True
    pos_scores: list[np.ndarray] = []
    pos_right: list[np.ndarray] = []
    neg_scores: list[np.ndarray] = []
    extra_scores: list[np.ndarray] = []
    for f in range(folds):
        held_entry = entry_fold[owners] == f
        held_text = (text_fold == f) & ~held_entry
        train = ~held_entry & ~held_text
        kept = np.flatnonzero(np.bincount(owners[train], minlength=n_entries) > 0)
        if kept.size < 2:
            continue
        remap = -np.ones(n_entries, dtype=np.int64)
        remap[kept] = np.arange(kept.size)
        index = EntryIndex.build(vectors[train], remap[owners[train]], kept.size, params)
        pos_rows = np.flatnonzero(held_text & budget & (remap[owners] >= 0))
        neg_rows = np.flatnonzero(held_entry & budget)
        if pos_rows.size:
            scored = index.score(vectors[pos_rows])
            pos_scores.append(scored.max(axis=1))
            pos_right.append(scored.argmax(axis=1) == remap[owners[pos_rows]])
        if neg_rows.size:
            neg_scores.append(index.score(vectors[neg_rows]).max(axis=1))
        if extra_negatives is not None and len(extra_negatives):
            extra_scores.append(index.score(extra_negatives).max(axis=1))
    if not neg_scores:
        raise ValueError("calibration needs at least 2 entries")
    extra = np.concatenate(extra_scores) if extra_scores else np.zeros(0, dtype=np.float32)
    empty = np.zeros(0, dtype=np.float32)
    return CalibrationScores(np.concatenate(pos_scores) if pos_scores else empty,
                             np.concatenate(pos_right) if pos_right else np.zeros(0, dtype=bool),
                             np.concatenate(neg_scores), extra)


def calibrate(
    vectors: np.ndarray,
    owners: np.ndarray,
    n_entries: int,
    *,
    params: ScoringParams = ScoringParams(),
    folds: int = 5,
    max_texts: int = 6000,
    negative_weight: float = 0.3,
    target_tnr: float | None = None,
    seed: int = 0,
) -> CalibrationReport:
    """Calibrate the answer threshold on the KB itself (class-balanced, cross-fitted).

    :param vectors: the KB's text embeddings; ``owners[i]`` is the entry of row ``i``.
    :param max_texts: subsample of texts used (for large KBs); the selection is seeded.
    :param negative_weight: the threshold maximises ``TPR + negative_weight * TNR``. Texts of held-out
        entries are much harder negatives than typical unanswerable queries (they are close paraphrases
        of a neighbouring topic), so they weigh less than positives. On CLINC150 train -> validation,
        0.1 gives 0.90 out-of-scope escalated / 0.94 answered correctly, 0.3 gives 0.98 / 0.88; 0.3 is
        the default because 0.1 is far too permissive on a small FAQ (policies.yaml can change it).
    :param target_tnr: when given, the threshold is instead the lowest one that escalates at least this
        fraction of the held-out-entry negatives (maximum recall at a fixed false-answer rate on them,
        Neyman-Pearson). The rate is relative to the KB's own neighbourhood, so one value suits small
        and large KBs alike, and it needs no paraphrases: a KB with one question per entry calibrates
        on its held-out entries alone.
    """
    scores = calibration_scores(vectors, owners, n_entries, params=params, folds=folds,
                                max_texts=max_texts, seed=seed)
    pos, neg = scores.positives, scores.held_out_entries
    if target_tnr is not None:
        threshold, bal, tpr, tnr = _threshold_at_tnr(pos, neg, float(target_tnr))
        method = f"cross-fit: escalate >= {target_tnr:g} of held-out-entry texts, answer the rest"
    else:
        if not pos.size:
            raise ValueError("weighted calibration needs at least 2 entries with 2 or more texts each "
                             "(or set a target TNR)")
        threshold, bal, tpr, tnr = _best_threshold(pos, neg, negative_weight)
        method = CalibrationReport.method
    report = CalibrationReport(threshold, bal, tpr, tnr, int(pos.size), int(neg.size), method)
    logger.info(
        "calibrated answer threshold %.4f (balanced accuracy %.3f, TPR %.3f, TNR %.3f, %d pos / %d neg)",
        threshold, bal, tpr, tnr, pos.size, neg.size,
    )
    return report
