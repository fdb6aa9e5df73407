"""Deterministic stratified sampling of cases (``--limit N --seed S``)."""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Callable, Sequence

from supportdesk.eval.formats import Case

__all__ = ["stratified_sample", "stratum"]

logger = logging.getLogger(__name__)


def stratum(case: Case) -> str:
    """A case's stratum: its first label of expected_faq_id, expected_route, expected_category,
    expected_priority (``""`` if it has none)."""
    for name in ("expected_faq_id", "expected_route", "expected_category", "expected_priority"):
        value = getattr(case, name)
        if value is not None:
            return f"{name}={value}"
    return ""


def stratified_sample(
    cases: Sequence[Case], limit: int | None, *, seed: int = 0, key: Callable[[Case], str] = stratum
) -> list[Case]:
    """``limit`` cases whose strata keep their shares of ``cases``; the same inputs give the same sample.

    Each stratum gets ``floor(limit * share)`` cases, and the remaining slots go to the strata with
    the largest remainders (ties in a seeded random order), so a stratum smaller than one slot can
    still be drawn. Inside a stratum the cases are a seeded random choice. The sample keeps the
    input order. With no limit, or a limit of at least ``len(cases)``, every case is returned.
    """
    if limit is None or limit >= len(cases):
        return list(cases)
    if limit < 0:
        raise ValueError("limit must be >= 0")
    groups: dict[str, list[int]] = defaultdict(list)
    for index, case in enumerate(cases):
        groups[key(case)].append(index)
    names = sorted(groups)
    rng = random.Random(seed)
    tiebreak = {name: rng.random() for name in names}
    quotas = {name: limit * len(groups[name]) / len(cases) for name in names}
    taken = {name: int(quotas[name]) for name in names}
    left = limit - sum(taken.values())
    by_remainder = sorted(names, key=lambda name: (-(quotas[name] - taken[name]), tiebreak[name]))
    for name in by_remainder[:left]:
        taken[name] += 1
    chosen: list[int] = []
    for name in names:
        chosen.extend(random.Random(f"{seed}:{name}").sample(groups[name], taken[name]))
    logger.info("sampled %d of %d cases from %d strata (seed %d)", len(chosen), len(cases), len(names), seed)
    return [cases[i] for i in sorted(chosen)]
