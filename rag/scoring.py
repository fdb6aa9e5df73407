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
plausible questions the KB cannot answer). The default threshold is **risk-controlled** (``max_wrong``, what both policies use): the lowest
threshold whose estimated wrong-answer rate (answered but wrong, over answered) stays at or below
``max_wrong`` on a mix of ``1 - oos_share`` held-out texts (wrong when their top entry is another
one) and ``oos_share`` out-of-scope texts (always wrong when answered): texts of held-out entries
and, when the KB has escalation examples, held-out examples, weighted by how many distinct topics
the examples cover (:func:`example_topics`, :func:`near_share_for`); see
:func:`risk_controlled_threshold`. Older rules remain: the lowest threshold that escalates a target
share of the negatives (``target_tnr``) or the maximum of ``TPR + w * TNR``.
No test data is ever used.

Usage::

    index = EntryIndex.build(vectors, owners, entry_ids)     # vectors: (n, 384) unit rows
    scores = index.score(query_vectors)                       # (q, n_entries)
    report = calibrate(vectors, owners, len(entry_ids), max_wrong=0.1)   # CalibrationReport(threshold=0.71, ...)
    report.estimated_wrong_rate, report.estimated_coverage                # on the KB's own cross-fit mix
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "DEFAULT_MAX_WRONG",
    "DEFAULT_OOS_SHARE",
    "CalibrationReport",
    "EntryIndex",
    "ScoringParams",
    "calibrate",
    "calibration_scores",
    "example_topics",
    "near_share_for",
    "prefilter_band",
    "risk_controlled_threshold",
    "risk_coverage",
    "train_linear_head",
]

#: Default ceiling on the estimated wrong-answer rate (answered but wrong, over answered).
DEFAULT_MAX_WRONG = 0.10
#: The prefilter's bounds (:func:`prefilter_band`): the small encoder answers alone at this estimated
#: wrong-answer rate, and escalates alone below the score of this share of the KB's answerable texts.
DEFAULT_SURE_WRONG = 0.02
DEFAULT_MISS = 0.01
#: Share of out-of-scope queries assumed when the wrong-answer rate is estimated on the KB itself:
#: on real traffic half or more of what customers type matches no FAQ entry.
DEFAULT_OOS_SHARE = 0.5
#: Escalation examples needed before they count in the estimate at all.
MIN_ESCALATE_EXAMPLES = 10
#: The weight of the held-out entries (the proxy for out-of-scope traffic), counted in topics of
#: escalation examples: with ``n`` topics the proxy carries ``PROXY_TOPICS / (PROXY_TOPICS + n)`` of
#: the out-of-scope mass (:func:`near_share_for`).
DEFAULT_PROXY_TOPICS = 10

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
        return self._fuse(s["maxcos"], s["centroid"], s["logprob"])

    def score_candidates(self, query: np.ndarray, entries: np.ndarray, maxcos: np.ndarray) -> np.ndarray:
        """Fused scores of the ``entries`` (indices) a retriever found for one ``query`` vector, given each
        entry's best text similarity ``maxcos`` (the retriever's score): the same numbers as :meth:`score`
        for those entries, without scanning every text."""
        query = np.asarray(query, dtype=np.float32).reshape(-1)
        entries = np.asarray(entries, dtype=np.int64)
        centroid = self.centroids[entries] @ query
        if self.head_w is not None and self.head_b is not None:
            logits = (query * self.params.head_scale) @ self.head_w + self.head_b
            logits -= logits.max()
            logprob = (logits - np.log(np.exp(logits).sum()))[entries]
        else:
            logprob = np.zeros(len(entries), dtype=np.float32)
        return self._fuse(np.asarray(maxcos, dtype=np.float32), centroid, logprob.astype(np.float32))

    def _fuse(self, maxcos: np.ndarray, centroid: np.ndarray, logprob: np.ndarray) -> np.ndarray:
        head = np.maximum(logprob, self.params.logprob_floor) if self.head_w is not None else 0.0
        return (maxcos + centroid) / 2.0 + self.params.head_weight * head


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
    estimated_wrong_rate: float | None = None
    estimated_coverage: float | None = None
    max_wrong: float | None = None
    oos_share: float | None = None


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
    positives_entry: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    held_out_entry: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    escalate_held_out: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    escalate_topic: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def _topic_scale(vectors: np.ndarray, owners: np.ndarray, per_entry: int = 50) -> float:
    """The median, over entries with two texts or more, of the median cosine between two texts of one
    entry (at most ``per_entry`` texts each): how alike two wordings of one topic are in this KB."""
    typical = []
    for e in np.unique(owners):
        rows = np.flatnonzero(owners == e)[:per_entry]
        if rows.size >= 2:
            sims = vectors[rows] @ vectors[rows].T
            typical.append(float(np.median(sims[np.triu_indices(rows.size, 1)])))
    return float(np.median(typical)) if typical else 1.0


