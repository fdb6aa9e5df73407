"""Each encoder's answer gate alone, and the shipped cascade of the two, on the public sets (issue 8).

    python benchmarks/encoder_cascade.py DATA [--split validation|test] [--limit 400] [--seed 7]
                                         [--sure 0.02] [--miss 0.01]

``DATA`` is as for ``benchmarks/gate_variants.py`` (the files of ``supportdesk eval-data``). For each
set it prints full accuracy / wrong-answer rate / coverage of:

* all-MiniLM-L6-v2 alone with the shipped calibration (``max_wrong`` 0.10);
* all-mpnet-base-v2 alone with the same rule;
* the cascade the embedded policy ships (``prefilter_encoder``, ``rag.scoring.prefilter_band``):
  MiniLM answers alone when its score clears its own threshold calibrated at ``--sure``, escalates
  alone below the ``--miss`` quantile of the KB's held-out answerable texts or when an escalation
  example ranks first, and every other query goes to mpnet's gate. The share MiniLM decides alone (answered, escalated) is what mpnet's cost
  is saved on.

Scores are those of the shipped ``EntryIndex`` (as ``gate_variants.py``), thresholds those of
``rag.scoring.calibrate`` on the KB. Prints figures; asserts nothing; offline.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from gate_variants import SETS, Data, arguments  # noqa: E402

from supportdesk.rag._minilm import MPNET_NAME, NAME, get_encoder  # noqa: E402
from supportdesk.rag.scoring import DEFAULT_MISS, DEFAULT_SURE_WRONG, prefilter_band  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--sure", type=float, default=DEFAULT_SURE_WRONG, help="MiniLM's bound where it answers alone")
    parser.add_argument("--miss", type=float, default=DEFAULT_MISS, help="share of answerable texts below MiniLM's floor")
    args = parser.parse_args(argv)
    small, large = get_encoder(NAME), get_encoder(MPNET_NAME)
    print(f"{args.split}, stratified {args.limit}, seed {args.seed}: full accuracy / wrong-answer / coverage")
    with tempfile.TemporaryDirectory(prefix="encoder-cascade-") as tmp:
        cache = args.cache or Path(tmp)
        for name in SETS:
            if not (args.data / SETS[name][0]).exists():
                continue
            a, b = (Data(args.data, name, args.split, args.limit, args.seed, cache, encoder=e) for e in (small, large))
            (conf_a, best_a), (conf_b, best_b) = a.case_scores(), b.case_scores()
            floor, sure = prefilter_band(a.vectors, a.owners, a.n, escalate=a.escalate, sure_wrong=args.sure,
                                         miss=args.miss)
            # conf_a is -inf where an escalation example ranks first: MiniLM escalates those alone too
            answers, escalates = conf_a >= sure, ~np.isfinite(conf_a) | (conf_a < floor)
            # MiniLM's sure answers always clear mpnet's threshold, its sure escalations never do;
            # the rest face mpnet's threshold with mpnet's score.
            cascade = (np.where(answers, np.inf, np.where(escalates, -np.inf, conf_b)),
                       np.where(answers, best_a, best_b))
            cells = {
                NAME: "{:.3f} / {:.3f} / {:.3f}".format(*a.outcome(a.calibrated())),
                MPNET_NAME: "{:.3f} / {:.3f} / {:.3f}".format(*b.outcome(b.calibrated())),
                "cascade": "{:.3f} / {:.3f} / {:.3f}".format(*b.outcome(b.calibrated(), cascade))
                           + f", MiniLM alone: {answers.mean():.0%} answered, {escalates.mean():.0%} escalated",
            }
            print(f"  {name:<10}" + "".join(f"  {k}: {v:<24}" for k, v in cells.items()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
