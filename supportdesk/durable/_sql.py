"""Every SQL statement of :mod:`supportdesk.durable`, in one place.

Statements use ``?`` placeholders; :class:`~supportdesk.durable.db.Database` rewrites them to ``%s``
for PostgreSQL. The DDL and DML below are valid in both SQLite (>= 3.35, for ``RETURNING``) and
PostgreSQL; only the append-only triggers differ and are kept per dialect.

Tables (all prefixed ``durable_`` so they can share a database with other supportdesk data):

``durable_runs``         one row per run id: query, status, latest state, the execution lease
                         (``lease_owner``, ``lease_expires``) and the audit sequence counter
``durable_payloads``     the fingerprint of each run's payload (query, customer): a run id is an
                         idempotency key, reusable only with the same payload
``durable_checkpoints``  one row per completed step, in order (``seq``)
``durable_calls``        the call journal: recorded LLM completions and tool results for replay
``durable_effects``      side-effect intents and their outcomes (exactly-one ticket)
``durable_audit``        the append-only audit trail, ``(run_id, seq)`` ordered
"""

from __future__ import annotations

SCHEMA_VERSION = 1

DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS durable_schema (
        version INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS durable_runs (
        run_id TEXT PRIMARY KEY,
        query TEXT NOT NULL,
        customer_hint TEXT,
        status TEXT NOT NULL,
        reason TEXT,
        state_json TEXT,
        last_step TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        lease_owner TEXT,
        lease_expires DOUBLE PRECISION,
        attempts INTEGER NOT NULL DEFAULT 0,
        checkpoint_seq INTEGER NOT NULL DEFAULT 0,
        audit_seq INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE IF NOT EXISTS durable_checkpoints (
        run_id TEXT NOT NULL REFERENCES durable_runs (run_id),
        seq INTEGER NOT NULL,
        step TEXT NOT NULL,
        state_json TEXT NOT NULL,
        ts TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    )""",
    """CREATE TABLE IF NOT EXISTS durable_calls (
        run_id TEXT NOT NULL REFERENCES durable_runs (run_id),
        step TEXT NOT NULL,
        call_key TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        response_json TEXT NOT NULL,
        ts TEXT NOT NULL,
        PRIMARY KEY (run_id, step, call_key)
    )""",
    """CREATE TABLE IF NOT EXISTS durable_effects (
        run_id TEXT NOT NULL REFERENCES durable_runs (run_id),
        effect TEXT NOT NULL,
        effect_key TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 1,
        reason TEXT,
        outcome_json TEXT,
        intent_ts TEXT NOT NULL,
        outcome_ts TEXT,
        PRIMARY KEY (run_id, effect, effect_key)
    )""",
    """CREATE TABLE IF NOT EXISTS durable_audit (
        run_id TEXT NOT NULL REFERENCES durable_runs (run_id),
        seq INTEGER NOT NULL,
        ts TEXT NOT NULL,
        step TEXT,
        kind TEXT NOT NULL,
        data_json TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    )""",
    "CREATE INDEX IF NOT EXISTS durable_runs_status ON durable_runs (status, updated_at)",
    # A table of its own (not a column) so databases created before it gain it without a migration.
    """CREATE TABLE IF NOT EXISTS durable_payloads (
        run_id TEXT PRIMARY KEY REFERENCES durable_runs (run_id),
        fingerprint TEXT NOT NULL
    )""",
)

APPEND_ONLY_SQLITE: tuple[str, ...] = (
    """CREATE TRIGGER IF NOT EXISTS durable_audit_no_update BEFORE UPDATE ON durable_audit
       BEGIN SELECT RAISE(ABORT, 'durable_audit is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS durable_audit_no_delete BEFORE DELETE ON durable_audit
       BEGIN SELECT RAISE(ABORT, 'durable_audit is append-only'); END""",
)

APPEND_ONLY_POSTGRES: tuple[str, ...] = (
    """CREATE OR REPLACE FUNCTION durable_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'durable_audit is append-only'; END $$""",
    "DROP TRIGGER IF EXISTS durable_audit_append_only ON durable_audit",
    """CREATE TRIGGER durable_audit_append_only BEFORE UPDATE OR DELETE ON durable_audit
       FOR EACH ROW EXECUTE FUNCTION durable_audit_append_only()""",
)

# Serialises concurrent schema creation in PostgreSQL (CREATE TABLE IF NOT EXISTS races otherwise).
PG_SCHEMA_LOCK = "SELECT pg_advisory_xact_lock(7305019941)"

SCHEMA_VERSION_GET = "SELECT version FROM durable_schema"
SCHEMA_VERSION_SET = "INSERT INTO durable_schema (version) VALUES (?)"

# --- runs -------------------------------------------------------------------------------------

RUN_COLUMNS = (
    "run_id, query, customer_hint, status, reason, last_step, created_at, updated_at, "
    "lease_owner, lease_expires, attempts"
)

RUN_INSERT = """INSERT INTO durable_runs (run_id, query, customer_hint, status, created_at, updated_at)
    VALUES (?, ?, ?, 'pending', ?, ?)
    ON CONFLICT (run_id) DO NOTHING"""

RUN_GET = f"SELECT {RUN_COLUMNS} FROM durable_runs WHERE run_id = ?"

PAYLOAD_INSERT = "INSERT INTO durable_payloads (run_id, fingerprint) VALUES (?, ?) ON CONFLICT (run_id) DO NOTHING"

PAYLOAD_GET = "SELECT fingerprint FROM durable_payloads WHERE run_id = ?"

RUN_LIST = f"SELECT {RUN_COLUMNS} FROM durable_runs ORDER BY created_at DESC, run_id LIMIT ?"

RUN_LIST_BY_STATUS = f"SELECT {RUN_COLUMNS} FROM durable_runs WHERE status = ? ORDER BY created_at DESC, run_id LIMIT ?"

# Take the lease if the run is not finished and the lease is free, expired, or already ours.
RUN_ACQUIRE = """UPDATE durable_runs
    SET lease_owner = ?, lease_expires = ?, status = 'running', attempts = attempts + 1, updated_at = ?
    WHERE run_id = ? AND status NOT IN ('completed', 'failed')
      AND (lease_owner IS NULL OR lease_expires < ? OR lease_owner = ? OR lease_owner = ?)"""

RUN_RENEW = """UPDATE durable_runs SET lease_expires = ?
    WHERE run_id = ? AND lease_owner = ?"""

RUN_STATE = "SELECT state_json FROM durable_runs WHERE run_id = ?"

# Fenced: only the lease holder finishes a run (``force`` drops the owner condition for operators).
RUN_FINISH = """UPDATE durable_runs
    SET status = ?, reason = ?, lease_owner = NULL, lease_expires = NULL, updated_at = ?
    WHERE run_id = ? AND lease_owner = ?"""

RUN_FINISH_FORCE = """UPDATE durable_runs
    SET status = ?, reason = ?, lease_owner = NULL, lease_expires = NULL, updated_at = ?
    WHERE run_id = ?"""

RUN_SET_STATE = "UPDATE durable_runs SET state_json = ? WHERE run_id = ? AND lease_owner = ?"

RUN_LIST_RESUMABLE = f"""SELECT {RUN_COLUMNS} FROM durable_runs
    WHERE status IN ('pending', 'needs_reconcile')
       OR (status = 'running' AND (lease_expires IS NULL OR lease_expires < ?))
    ORDER BY created_at, run_id LIMIT ?"""

RUN_RELEASE = """UPDATE durable_runs SET lease_owner = NULL, lease_expires = NULL, updated_at = ?
    WHERE run_id = ? AND lease_owner = ?"""

# --- checkpoints ------------------------------------------------------------------------------

# Fenced: only the lease holder may write the state. Bumps the checkpoint counter and renews the lease.
CHECKPOINT_BUMP = """UPDATE durable_runs
    SET checkpoint_seq = checkpoint_seq + 1, state_json = ?, last_step = ?, updated_at = ?, lease_expires = ?
    WHERE run_id = ? AND lease_owner = ?
    RETURNING checkpoint_seq"""

CHECKPOINT_INSERT = "INSERT INTO durable_checkpoints (run_id, seq, step, state_json, ts) VALUES (?, ?, ?, ?, ?)"

CHECKPOINT_STEPS = "SELECT step FROM durable_checkpoints WHERE run_id = ? ORDER BY seq"

# --- call journal -----------------------------------------------------------------------------

CALL_INSERT = """INSERT INTO durable_calls (run_id, step, call_key, request_hash, response_json, ts)
    VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (run_id, step, call_key) DO NOTHING"""

CALL_GET = """SELECT request_hash, response_json, ts FROM durable_calls
    WHERE run_id = ? AND step = ? AND call_key = ?"""

# --- side effects -----------------------------------------------------------------------------

EFFECT_INTENT = """INSERT INTO durable_effects (run_id, effect, effect_key, status, intent_ts)
    VALUES (?, ?, ?, 'intent', ?)
    ON CONFLICT (run_id, effect, effect_key) DO UPDATE
    SET attempts = durable_effects.attempts + 1,
        status = CASE WHEN durable_effects.status = 'rejected' THEN 'intent' ELSE durable_effects.status END
    WHERE durable_effects.status <> 'done'"""

EFFECT_OUTCOME = """INSERT INTO durable_effects
    (run_id, effect, effect_key, status, outcome_json, intent_ts, outcome_ts)
    VALUES (?, ?, ?, 'done', ?, ?, ?)
    ON CONFLICT (run_id, effect, effect_key) DO UPDATE
    SET status = 'done', outcome_json = excluded.outcome_json, outcome_ts = excluded.outcome_ts, reason = NULL
    WHERE durable_effects.status <> 'done'"""

EFFECT_MARK = """UPDATE durable_effects SET status = ?, reason = ?
    WHERE run_id = ? AND effect = ? AND effect_key = ? AND status <> 'done'"""

EFFECT_GET = """SELECT effect, effect_key, status, attempts, reason, outcome_json, intent_ts, outcome_ts
    FROM durable_effects WHERE run_id = ? AND effect = ? AND effect_key = ?"""

EFFECT_PENDING = """SELECT effect, effect_key, status, attempts, reason, outcome_json, intent_ts, outcome_ts
    FROM durable_effects WHERE run_id = ? AND status IN ('intent', 'unclear') ORDER BY intent_ts, effect, effect_key"""

# --- audit ------------------------------------------------------------------------------------

AUDIT_BUMP = "UPDATE durable_runs SET audit_seq = audit_seq + 1 WHERE run_id = ? RETURNING audit_seq"

AUDIT_INSERT = "INSERT INTO durable_audit (run_id, seq, ts, step, kind, data_json) VALUES (?, ?, ?, ?, ?, ?)"

AUDIT_LIST = "SELECT run_id, seq, ts, step, kind, data_json FROM durable_audit WHERE run_id = ? ORDER BY seq"

# Approval decisions: the run row's lock serialises deciders (a no-op UPDATE locks the row in PostgreSQL;
# SQLite write transactions are exclusive already); the first entry of a kind wins.
RUN_LOCK = "UPDATE durable_runs SET audit_seq = audit_seq WHERE run_id = ?"

AUDIT_FIRST_OF_KIND = """SELECT run_id, seq, ts, step, kind, data_json FROM durable_audit
    WHERE run_id = ? AND kind = ? ORDER BY seq LIMIT 1"""