def example_topics(examples: np.ndarray, vectors: np.ndarray, owners: np.ndarray, *,
                   max_examples: int = 4000) -> np.ndarray:
    """A topic label per escalation example: the connected groups of examples at least as alike as two
    texts of one typical KB entry (:func:`_topic_scale`; single linkage, on unit vectors).

    A hundred wordings of three requests are three samples of out-of-scope traffic, not a hundred: the
    estimate counts and resamples topics (as it resamples entries, not texts). Past ``max_examples``
    the rest each count as their own topic (no quadratic matrix for huge example sets).
    """
    n = len(examples)
    labels = np.arange(n, dtype=np.int64)
    m = min(n, max_examples)
    if m < 2:
        return labels
    linked = (examples[:m] @ examples[:m].T) >= _topic_scale(vectors, np.asarray(owners))
    head = labels[:m]
    while True:  # label propagation: every example takes the smallest label among its neighbours
        spread = np.where(linked, head[None, :], m).min(axis=1)
        if np.array_equal(spread, head):
            break
        head = spread
    labels[:m] = np.unique(head, return_inverse=True)[1]
    labels[m:] = np.arange(labels[:m].max() + 1, labels[:m].max() + 1 + n - m)
    return labels


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
    escalate: np.ndarray | None = None,
) -> CalibrationScores:
    """Cross-fitted top scores of the KB's own texts (see :class:`CalibrationScores`).

    In each fold some entries are held out entirely and some texts of the remaining entries are held
    out; a held-out text of a known entry is a positive (its top score, and whether the top entry is
    its own), a text of a held-out entry a negative. ``extra_negatives`` (vectors of queries that must escalate,
    e.g. the KB's escalation examples) are scored by every fold's index; their scores come third.
    ``escalate`` (vectors of the KB's escalation examples) joins every fold's index as one more
    entry, as at run time: a held-out text whose top entry is that one escalates (score ``-inf``); a
    held-out example's score comes with its topic (:func:`example_topics`).
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
    pos_entry: list[np.ndarray] = []
    neg_scores: list[np.ndarray] = []
    neg_entry: list[np.ndarray] = []
    extra_scores: list[np.ndarray] = []
    esc_scores: list[np.ndarray] = []
    esc_topics: list[np.ndarray] = []
    n_esc = 0 if escalate is None else len(escalate)
    topics = example_topics(escalate, vectors, owners) if n_esc else np.zeros(0, dtype=np.int64)
    esc_fold = rng.permutation(n_esc) % folds if n_esc >= folds else np.full(n_esc, -1)
    for f in range(folds):
        held_entry = entry_fold[owners] == f
        held_text = (text_fold == f) & ~held_entry
        train = ~held_entry & ~held_text
        kept = np.flatnonzero(np.bincount(owners[train], minlength=n_entries) > 0)
        if kept.size < 2:
            continue
        remap = -np.ones(n_entries, dtype=np.int64)
        remap[kept] = np.arange(kept.size)
        fold_vectors, fold_owners, fold_n = vectors[train], remap[owners[train]], kept.size
        if n_esc:  # the escalation pseudo-entry, without this fold's held-out examples
            kept_esc = escalate[esc_fold != f]
            fold_vectors = np.vstack([fold_vectors, kept_esc])
            fold_owners = np.concatenate([fold_owners, np.full(len(kept_esc), fold_n, dtype=np.int64)])
            fold_n += 1
        index = EntryIndex.build(fold_vectors, fold_owners, fold_n, params)
        pos_rows = np.flatnonzero(held_text & budget & (remap[owners] >= 0))
        neg_rows = np.flatnonzero(held_entry & budget)

        def top(queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            scored = index.score(queries)
            best = scored.argmax(axis=1)
            return np.where(best == kept.size, -np.inf, scored.max(axis=1)).astype(np.float32), best

        if pos_rows.size:
            best_score, best = top(vectors[pos_rows])
            pos_scores.append(best_score)
            pos_right.append(best == remap[owners[pos_rows]])
            pos_entry.append(owners[pos_rows])
        if neg_rows.size:
            neg_scores.append(top(vectors[neg_rows])[0])
            neg_entry.append(owners[neg_rows])
        if n_esc and (esc_fold == f).any():
            esc_scores.append(top(escalate[esc_fold == f])[0])
            esc_topics.append(topics[esc_fold == f])
        if extra_negatives is not None and len(extra_negatives):
            extra_scores.append(index.score(extra_negatives).max(axis=1))
    if not neg_scores:
        raise ValueError("calibration needs at least 2 entries")
    empty = np.zeros(0, dtype=np.float32)
    cat = lambda parts, dtype: np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)  # noqa: E731
    return CalibrationScores(cat(pos_scores, np.float32), cat(pos_right, bool), np.concatenate(neg_scores),
                             cat(extra_scores, np.float32) if extra_scores else empty,
                             cat(pos_entry, np.int64), cat(neg_entry, np.int64), cat(esc_scores, np.float32),
                             cat(esc_topics, np.int64))


def _mixture_rates(pos_at: np.ndarray, pos_right: np.ndarray, neg_at: np.ndarray, esc_at: np.ndarray,
                   w_pos: np.ndarray, w_neg: np.ndarray, w_esc: np.ndarray, oos_share: float,
                   near_share: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rates for ``B`` weightings (rows of ``w_*``) at ``T`` thresholds (rows of ``*_at``: answered?)."""
    def share(weights: np.ndarray, answered: np.ndarray) -> np.ndarray:  # (B, T)
        total = weights.sum(axis=1, keepdims=True)
        return np.divide(weights @ answered.T.astype(np.float64), total, out=np.zeros((weights.shape[0],
                         answered.shape[0])), where=total > 0)

    has_neg = neg_at.shape[1] > 0
    has_esc = esc_at.shape[1] > 0
    pi = oos_share if (has_neg or has_esc) else 0.0
    near = near_share if has_esc else 1.0
    if pos_at.shape[1]:
        answered_pos, wrong_pos = share(w_pos, pos_at), share(w_pos, pos_at & ~pos_right[None, :])
    else:  # no held-out texts: assume in-scope queries are all answered, and rightly
        answered_pos = np.ones((w_neg.shape[0], neg_at.shape[0]))
        wrong_pos = np.zeros_like(answered_pos)
    oos = near * share(w_neg, neg_at) if has_neg else 0.0
    if has_esc:
        oos = oos + (1 - near) * share(w_esc, esc_at)
    coverage = (1 - pi) * answered_pos + pi * oos
    wrong = (1 - pi) * wrong_pos + pi * oos
    rate = np.divide(wrong, coverage, out=np.zeros_like(wrong), where=coverage > 0)
    count = pos_at.sum(axis=1) + neg_at.sum(axis=1) + esc_at.sum(axis=1)
    return rate, coverage, count


