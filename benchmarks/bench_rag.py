"""Latency and memory of the FAQ stage on the shipped FAQ (embedded policy, no LLM, no web search).

Run: ``python benchmarks/bench_rag.py [--queries N] [--cache DIR]``. Prints figures; asserts nothing.
Build time is measured cold (empty cache: embeddings, head and calibration computed) and warm
(the same cache read back). Queries: FAQ paraphrases plus out-of-scope questions, each run once
after one warm-up query.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

OUT_OF_SCOPE = [
    "what's the weather in Paris", "Who won the football world cup in 1998?", "recommend a good pizza place",
    "how tall is the Eiffel tower", "translate good morning into Japanese", "what is the capital of Australia",
    "can you write me a poem about cats", "how do I bake sourdough bread", "what time is it in Tokyo",
    "best laptop for gaming 2024", "how many calories in a banana", "tell me a joke",
    "how do I change a flat tyre", "what's the exchange rate of euro to dollar", "who is the president of France",
    "book me a flight to Rome", "how to learn to play guitar", "is it going to rain tomorrow",
    "what's the score of the game tonight", "explain quantum entanglement simply",
]


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=100, help="number of timed queries (about)")
    parser.add_argument("--cache", type=Path, default=None, help="cache folder (default: a fresh temporary one)")
    args = parser.parse_args()

    import supportdesk  # noqa: F401  (telemetry-off defaults before haystack loads)
    from supportdesk.llm import ScriptedModel
    from supportdesk.rag import FAQPipeline, KnowledgeBase, load_rag_policy
    from supportdesk.rag._minilm import get_encoder

    started = time.perf_counter()
    get_encoder()
    load_s = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or Path(tmp)
        kb = KnowledgeBase.from_config()
        policy = load_rag_policy("embedded")
        started = time.perf_counter()
        FAQPipeline(kb, ScriptedModel([]), None, policy, cache_dir=cache)
        cold_s = time.perf_counter() - started
        started = time.perf_counter()
        rag = FAQPipeline(kb, ScriptedModel([]), None, policy, cache_dir=cache)
        warm_s = time.perf_counter() - started

    in_scope = [(p, e.id) for e in kb for p in e.paraphrases[:2]]
    n_out = min(len(OUT_OF_SCOPE), max(1, args.queries // 5))
    n_in = max(1, args.queries - n_out)
    queries = [*in_scope[:n_in], *[(q, None) for q in OUT_OF_SCOPE[:n_out]]]

    rag.run("warm-up query")
    latencies: list[float] = []
    correct_in = answered_in = escalated_out = 0
    for query, expected in queries:
        t0 = time.perf_counter()
        result = rag.run(query)
        latencies.append(time.perf_counter() - t0)
        if expected is None:
            escalated_out += result.route == "escalated"
        else:
            answered_in += result.route == "answered"
            correct_in += result.faq_id == expected
    ms = sorted(x * 1000 for x in latencies)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    n_in_run = sum(1 for _, e in queries if e is not None)
    print(f"FAQ: {len(kb)} entries, {len(rag._texts)} texts, threshold {rag.threshold:.4f}")
    print(f"MiniLM weights load: {load_s:.2f} s")
    print(f"build: cold {cold_s:.2f} s (embed + head + calibration), warm {warm_s:.2f} s (cache hit)")
    print(f"queries: {len(queries)} ({n_in_run} FAQ paraphrases, {len(queries) - n_in_run} out of scope)")
    print(f"latency per query: p50 {q[49]:.1f} ms, p95 {q[94]:.1f} ms, mean {statistics.fmean(ms):.1f} ms, "
          f"max {ms[-1]:.1f} ms")
    print(f"routes: FAQ paraphrases answered {answered_in}/{n_in_run} (right entry {correct_in}), "
          f"out of scope escalated {escalated_out}/{len(queries) - n_in_run}")
    print(f"peak RSS: {_peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
