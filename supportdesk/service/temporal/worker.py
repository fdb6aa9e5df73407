"""``supportdesk worker``: a Temporal worker executing supportdesk runs.

Start any number, on any machines, against the same Temporal server, task queue and PostgreSQL
(``SUPPORTDESK_DATABASE_URL``; the journal and the ticket store all workers share)::

    SUPPORTDESK_ENGINE=temporal TEMPORAL_ADDRESS=temporal:7233 \\
    SUPPORTDESK_DATABASE_URL=postgresql://... supportdesk worker

Settings (environment, ``SUPPORTDESK_`` prefix unless noted):

``WORKER_MAX_CONCURRENT_RUNS`` (4)       runs (activities) one worker executes at once
``WORKER_MODEL_CALLS_PER_S`` ({})        model calls per second per provider, JSON: ``{"openai": 5}``
``WORKER_HEARTBEAT_TIMEOUT_S`` (10)      a run silent this long is retried on another worker
``WORKER_STICKY_TIMEOUT_S`` (3)          a workflow task stuck on a dead worker's sticky queue moves on
``WORKER_LEASE_S`` (20)                  the journal lease inside workers: the retry takes the run over
``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE`` (no prefix), ``TEMPORAL_TASK_QUEUE``   where to poll
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio.client import Client
from temporalio.worker import Worker

from supportdesk.service.temporal.activities import RunActivities
from supportdesk.service.temporal.workflows import SupportRunWorkflow

if TYPE_CHECKING:
    from supportdesk.llm._types import ChatModel
    from supportdesk.settings import Settings

__all__ = ["build_worker", "run_worker"]

logger = logging.getLogger(__name__)


def build_worker(client: Client, settings: Settings, *, chat_model: Callable[[], ChatModel] | None = None) -> Worker:
    """A Worker for ``settings.temporal_task_queue`` with the documented limits and timeouts."""
    activities = RunActivities(settings, chat_model=chat_model)
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=[SupportRunWorkflow],
        activities=activities.all(),
        max_concurrent_activities=settings.worker_max_concurrent_runs,
        max_concurrent_workflow_tasks=max(2, settings.worker_max_concurrent_runs),
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=settings.worker_sticky_timeout_s),
        graceful_shutdown_timeout=timedelta(seconds=5),
    )


async def serve_worker(
    settings: Settings, *, chat_model: Callable[[], ChatModel] | None = None, stop: asyncio.Event | None = None
) -> None:
    """Connect, poll until ``stop`` is set (or SIGINT/SIGTERM), then shut down gracefully."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    worker = build_worker(client, settings, chat_model=chat_model)
    logger.info(
        "worker polling %s on %s/%s (max %d runs)", settings.temporal_task_queue, settings.temporal_address,
        settings.temporal_namespace, settings.worker_max_concurrent_runs,
    )
    async with worker:
        await stop.wait()
    logger.info("worker stopped")


def run_worker(settings: Settings, *, chat_model: Callable[[], ChatModel] | None = None) -> None:
    """Blocking :func:`serve_worker` (the ``supportdesk worker`` command)."""
    asyncio.run(serve_worker(settings, chat_model=chat_model))