def _group_resamples(rng: np.random.Generator, n_boot: int, groups: np.ndarray) -> np.ndarray:
    """``(n_boot, len(groups))`` bootstrap weights that resample whole groups: each row draws as many
    groups as there are, with replacement, and every sample weighs as often as its group was drawn."""
    ids, group_of = np.unique(groups, return_inverse=True)
    drawn = np.zeros((n_boot, ids.size))
    np.add.at(drawn, (np.arange(n_boot)[:, None], rng.integers(0, ids.size, size=(n_boot, ids.size))), 1.0)
    return drawn[:, group_of]


def near_share_for(n_topics: int, proxy_topics: float = DEFAULT_PROXY_TOPICS) -> float:
    """The share of the out-of-scope mass the held-out entries carry beside escalation examples of
    ``n_topics`` topics (:func:`example_topics`): ``proxy_topics / (proxy_topics + n_topics)``.

    The held-out entries stand in for out-of-scope traffic; the escalation examples are a sample of
    it that the operator collected. The more distinct requests they cover, the more the estimate
    follows them, as a prior worth ``proxy_topics`` topics gives way to data: examples of 10 topics
    weigh as much as the proxy (0.5), of 90 topics 90% of the mass, while many wordings of a few
    requests stay a small sample. The bootstrap bound resamples the topics, so few topics also widen
    the bound.
    """
    if n_topics <= 0:
        return 1.0
    return proxy_topics / (proxy_topics + n_topics)


