"""How the FAQ stage's cost grows with the knowledge base: 100, 1,000, 10,000 and 100,000 entries.

Entries are generated (an action on an object in a context, with three paraphrases each: four texts
an entry, vocabulary shared between entries so neighbours are close). For each size it prints:

* ``embed cold``: MiniLM (NumPy) over every text, measured up to ``--max-cold-texts`` texts and
  extrapolated linearly beyond (marked ``~``: the rate is texts/s measured in this run);
* ``embed warm``: reading the embedding cache (``emb-<hash>.npy``) back;
* ``store``: writing the texts into the Haystack ``FAQDocumentStore`` (one Document with a 384-float
  list each) and its Python memory (tracemalloc peak); above ``--max-store-entries`` extrapolated;
* ``index``: the NumPy ``EntryIndex`` (centroids) and, up to ``--max-head-entries``, the KB head
  (softmax over entries, 150 epochs; it grows with texts x entries: extrapolated beyond);
* ``query p50/p95``: the retrieval the pipeline runs (embedding retriever over the store + the
  scorer on its shortlist), and the NumPy full scan (``EntryIndex.score``) as the yardstick measured
  in the same run; query texts are paraphrases not in the KB.

Above 1,000 entries the vectors are synthetic (unit vectors clustered per entry, like MiniLM's), so
the index, store and query figures are real at every size while only the encoder is extrapolated.

Run: ``nice python benchmarks/bench_kb_scale.py`` (``--sizes 100 1000`` for a quick look).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ACTIONS = ["reset", "change", "export", "import", "delete", "restore", "share", "sync", "download", "rename",
           "archive", "lock", "unlock", "print", "merge", "copy", "move", "tag", "search", "encrypt"]
OBJECTS = ["password", "notebook", "note", "invoice", "subscription", "avatar", "workspace", "template", "reminder",
           "attachment", "calendar", "folder", "label", "backup", "team", "api key", "plan", "widget", "theme", "email"]
CONTEXTS = ["on iPhone", "on Android", "on the web app", "on Windows", "on macOS", "from the admin console",
            "for my whole team", "after a trial", "while offline", "in bulk", "on a shared device", "via the API",
            "without losing data", "for a student account", "in dark mode", "before renewal", "on Linux",
            "in the browser extension", "for an old account", "on a tablet"]
PARAPHRASES = ["How do I {a} my {o} {c}?", "I need to {a} the {o} {c}", "is it possible to {a} a {o} {c}",
               "can't figure out how to {a} my {o} {c}"]
QUERY_FORMS = ["what's the way to {a} my {o} {c}", "please help me {a} the {o} {c}"]


def entries(n: int) -> list[tuple[str, str, str]]:
    """``n`` distinct (action, object, context) triples (20 x 20 x 20 = 8,000, then numbered contexts)."""
    out = []
    for i in range(n):
        a, o, c = ACTIONS[i % 20], OBJECTS[(i // 20) % 20], CONTEXTS[(i // 400) % 20]
        if i >= 8000:
            c = f"{c} (edition {i // 8000})"
        out.append((a, o, c))
    return out


def texts_of(triples: list[tuple[str, str, str]], forms: list[str]) -> list[str]:
    return [f.format(a=a, o=o, c=c) for a, o, c in triples for f in forms]


def synthetic_vectors(n_entries: int, per_entry: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    """Unit vectors clustered per entry (cosine ~0.8 within an entry, ~0 between), float32."""
    rng = np.random.default_rng(seed)
    out = np.empty((n_entries * per_entry, dim), dtype=np.float32)
    for start in range(0, n_entries, 10_000):
        stop = min(start + 10_000, n_entries)
        centres = rng.standard_normal((stop - start, dim)).astype(np.float32)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        noise = rng.standard_normal((stop - start, per_entry, dim)).astype(np.float32) * 0.035
        block = centres[:, None, :] + noise
        block /= np.linalg.norm(block, axis=2, keepdims=True)
        out[start * per_entry : stop * per_entry] = block.reshape(-1, dim)
    return out


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10_000, 100_000])
    parser.add_argument("--max-cold-texts", type=int, default=4000, help="encode at most this many texts for real")
    parser.add_argument("--max-store-entries", type=int, default=10_000, help="build the Haystack store up to this size")
    parser.add_argument("--max-head-entries", type=int, default=1000, help="train the KB head up to this size")
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--cache-dir", type=Path, help="reuse an embedding cache (a cached size shows 'cached' as cold)")
    parser.add_argument("--rate", type=float, help="encoder texts/s for extrapolation when no size is encoded cold")
    args = parser.parse_args(argv)

    from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever

    from supportdesk.rag._minilm import get_encoder
    from supportdesk.rag.document_store import FAQDocumentStore
    from supportdesk.rag.entry_scorer import EntryScorer
    from supportdesk.rag.knowledge_base import cached_embeddings
    from supportdesk.rag.scoring import EntryIndex, ScoringParams, train_linear_head

    encoder = get_encoder()
    encoder.encode(["warm up"])
    per_entry = len(PARAPHRASES)
    rate: float | None = args.rate  # texts/s, measured on the first real encode
    head_cost: tuple[float, int] | None = None  # seconds, texts x entries
    store_cost: tuple[float, float, int] | None = None  # seconds, MiB, texts
    rows = []
    cache = args.cache_dir or Path(tempfile.mkdtemp(prefix="kb-scale-"))
    print(f"# bench_kb_scale: MiniLM in NumPy, {per_entry} texts an entry; '~' = extrapolated (basis in the notes)")
    for n in args.sizes:
        triples = entries(n)
        texts = texts_of(triples, PARAPHRASES)
        queries_text = texts_of(triples[:: max(1, n // args.queries)][: args.queries], QUERY_FORMS[:1])
        owners = np.repeat(np.arange(n), per_entry)
        real = len(texts) <= args.max_cold_texts
        if real:
            hit = any(cache.glob("emb-*.npy")) and args.cache_dir is not None
            started = time.perf_counter()
            vectors = cached_embeddings(texts, cache_dir=cache)
            cold = time.perf_counter() - started
            if cold > 1.0 or not hit:
                rate = len(texts) / cold
            cold_s = f"{cold:8.2f}" if cold > 1.0 or not hit else "  cached"
            query_vecs = encoder.encode(queries_text)
        else:
            vectors = synthetic_vectors(n, per_entry)
            cold_s = f"~{len(texts) / rate:7.0f}" if rate else "       ?"
            query_vecs = vectors[:: per_entry * max(1, n // args.queries)][: args.queries] + 0.0
            noise = np.random.default_rng(1).standard_normal(query_vecs.shape).astype(np.float32) * 0.03
            query_vecs = query_vecs + noise
            query_vecs /= np.linalg.norm(query_vecs, axis=1, keepdims=True)
        path = cache / f"warm-{n}.npy"
        np.save(path, vectors)
        started = time.perf_counter()
        np.load(path)
        warm = time.perf_counter() - started

        ids = [f"e{i}" for i in range(n)]
        if n <= args.max_head_entries:
            started = time.perf_counter()
            head = train_linear_head(vectors, owners, n, ScoringParams())
            head_s = time.perf_counter() - started
            head_cost = (head_s, len(texts) * n)
            head_txt = f"{head_s:8.2f}"
        else:
            head = None
            head_txt = f"~{head_cost[0] * len(texts) * n / head_cost[1]:7.0f}" if head_cost else "       ?"
        tracemalloc.start()
        started = time.perf_counter()
        index = EntryIndex.build(vectors, owners, n, ScoringParams(use_head=head is not None), head=head)
        index_s = time.perf_counter() - started
        index_mib = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()

        if n <= args.max_store_entries:
            tracemalloc.start()
            started = time.perf_counter()
            store = FAQDocumentStore.from_texts(texts, vectors, [ids[o] for o in owners])
            store_s = time.perf_counter() - started
            store_mib = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            store_cost = (store_s, store_mib, len(texts))
            retriever = InMemoryEmbeddingRetriever(store, top_k=50)
            scorer = EntryScorer(top_k=5, index=index, entry_ids=ids)
            lat = []
            agree = 0
            for q in query_vecs:
                started = time.perf_counter()
                docs = retriever.run(query_embedding=q.tolist())["documents"]
                cands = scorer.run(query_embedding=q.tolist(), documents=docs)["candidates"]
                lat.append((time.perf_counter() - started) * 1000)
                agree += bool(cands) and cands[0]["entry_id"] == ids[int(np.argmax(index.score(q[None, :])[0]))]
            pipe_txt = f"{pct(lat, 50):8.1f} {pct(lat, 95):8.1f}"
            store_txt = f"{store_s:8.2f} {store_mib:8.0f}"
            agree_txt = f"{agree}/{len(query_vecs)}"
            del store, retriever
        else:
            s, mib, t = store_cost if store_cost else (float("nan"), float("nan"), 1)
            store_txt = f"~{s * len(texts) / t:7.0f} ~{mib * len(texts) / t:7.0f}"
            pipe_txt = "       -        -"
            agree_txt = "-"
        scan = []
        for q in query_vecs:
            started = time.perf_counter()
            index.score(q[None, :])
            scan.append((time.perf_counter() - started) * 1000)
        rows.append(n)
        print(f"entries {n:>7}  texts {len(texts):>7}  embed cold s {cold_s}  warm s {warm:6.3f}  "
              f"store s/MiB {store_txt}  index s {index_s:6.2f} ({index_mib:5.0f} MiB)  head s {head_txt}  "
              f"query p50/p95 ms {pipe_txt}  full scan p50/p95 ms {pct(scan, 50):7.2f} {pct(scan, 95):7.2f}  "
              f"shortlist top-1 = full scan {agree_txt}", flush=True)
    print(f"# notes: encoder rate {rate or float('nan'):.0f} texts/s (measured, {args.max_cold_texts} texts max) — cold embedding "
          f"beyond that is texts / rate; head time scales with texts x entries from the largest trained size; "
          f"store time and memory scale with texts from the largest built store.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
