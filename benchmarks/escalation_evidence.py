"""How much the FAQ gate's calibration should trust the operator's escalation examples, on every set.

    python benchmarks/escalation_evidence.py DATA [--split validation|test] [--limit 400] [--seed 7]
        [--examples 100] [--cache DIR]

The risk-controlled threshold estimates out-of-scope traffic from two samples: texts of held-out
entries (a proxy: topics next to the KB's) and the KB's escalation examples (what the operator
collected). The shipped rule, :func:`supportdesk.rag.scoring.near_share_for`, gives the proxy the
weight of ``calibration_proxy_topics`` (10) topics of examples (:func:`~supportdesk.rag.scoring.example_topics`);
earlier passes split the mass half and half whatever the examples held; "examples alone" gives the
proxy nothing. Only CLINC150 comes with escalation examples (its ``oos`` training queries), so
this script also gives Bitext and BANKING77 (FAQ mode) escalation examples the way an operator would
collect them, from their training split (never the cases' split):

* ``none``: no examples (what those sets ship with);
* ``spread``: ``--examples`` training queries drawn at random from every intent that is not an FAQ
  entry (a representative sample of the traffic to escalate);
* ``narrow``: as many from three such intents only (an unrepresentative sample: the operator wrote
  down one kind of request; the rest of the out-of-scope traffic looks like nothing they gave).

For each set and sample it prints full accuracy / wrong-answer rate / coverage under the
half-and-half split, the shipped rule and the examples alone (the proxy at 0), scored as
``benchmarks/gate_variants.py`` scores (the gate's encoder, a full scan). Prints figures; asserts
nothing; offline.
"""

from __future__ import annotations

import json
import tempfile
from functools import partial
from pathlib import Path

import numpy as np

from gate_variants import SETS, Data, arguments
from supportdesk.rag.knowledge_base import cached_embeddings
from supportdesk.rag.scoring import example_topics, near_share_for

RULES = {"half and half": 0.5, "shipped (by topics)": None, "examples alone": 0.0}


def training_examples(folder: Path, name: str, kb_ids: set[str], count: int, intents: int | None,
                      seed: int) -> list[str]:
    """``count`` training queries of intents that are not FAQ entries (from ``intents`` of them when given)."""
    rows = [json.loads(line) for line in (folder / f"{name}.train.examples.jsonl").read_text().splitlines() if line]
    rows = [r for r in rows if r["label"] not in kb_ids]
    rng = np.random.default_rng(seed)
    if intents is not None:
        labels = sorted({r["label"] for r in rows})
        keep = set(rng.choice(labels, size=min(intents, len(labels)), replace=False))
        rows = [r for r in rows if r["label"] in keep]
    picks = rng.choice(len(rows), size=min(count, len(rows)), replace=False)
    return [rows[i]["query"] for i in sorted(picks)]


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--examples", type=int, default=100, help="escalation examples an operator collected")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="escalation-evidence-") as tmp:
        cache = args.cache or Path(tmp)
        embed = partial(cached_embeddings, cache_dir=cache)
        print(f"{args.split}, stratified {args.limit}, seed {args.seed}: full accuracy / wrong-answer / coverage")
        print(f"  {'set, escalation examples':<44}" + "".join(f"{rule:>26}" for rule in RULES))
        for name, (kb_file, _, examples_file) in SETS.items():
            if name == "stackfaq" or not (args.data / kb_file).exists():
                continue  # StackFAQ's cases are all answerable: no out-of-scope traffic to sample
            data = Data(args.data, name, args.split, args.limit, args.seed, cache)
            if examples_file:
                samples = {f"its own ({0 if data.escalate is None else len(data.escalate)})": data.escalate}
            else:
                kb_ids = {json.loads(line)["id"] for line in (args.data / kb_file).read_text().splitlines() if line}
                samples = {"none": None}
                for label, intents in (("spread", None), ("narrow, 3 intents", 3)):
                    texts = training_examples(args.data, name, kb_ids, args.examples, intents, args.seed)
                    samples[f"{label} ({len(texts)})"] = embed(texts)
            for label, escalate in samples.items():
                data.escalate = escalate
                data.__dict__.pop("index", None)  # rebuilt with this sample as the escalation pseudo-entry
                cells = []
                for near in RULES.values():
                    if escalate is None and near is not None:
                        cells.append("-")
                        continue
                    acc, wrong, cov = data.outcome(data.calibrated(near_share=near))
                    cells.append(f"{acc:.3f} / {wrong:.3f} / {cov:.3f}")
                topics = 0 if escalate is None else int(example_topics(escalate, data.vectors, data.owners).max()) + 1
                print(f"  {f'{name}, {label}':<44}" + "".join(f"{c:>26}" for c in cells)
                      + (f"   {topics} topics, proxy share {near_share_for(topics):.2f}" if topics else ""),
                      flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