def _examples_weight(topics: np.ndarray, near_share: float | None, proxy_topics: float) -> tuple[int, float]:
    """``(topics, near share)`` of escalation examples with these topic labels: how many topics they
    count as, and the share of the out-of-scope mass the held-out entries keep beside them
    (``near_share``, else :func:`near_share_for`). Fewer than :data:`MIN_ESCALATE_EXAMPLES` examples
    count for nothing: ``(0, 1.0)``."""
    if topics.size < MIN_ESCALATE_EXAMPLES:
        return 0, 1.0
    n_topics = int(np.unique(topics).size)
    return n_topics, near_share if near_share is not None else near_share_for(n_topics, proxy_topics)


def risk_controlled_threshold(
    pos: np.ndarray,
    pos_right: np.ndarray,
    neg: np.ndarray,
    *,
    max_wrong: float = DEFAULT_MAX_WRONG,
    oos_share: float = DEFAULT_OOS_SHARE,
    min_answered: int = 20,
    escalate_neg: np.ndarray | None = None,
    near_share: float | None = None,
    escalate_groups: np.ndarray | None = None,
    proxy_topics: float = DEFAULT_PROXY_TOPICS,
    pos_groups: np.ndarray | None = None,
    neg_groups: np.ndarray | None = None,
    confidence: float | None = 0.9,
    n_boot: int = 200,
    max_candidates: int = 400,
    seed: int = 0,
) -> tuple[float, float, float]:
    """The lowest threshold whose estimated wrong-answer rate stays at or below ``max_wrong``.

    The estimate mixes the cross-fitted scores as traffic with ``oos_share`` out-of-scope queries:
    ``wrong(t) = (1 - s) * P(pos >= t and its top entry is wrong) + s * P(oos >= t)``, divided by
    ``coverage(t) = (1 - s) * P(pos >= t) + s * P(oos >= t)``. The out-of-scope scores are the texts
    of held-out entries (``neg``, near out-of-scope: topics next to the KB's); when the KB has at
    least :data:`MIN_ESCALATE_EXAMPLES` escalation examples (``escalate_neg``: their held-out scores,
    the operator's own examples of traffic to escalate), they make up ``1 - near_share`` of the
    out-of-scope mass (None: :func:`near_share_for` the number of their topics, ``escalate_groups``:
    each example's topic, by default its own, with ``proxy_topics``).

    With ``confidence`` the rate is its one-sided upper bound: the ``confidence`` quantile over
    ``n_boot`` bootstrap resamples of the *entries* (``pos_groups``/``neg_groups``: the entry of each
    score; texts of one entry are not independent, so a KB of 14 entries is 14 samples, not 300), and
    of the escalation examples' topics.
    Small KBs thus get a more cautious threshold than large ones. Going down from the highest score,
    the threshold stops before the first point (with at least ``min_answered`` samples answered) whose
    rate exceeds ``max_wrong``. Without positives (one text per entry) in-scope queries are assumed
    answered rightly. Returns ``(threshold, estimated wrong-answer rate, estimated coverage)`` (point
    estimates at the threshold); when no threshold qualifies it is above every score.
    """
    if not 0.0 < max_wrong < 1.0:
        raise ValueError(f"max_wrong must lie in (0, 1), not {max_wrong}")
    if not 0.0 <= oos_share < 1.0:
        raise ValueError(f"oos_share must lie in [0, 1), not {oos_share}")
    pos = np.asarray(pos, dtype=np.float64)
    neg = np.asarray(neg, dtype=np.float64)
    pos_right = np.asarray(pos_right, dtype=bool)
    esc = np.asarray(escalate_neg if escalate_neg is not None else [], dtype=np.float64)
    eg = np.asarray(escalate_groups if escalate_groups is not None else np.arange(esc.size), dtype=np.int64)
    if esc.size < MIN_ESCALATE_EXAMPLES:
        esc, eg = np.zeros(0), np.zeros(0, dtype=np.int64)
    _, near_share = _examples_weight(eg, near_share, proxy_topics)
    finite = np.concatenate([pos[np.isfinite(pos)], neg[np.isfinite(neg)], esc[np.isfinite(esc)]])
    if not finite.size:
        raise ValueError("calibration needs scores")
    candidates = np.unique(finite)[::-1]  # high to low
    if candidates.size > max_candidates:
        candidates = np.unique(np.quantile(finite, np.linspace(1, 0, max_candidates)))[::-1]
    pos_at = pos[None, :] >= candidates[:, None]
    neg_at = neg[None, :] >= candidates[:, None]
    esc_at = esc[None, :] >= candidates[:, None]
    ones = (np.ones((1, pos.size)), np.ones((1, neg.size)), np.ones((1, esc.size)))
    rate, coverage, count = _mixture_rates(pos_at, pos_right, neg_at, esc_at, *ones, oos_share, near_share)
    rate, coverage = rate[0], coverage[0]
    bound = rate
    if confidence is not None:
        rng = np.random.default_rng(seed)
        pg = np.asarray(pos_groups if pos_groups is not None else np.arange(pos.size), dtype=np.int64)
        ng = np.asarray(neg_groups if neg_groups is not None else pos.size + np.arange(neg.size), dtype=np.int64)
        weights = _group_resamples(rng, n_boot, np.concatenate([pg, ng]))
        w_pos, w_neg = weights[:, : pos.size], weights[:, pos.size:]
        w_esc = _group_resamples(rng, n_boot, eg) if esc.size else np.ones((n_boot, 0))
        boot, _, _ = _mixture_rates(pos_at, pos_right, neg_at, esc_at, w_pos, w_neg, w_esc, oos_share, near_share)
        bound = np.quantile(boot, confidence, axis=0)
    violated = np.flatnonzero((bound > max_wrong) & (count >= min_answered))
    stop = int(violated[0]) if violated.size else candidates.size
    if stop == 0:
        return float(candidates[0]) + 1e-6, 0.0, 0.0
    chosen = stop - 1  # the threshold is that score itself: the estimate holds exactly there
    return float(candidates[chosen]), float(rate[chosen]), float(coverage[chosen])


