"""Scale-out on Temporal: one workflow per run, executed by ``supportdesk worker`` processes.

``SUPPORTDESK_ENGINE=temporal`` (with ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE`` and
``SUPPORTDESK_TEMPORAL_TASK_QUEUE``) makes the service start runs as workflows instead of executing
them in its own process. Needs ``pip install 'supportdesk[temporal]'``.

* :mod:`~supportdesk.service.temporal.workflows`: the workflow (its own module, for the sandbox):
  an activity runs the flow up to the approval gate, a durable wait for the ``decided`` signal with
  a timer at the approval deadline, an activity that applies the decision and files the ticket.
* :mod:`~supportdesk.service.temporal.activities`: the activities, over the durable runner (the
  journal's step replay makes a retried activity skip completed steps and repeat no model call).
* :mod:`~supportdesk.service.temporal.engine`: :class:`TemporalEngine`, the service's Engine.
* :mod:`~supportdesk.service.temporal.worker`: :func:`run_worker` behind ``supportdesk worker``.

Nothing here imports temporalio until it is used.
"""

from __future__ import annotations

__all__: list[str] = []
