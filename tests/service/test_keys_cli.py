"""`supportdesk keys create|list|revoke`: the key is printed once (last stdout line), only its hash is kept."""

from __future__ import annotations

import json

from supportdesk.cli import main
from supportdesk.service.keys import KeyStore
from supportdesk.settings import Settings


def test_create_list_revoke(capsys):
    """create prints a working token last; list shows id, tenant and scopes (never the token); revoke disables it."""
    assert main(["keys", "create", "--tenant", "acme", "--scopes", "runs:read,runs:write"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    store = KeyStore.from_settings(Settings())
    key = store.verify(token)
    assert key is not None and key.tenant == "acme" and key.scopes == ("runs:write", "runs:read")
    assert main(["keys", "list", "--json"]) == 0
    out = capsys.readouterr().out
    assert token.split("_", 2)[2] not in out
    assert [(k["key_id"], k["tenant"], k["revoked_at"]) for k in json.loads(out)] == [(key.key_id, "acme", None)]
    assert main(["keys", "revoke", key.key_id]) == 0
    assert store.verify(token) is None
    assert main(["keys", "list"]) == 0
    assert "revoked" in capsys.readouterr().out


def test_bad_tenant_scope_or_key_id_exit_2_with_one_line(capsys):
    """Invalid tenant names, unknown scopes and unknown key ids are exit 2 with one error line."""
    for argv in (["keys", "create", "--tenant", "a.b"], ["keys", "create", "--tenant", "acme", "--scopes", "root"],
                 ["keys", "revoke", "0123456789abcdef"], ["keys", "revoke", "not-an-id"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("supportdesk: error:")