def prefilter_band(
    vectors: np.ndarray,
    owners: np.ndarray,
    n_entries: int,
    *,
    params: ScoringParams = ScoringParams(),
    folds: int = 5,
    escalate: np.ndarray | None = None,
    sure_wrong: float = DEFAULT_SURE_WRONG,
    miss: float = DEFAULT_MISS,
    oos_share: float = DEFAULT_OOS_SHARE,
) -> tuple[float, float]:
    """``(floor, sure)``: where a cheap encoder may decide alone in front of a stronger one.

    Both come from the same cross-fit as :func:`calibrate`, on the cheap encoder's vectors. ``sure``
    is its risk-controlled threshold at ``sure_wrong`` (a much stricter bound than the answer gate's)
    against each sample of out-of-scope traffic on its own, the held-out entries and (when the KB has
    :data:`MIN_ESCALATE_EXAMPLES` or more) the escalation examples, and the higher of the two: a query
    the cheap encoder answers alone must be safe whichever sample the real traffic resembles, so the
    mixture the answer gate uses (:func:`near_share_for`) does not lower it. A query scoring at least
    that is answered from its top entry. ``floor`` is the ``miss`` quantile of
    the held-out answerable texts' scores (those not closest to an escalation example): below it a
    query escalates without the stronger encoder, which then misses about ``miss`` of the answerable
    queries. A query closest to an escalation example escalates too (the operator's examples say it
    needs a person). Between the two, the stronger encoder's gate decides. A KB with one text per
    entry has no answerable texts to hold out: its floor is ``-inf`` (every undecided query goes on).
    """
    scores = calibration_scores(vectors, owners, n_entries, params=params, folds=folds, escalate=escalate)
    has_examples = scores.escalate_held_out.size >= MIN_ESCALATE_EXAMPLES
    sure = max(
        risk_controlled_threshold(
            scores.positives, scores.positives_right, scores.held_out_entries, max_wrong=sure_wrong,
            oos_share=oos_share, escalate_neg=scores.escalate_held_out, escalate_groups=scores.escalate_topic,
            near_share=near_share, pos_groups=scores.positives_entry, neg_groups=scores.held_out_entry)[0]
        for near_share in ((1.0, 0.0) if has_examples else (1.0,)))
    finite = scores.positives[np.isfinite(scores.positives)]
    floor = float(np.quantile(finite, miss, method="lower")) if finite.size else float("-inf")
    return min(floor, sure), sure


