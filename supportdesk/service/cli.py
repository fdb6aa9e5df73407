"""``supportdesk serve`` and ``supportdesk keys create|list|revoke``.

    supportdesk keys create --tenant acme --scopes runs:write,runs:read   # the key is the last stdout line
    supportdesk keys list [--json]
    supportdesk keys revoke KEY_ID
    supportdesk serve --host 127.0.0.1 --port 8000 --workers 4
"""

from __future__ import annotations

import argparse
import json
import sys

from supportdesk.errors import ConfigError

__all__ = ["add_keys_parser", "add_serve_parser", "run_keys_command", "run_serve_command"]


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``serve``."""
    serve = sub.add_parser("serve", help="run the HTTP API and the operator console")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback only)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    serve.add_argument("--workers", type=int, default=None,
                       help="runs executing at once in the in-process engine (default SUPPORTDESK_SERVICE_WORKERS, 2)")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])


def add_keys_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``keys create|list|revoke``."""
    from supportdesk.service.keys import SCOPES

    keys = sub.add_parser("keys", help="manage API keys of the HTTP service")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    create = actions.add_parser("create", help="create a key; prints it once (last line of stdout)")
    create.add_argument("--tenant", required=True, help="the tenant the key acts for")
    create.add_argument("--scopes", default=",".join(SCOPES), help=f"comma-separated, of {', '.join(SCOPES)} (default: all)")
    listing = actions.add_parser("list", help="list keys (ids, tenants, scopes; never the secrets)")
    listing.add_argument("--tenant", help="only this tenant's keys")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    revoke = actions.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")


def run_keys_command(args: argparse.Namespace) -> int:
    """Handle ``keys``."""
    from supportdesk.service.keys import KeyStore
    from supportdesk.settings import Settings

    store = KeyStore.from_settings(Settings())
    if args.keys_command == "create":
        key, token = store.create(args.tenant, args.scopes)
        print(f"key id {key.key_id} for tenant {key.tenant}, scopes {','.join(key.scopes)} (shown once; only its hash is stored):")
        print(token, flush=True)
        return 0
    if args.keys_command == "list":
        keys = store.list(args.tenant)
        if args.json:
            print(json.dumps([{"key_id": k.key_id, "tenant": k.tenant, "scopes": list(k.scopes), "created_at": k.created_at,
                               "revoked_at": k.revoked_at} for k in keys]))
        elif not keys:
            print("no keys")
        else:
            for k in keys:
                state = f"revoked {k.revoked_at}" if k.revoked_at else "active"
                print(f"{k.key_id}  {k.tenant:<20} {','.join(k.scopes):<40} {k.created_at}  {state}")
        return 0
    key = store.revoke(args.key_id)
    print(f"revoked {key.key_id} (tenant {key.tenant})")
    return 0


def run_serve_command(args: argparse.Namespace) -> int:
    """Handle ``serve``: uvicorn in this process, runs on the configured engine."""
    try:
        import uvicorn

        from supportdesk.service.app import create_app
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError(f"supportdesk serve needs the service extra: pip install 'supportdesk[service]' ({exc})") from exc
    from supportdesk.settings import Settings

    if not 0 < args.port < 65536:
        raise ConfigError(f"--port {args.port}: must be 1-65535")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: must be at least 1")
    settings = Settings()
    app = create_app(settings, workers=args.workers)
    print(f"supportdesk: serving on http://{args.host}:{args.port} (console at /console)", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0
