"""Prometheus metrics of one app, in its own registry (the host's global registry is left alone).

Scraped values: runs by status and approvals waiting (read from the database at scrape time, so
runs of every process count), queue depth (the engine). Observed values: step latencies, model
calls and tokens of the runs this process executed, HTTP requests.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from supportdesk.durable.journal import AuditEntry
    from supportdesk.models import CustomerTicketState

__all__ = ["ServiceMetrics"]

logger = logging.getLogger(__name__)

_STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class _ScrapeCollector(Collector):
    def __init__(
        self,
        status_counts: Callable[[], dict[str, int]],
        approvals_waiting: Callable[[], int],
        queue_depth: Callable[[], int],
    ) -> None:
        self._status_counts = status_counts
        self._approvals = approvals_waiting
        self._queue = queue_depth

    def collect(self) -> Iterator[GaugeMetricFamily]:
        runs = GaugeMetricFamily("supportdesk_runs", "Runs in the journal by status.", labels=["status"])
        try:
            for status, count in sorted(self._status_counts().items()):
                runs.add_metric([status], count)
        except Exception:  # a scrape never fails because the database is busy
            logger.warning("metrics: could not count runs", exc_info=True)
        yield runs
        waiting = GaugeMetricFamily("supportdesk_approvals_waiting", "Runs waiting for a human decision.")
        try:
            waiting.add_metric([], self._approvals())
        except Exception:
            logger.warning("metrics: could not count approvals", exc_info=True)
        yield waiting
        queue = GaugeMetricFamily("supportdesk_queue_depth", "Runs accepted but not yet picked up by a worker.")
        queue.add_metric([], self._queue())
        yield queue


class ServiceMetrics:
    """The app's metrics; :meth:`observe_run` is the engine's ``on_done`` hook."""

    def __init__(
        self,
        status_counts: Callable[[], dict[str, int]],
        approvals_waiting: Callable[[], int],
        queue_depth: Callable[[], int],
        audit: Callable[[str, int], list[AuditEntry]],
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._audit = audit
        self.admitted = Counter("supportdesk_runs_admitted", "Runs admitted over HTTP.", ["tenant"], registry=self.registry)
        self.finished = Counter(
            "supportdesk_runs_executed", "Runs executed by this process, by outcome.", ["outcome"], registry=self.registry
        )
        self.step_seconds = Histogram(
            "supportdesk_step_seconds", "Flow step latency.", ["step"], buckets=_STEP_BUCKETS, registry=self.registry
        )
        self.model_calls = Counter("supportdesk_model_calls", "Model calls made by runs.", registry=self.registry)
        self.model_tokens = Counter("supportdesk_model_tokens", "Model tokens used by runs.", ["kind"], registry=self.registry)
        self.requests = Counter(
            "supportdesk_http_requests", "HTTP requests.", ["method", "route", "status"], registry=self.registry
        )
        self.request_seconds = Histogram(
            "supportdesk_http_request_seconds", "HTTP request latency.", ["route"], registry=self.registry
        )
        self.registry.register(_ScrapeCollector(status_counts, approvals_waiting, queue_depth))
        self._seen: OrderedDict[str, tuple[int, int, int, int]] = OrderedDict()  # run -> seq, calls, prompt, completion
        self._lock = threading.Lock()

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)

    def observe_run(self, run_id: str, state: CustomerTicketState) -> None:
        """Record what one execution of ``run_id`` did (only what earlier observations did not count)."""
        with self._lock:
            seq, calls, prompt, completion = self._seen.pop(run_id, (0, 0, 0, 0))
        entries = self._audit(run_id, seq)
        started: dict[str, datetime] = {}
        for entry in entries:
            if entry.kind == "step_start" and entry.step:
                started[entry.step] = datetime.fromisoformat(entry.ts)
            elif entry.kind == "step_end" and entry.step in started:
                seconds = (datetime.fromisoformat(entry.ts) - started.pop(entry.step)).total_seconds()
                self.step_seconds.labels(entry.step).observe(max(0.0, seconds))
        self.finished.labels(state.status.value).inc()
        self.model_calls.inc(max(0, state.llm_calls - calls))
        self.model_tokens.labels("prompt").inc(max(0, state.prompt_tokens - prompt))
        self.model_tokens.labels("completion").inc(max(0, state.completion_tokens - completion))
        last = entries[-1].seq if entries else seq
        with self._lock:
            self._seen[run_id] = (last, state.llm_calls, state.prompt_tokens, state.completion_tokens)
            while len(self._seen) > 10_000:
                self._seen.popitem(last=False)