def risk_coverage(confidence: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The risk-coverage curve of answering the most confident cases first, and its area (AURC).

    ``correct[i]``: case ``i`` would be right if answered. Returns ``(coverage, risk, aurc)`` where
    ``risk[j]`` is the error rate among the ``j + 1`` most confident cases; AURC is the mean risk
    (lower is better; ties in confidence are taken together).
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    if not confidence.size:
        return np.zeros(0), np.zeros(0), float("nan")
    order = np.argsort(-confidence, kind="stable")
    errors = np.cumsum(~correct[order])
    counts = np.arange(1, confidence.size + 1)
    ordered = confidence[order]
    # ties: every case of a tied group is answered together (use the group's last index)
    last = np.r_[np.flatnonzero(ordered[1:] != ordered[:-1]), confidence.size - 1]
    group_end = last[np.searchsorted(last, np.arange(confidence.size))]
    risk = errors[group_end] / counts[group_end]
    return counts / confidence.size, risk, float(risk.mean())


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
    max_wrong: float | None = None,
    oos_share: float = DEFAULT_OOS_SHARE,
    escalate: np.ndarray | None = None,
    seed: int = 0,
    confidence: float | None = 0.9,
    near_share: float | None = None,
    proxy_topics: float = DEFAULT_PROXY_TOPICS,
) -> CalibrationReport:
    """Calibrate the answer threshold on the KB itself (cross-fitted).

    With ``max_wrong`` (the default policies set it) the threshold is risk-controlled
    (:func:`risk_controlled_threshold` with ``oos_share``); ``escalate``: the KB's escalation
    examples, an extra entry of every fold's index as at run time; ``confidence``, ``near_share`` and
    ``proxy_topics`` go to :func:`risk_controlled_threshold` (the defaults are what ships; ``benchmarks/gate_variants.py``
    measures others). Otherwise ``target_tnr`` or the class-balanced objective below decides.

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
                                max_texts=max_texts, seed=seed, escalate=escalate)
    pos, neg = scores.positives, scores.held_out_entries
    if max_wrong is not None:
        # The documented estimate: the KB's escalation examples carry part of the out-of-scope mass,
        # and the bound resamples entries (texts of one entry are not independent).
        threshold, rate, coverage = risk_controlled_threshold(
            pos, scores.positives_right, neg, max_wrong=float(max_wrong), oos_share=float(oos_share),
            escalate_neg=scores.escalate_held_out, escalate_groups=scores.escalate_topic,
            proxy_topics=proxy_topics, pos_groups=scores.positives_entry, neg_groups=scores.held_out_entry,
            confidence=confidence, near_share=near_share)
        tpr = float((pos >= threshold).mean()) if pos.size else float("nan")
        tnr = float((neg < threshold).mean())
        method = f"cross-fit risk control: estimated wrong-answer rate <= {max_wrong:g} at {oos_share:g} out of scope"
        topics, share = _examples_weight(scores.escalate_topic, near_share, proxy_topics)
        if topics:
            method += (f"; {scores.escalate_held_out.size} escalation examples in {topics} topics, held-out"
                       f" entries {share:.2f} of the out-of-scope mass")
        report = CalibrationReport(
            threshold, (tpr + tnr) / 2.0 if pos.size else float("nan"), tpr, tnr, int(pos.size), int(neg.size),
            method, rate, coverage, float(max_wrong), float(oos_share))
        logger.info("calibrated answer threshold %.4f (estimated wrong-answer rate %.3f, coverage %.3f; "
                    "%d pos / %d neg)", threshold, rate, coverage, pos.size, neg.size)
        return report
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
