"""supportdesk as an HTTP service: ``supportdesk serve`` (FastAPI + uvicorn).

    from supportdesk.service import create_app
    from supportdesk.settings import Settings

    app = create_app(Settings())          # an ASGI app: uvicorn.run(app), or httpx/TestClient in tests

The public pieces: :func:`create_app` (the app), :mod:`~supportdesk.service.engine` (where runs
execute), :mod:`~supportdesk.service.keys` (API keys, tenants, scopes). Everything else is private.
Needs the ``service`` extra: ``pip install 'supportdesk[service]'``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def create_app(*args: Any, **kwargs: Any) -> Any:
    """Build the FastAPI app (see :func:`supportdesk.service.app.create_app`)."""
    from supportdesk.service.app import create_app as _create_app

    return _create_app(*args, **kwargs)
