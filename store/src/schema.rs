//! Migrations of the metadata store.

use crate::{Conn, Result};

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 28;

pub(crate) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE principals (
    name       TEXT PRIMARY KEY,
    role       TEXT NOT NULL CHECK (role IN ('provider', 'operator', 'developer', 'supervisor')),
    created_at TEXT NOT NULL
);

CREATE TABLE datasets (
    name            TEXT PRIMARY KEY,
    current_version INTEGER NOT NULL,
    created_at      TEXT NOT NULL
);

CREATE TABLE dataset_versions (
    dataset           TEXT NOT NULL,
    version           INTEGER NOT NULL,
    policy_toml       TEXT NOT NULL,
    schema_json       TEXT NOT NULL,
    row_count         INTEGER NOT NULL,
    max_unit_rows     INTEGER NOT NULL,
    content_sha256    TEXT NOT NULL,
    source_name       TEXT NOT NULL,
    registered_by     TEXT NOT NULL,
    obtained_at       TEXT NOT NULL,
    PRIMARY KEY (dataset, version)
);

CREATE TABLE scenarios (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    developer       TEXT NOT NULL REFERENCES principals(name),
    spec_toml       TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'suspended', 'revoked')),
    epsilon_total   REAL NOT NULL,
    delta_total     REAL NOT NULL,
    epsilon_spent   REAL NOT NULL DEFAULT 0 CHECK (epsilon_spent >= 0),
    delta_spent     REAL NOT NULL DEFAULT 0 CHECK (delta_spent >= 0),
    created_at      TEXT NOT NULL,
    decided_by      TEXT,
    decided_at      TEXT,
    decision_reason TEXT,
    CHECK (epsilon_spent <= epsilon_total * (1 + 1e-9)),
    CHECK (delta_spent <= delta_total * (1 + 1e-9) + 1e-15)
);

CREATE TABLE modules (
    sha256     TEXT PRIMARY KEY,
    size       INTEGER NOT NULL,
    stored_at  TEXT NOT NULL
);

CREATE TABLE jobs (
    id            TEXT PRIMARY KEY,
    scenario_id   INTEGER NOT NULL REFERENCES scenarios(id),
    submitter     TEXT NOT NULL REFERENCES principals(name),
    module_sha256 TEXT NOT NULL REFERENCES modules(sha256),
    params_json   TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    error_kind    TEXT,
    error         TEXT,
    fuel_used     INTEGER,
    created_at    TEXT NOT NULL,
    finished_at   TEXT
);

CREATE TABLE queries (
    id          TEXT PRIMARY KEY,
    job_id      TEXT REFERENCES jobs(id),
    scenario_id INTEGER NOT NULL REFERENCES scenarios(id),
    sql         TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('answered', 'refused')),
    rule        TEXT,
    reason      TEXT,
    epsilon     REAL NOT NULL DEFAULT 0,
    delta       REAL NOT NULL DEFAULT 0,
    mechanism   TEXT,
    answer_json TEXT,
    created_at  TEXT NOT NULL
);

CREATE TABLE ledger (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    scenario_id INTEGER NOT NULL REFERENCES scenarios(id),
    job_id      TEXT,
    query_id    TEXT NOT NULL,
    epsilon     REAL NOT NULL CHECK (epsilon >= 0),
    delta       REAL NOT NULL CHECK (delta >= 0),
    created_at  TEXT NOT NULL
);

CREATE TABLE outputs (
    id          TEXT PRIMARY KEY,
    job_id      TEXT NOT NULL REFERENCES jobs(id),
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('table', 'text')),
    file_name   TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    bytes       INTEGER NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('staged', 'checked', 'flagged', 'operator_approved', 'released', 'rejected')),
    checks_json TEXT,
    created_at  TEXT NOT NULL,
    UNIQUE (job_id, name)
);

CREATE TABLE reviews (
    id         INTEGER PRIMARY KEY,
    output_id  TEXT NOT NULL REFERENCES outputs(id),
    reviewer   TEXT NOT NULL REFERENCES principals(name),
    tier       TEXT NOT NULL CHECK (tier IN ('operator', 'supervisor')),
    decision   TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
    reason     TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE products (
    id              TEXT PRIMARY KEY,
    output_id       TEXT NOT NULL UNIQUE REFERENCES outputs(id),
    manifest_sha256 TEXT NOT NULL,
    released_by     TEXT NOT NULL,
    released_at     TEXT NOT NULL
);

CREATE TABLE audit_events (
    seq       INTEGER PRIMARY KEY,
    ts        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;

CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'the privacy-budget ledger is append-only'); END;

CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'the privacy-budget ledger is append-only'); END;
"#,
    r#"
-- Threshold mode's differencing guard: the units each answered query's filter selected,
-- as sorted 64-bit hashes (little-endian), compared with later queries of the scenario.
CREATE TABLE query_units (
    query_id    TEXT PRIMARY KEY REFERENCES queries(id),
    scenario_id INTEGER NOT NULL REFERENCES scenarios(id),
    units       BLOB NOT NULL
);
CREATE INDEX query_units_scenario ON query_units (scenario_id);
"#,
    r#"
-- zCDP accounting: each charge's ρ, and each scenario's ρ budget and running total.
ALTER TABLE ledger ADD COLUMN rho REAL NOT NULL DEFAULT 0;
ALTER TABLE scenarios ADD COLUMN rho_total REAL NOT NULL DEFAULT 0;
ALTER TABLE scenarios ADD COLUMN rho_spent REAL NOT NULL DEFAULT 0;
CREATE TRIGGER scenarios_rho_within_budget BEFORE UPDATE OF rho_spent ON scenarios
WHEN NEW.rho_spent < 0 OR NEW.rho_spent > NEW.rho_total * (1 + 1e-9)
BEGIN SELECT RAISE(ABORT, 'the ρ budget cannot be exceeded'); END;
"#,
    r#"
-- Ingest records the rows it left out (empty privacy unit, policy `missing_unit = "drop"`)
-- and how many rows the per-unit bound keeps (rank <= max_rows_per_unit), and the bounded
-- columns whose every value already lies within its bounds (JSON list; clamping them is a
-- no-op the mediator may skip).
ALTER TABLE dataset_versions ADD COLUMN rows_dropped INTEGER NOT NULL DEFAULT 0;
ALTER TABLE dataset_versions ADD COLUMN bounded_rows INTEGER;
ALTER TABLE dataset_versions ADD COLUMN within_bounds TEXT NOT NULL DEFAULT '[]';
"#,
    r#"
-- Emergency stops (QQHR Art. 20): while a stop is in force, the jobs and queries it covers
-- are refused. Stops are lifted, never deleted.
CREATE TABLE stops (
    id          INTEGER PRIMARY KEY,
    scope       TEXT NOT NULL CHECK (scope IN ('scenario', 'developer', 'domain')),
    target      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    stopped_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    lifted_by   TEXT,
    lifted_at   TEXT
);
CREATE TRIGGER stops_no_delete BEFORE DELETE ON stops
BEGIN SELECT RAISE(ABORT, 'emergency stops are lifted, not deleted'); END;
"#,
    r#"
-- Outputs may be charts (SVG), and a reviewer may ask for changes. SQLite cannot change a
-- CHECK constraint in place: the table is rebuilt with its rows (foreign keys are checked
-- at commit, when the rebuilt table again holds every row reviews and products refer to).
PRAGMA defer_foreign_keys = ON;
CREATE TEMP TABLE outputs_copy AS SELECT * FROM outputs;
DROP TABLE outputs;
CREATE TABLE outputs (
    id          TEXT PRIMARY KEY,
    job_id      TEXT NOT NULL REFERENCES jobs(id),
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('table', 'text', 'chart')),
    file_name   TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    bytes       INTEGER NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('staged', 'checked', 'flagged', 'operator_approved', 'changes_requested', 'released', 'rejected')),
    checks_json TEXT,
    created_at  TEXT NOT NULL,
    UNIQUE (job_id, name)
);
INSERT INTO outputs (id, job_id, name, kind, file_name, sha256, bytes, status, checks_json, created_at)
    SELECT id, job_id, name, kind, file_name, sha256, bytes, status, checks_json, created_at FROM outputs_copy;
DROP TABLE outputs_copy;
"#,
    r#"
-- The audit log as an RFC 6962 Merkle tree (`audit::merkle`): every perfect subtree's hash,
-- keyed by (level, index); level 0 holds event seq's leaf hash at index seq - 1. Filled for
-- the events already stored by `audit::build_tree`, in this migration's transaction.
CREATE TABLE audit_nodes (
    level INTEGER NOT NULL CHECK (level >= 0),
    idx   INTEGER NOT NULL CHECK (idx >= 0),
    hash  BLOB NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TRIGGER audit_nodes_no_update BEFORE UPDATE ON audit_nodes
BEGIN SELECT RAISE(ABORT, 'the audit tree is append-only'); END;
CREATE TRIGGER audit_nodes_no_delete BEFORE DELETE ON audit_nodes
BEGIN SELECT RAISE(ABORT, 'the audit tree is append-only'); END;

-- Checkpoints: the domain key's signature over (number, size, root, ts).
CREATE TABLE audit_checkpoints (
    number     INTEGER PRIMARY KEY CHECK (number >= 1),
    size       INTEGER NOT NULL CHECK (size >= 0),
    root       TEXT NOT NULL,
    ts         TEXT NOT NULL,
    public_key TEXT NOT NULL,
    signature  TEXT NOT NULL
);
CREATE INDEX audit_checkpoints_size ON audit_checkpoints (size);
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;

-- Audit retention in years: at least 3 (Tianjin Art. 8), never unset.
INSERT INTO meta (key, value) VALUES ('audit_retention_years', '3')
    ON CONFLICT (key) DO NOTHING;
CREATE TRIGGER meta_audit_retention_insert BEFORE INSERT ON meta
WHEN NEW.key = 'audit_retention_years'
    AND (NEW.value = '' OR NEW.value GLOB '*[^0-9]*' OR CAST(NEW.value AS INTEGER) < 3)
BEGIN SELECT RAISE(ABORT, 'audit retention is at least 3 years'); END;
CREATE TRIGGER meta_audit_retention_update BEFORE UPDATE ON meta
WHEN OLD.key = 'audit_retention_years'
    AND (NEW.key != OLD.key OR NEW.value = '' OR NEW.value GLOB '*[^0-9]*'
         OR CAST(NEW.value AS INTEGER) < 3)
BEGIN SELECT RAISE(ABORT, 'audit retention is at least 3 years'); END;
CREATE TRIGGER meta_audit_retention_delete BEFORE DELETE ON meta
WHEN OLD.key = 'audit_retention_years'
BEGIN SELECT RAISE(ABORT, 'audit retention cannot be unset'); END;
"#,
    r#"
-- What a threshold-mode answer withheld (keys of suppressed cells, exact totals), for the
-- output checks; never sent to a module.
ALTER TABLE queries ADD COLUMN withheld_json TEXT;

-- A reviewer may request changes: the reviews table is rebuilt for the new decision.
PRAGMA defer_foreign_keys = ON;
CREATE TEMP TABLE reviews_copy AS SELECT * FROM reviews;
DROP TABLE reviews;
CREATE TABLE reviews (
    id         INTEGER PRIMARY KEY,
    output_id  TEXT NOT NULL REFERENCES outputs(id),
    reviewer   TEXT NOT NULL REFERENCES principals(name),
    tier       TEXT NOT NULL CHECK (tier IN ('operator', 'supervisor')),
    decision   TEXT NOT NULL CHECK (decision IN ('approve', 'reject', 'request_changes')),
    reason     TEXT,
    created_at TEXT NOT NULL
);
INSERT INTO reviews (id, output_id, reviewer, tier, decision, reason, created_at)
    SELECT id, output_id, reviewer, tier, decision, reason, created_at FROM reviews_copy;
DROP TABLE reviews_copy;
"#,
    r#"
-- Principals have a status (Qiqihar Art. 14, 23): an active principal acts; a suspended or
-- revoked one is refused everywhere. Revocation is final.
ALTER TABLE principals ADD COLUMN status TEXT NOT NULL DEFAULT 'active'
    CHECK (status IN ('active', 'suspended', 'revoked'));
CREATE TRIGGER principals_revocation_is_final BEFORE UPDATE OF status ON principals
WHEN OLD.status = 'revoked' AND NEW.status != 'revoked'
BEGIN SELECT RAISE(ABORT, 'a revoked principal stays revoked'); END;
CREATE TRIGGER principals_no_delete BEFORE DELETE ON principals
BEGIN SELECT RAISE(ABORT, 'principals are revoked, not deleted'); END;

-- API tokens (`tokens`): the public id and the Argon2 PHC string of the secret, never the
-- secret. Append-only except for revocation, which is set once.
CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY,
    principal  TEXT NOT NULL REFERENCES principals(name),
    hash       TEXT NOT NULL,
    issued_by  TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    revoked_by TEXT
);
CREATE INDEX api_tokens_principal ON api_tokens (principal);
CREATE TRIGGER api_tokens_no_delete BEFORE DELETE ON api_tokens
BEGIN SELECT RAISE(ABORT, 'API tokens are revoked, not deleted'); END;
CREATE TRIGGER api_tokens_revoke_only BEFORE UPDATE ON api_tokens
WHEN OLD.revoked_at IS NOT NULL
    OR NEW.revoked_at IS NULL
    OR NEW.revoked_by IS NULL
    OR NEW.id IS NOT OLD.id
    OR NEW.principal IS NOT OLD.principal
    OR NEW.hash IS NOT OLD.hash
    OR NEW.issued_by IS NOT OLD.issued_by
    OR NEW.created_at IS NOT OLD.created_at
BEGIN SELECT RAISE(ABORT, 'an API token can only be revoked, once'); END;
"#,
    r#"
-- Jobs run from a durable queue: queued -> running -> succeeded | failed | cancelled. A
-- queued job keeps the limits it was granted; a finished one keeps its log lines and the
-- number of queries it made. `runner` names the process running it (host:pid), so that a
-- server starting again can tell a job whose process died from one running elsewhere.
PRAGMA defer_foreign_keys = ON;
CREATE TEMP TABLE jobs_copy AS SELECT * FROM jobs;
DROP TABLE jobs;
CREATE TABLE jobs (
    id                  TEXT PRIMARY KEY,
    scenario_id         INTEGER NOT NULL REFERENCES scenarios(id),
    submitter           TEXT NOT NULL REFERENCES principals(name),
    module_sha256       TEXT NOT NULL REFERENCES modules(sha256),
    params_json         TEXT NOT NULL,
    limits_json         TEXT,
    status              TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    error_kind          TEXT,
    error               TEXT,
    fuel_used           INTEGER,
    queries             INTEGER,
    logs_json           TEXT,
    runner              TEXT,
    cancel_requested_by TEXT,
    created_at          TEXT NOT NULL,
    started_at          TEXT,
    finished_at         TEXT
);
INSERT INTO jobs (id, scenario_id, submitter, module_sha256, params_json, status, error_kind,
                  error, fuel_used, created_at, started_at, finished_at)
    SELECT id, scenario_id, submitter, module_sha256, params_json, status, error_kind, error,
           fuel_used, created_at, created_at, finished_at
    FROM jobs_copy;
DROP TABLE jobs_copy;
CREATE INDEX jobs_status ON jobs (status, created_at);
CREATE INDEX jobs_scenario ON jobs (scenario_id, created_at);
CREATE INDEX queries_scenario ON queries (scenario_id, status, created_at);
CREATE INDEX queries_job ON queries (job_id);

-- Scenarios are suspended, reinstated and revoked by operators, or suspended by usage
-- monitoring (Shuangyashan Art. 31); the reason and time of the last change are kept (the
-- history is in the audit log), and an idle scenario is flagged once per idle period.
-- Revocation is final.
ALTER TABLE scenarios ADD COLUMN status_reason TEXT;
ALTER TABLE scenarios ADD COLUMN status_changed_at TEXT;
ALTER TABLE scenarios ADD COLUMN idle_flagged_at TEXT;
CREATE TRIGGER scenarios_revocation_is_final BEFORE UPDATE OF status ON scenarios
WHEN OLD.status = 'revoked' AND NEW.status != 'revoked'
BEGIN SELECT RAISE(ABORT, 'a revoked scenario stays revoked'); END;
CREATE TRIGGER scenarios_no_delete BEFORE DELETE ON scenarios
BEGIN SELECT RAISE(ABORT, 'scenarios are revoked, not deleted'); END;

-- Console sessions: a principal signs in with an API token and gets a session cookie.
-- Only the SHA-256 of the session secret is kept. Sessions end (expire or sign out), and
-- are never deleted.
CREATE TABLE console_sessions (
    id_sha256  TEXT PRIMARY KEY,
    principal  TEXT NOT NULL REFERENCES principals(name),
    token_id   TEXT NOT NULL REFERENCES api_tokens(id),
    csrf       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    ended_at   TEXT
);
CREATE TRIGGER console_sessions_no_delete BEFORE DELETE ON console_sessions
BEGIN SELECT RAISE(ABORT, 'console sessions end, they are not deleted'); END;
"#,
    r#"
-- An admin role for bootstrap and identity administration: adds principals, issues and
-- revokes tokens, changes principal status; decides nothing else and reads no scenario.
-- The role's CHECK is rebuilt with its rows (and the triggers of migration 9).
PRAGMA defer_foreign_keys = ON;
CREATE TEMP TABLE principals_copy AS SELECT * FROM principals;
DROP TRIGGER principals_revocation_is_final;
DROP TRIGGER principals_no_delete;
DROP TABLE principals;
CREATE TABLE principals (
    name       TEXT PRIMARY KEY,
    role       TEXT NOT NULL CHECK (role IN ('provider', 'operator', 'developer', 'supervisor', 'admin')),
    created_at TEXT NOT NULL,
    status     TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'revoked'))
);
INSERT INTO principals (name, role, created_at, status)
    SELECT name, role, created_at, status FROM principals_copy;
DROP TABLE principals_copy;
CREATE TRIGGER principals_revocation_is_final BEFORE UPDATE OF status ON principals
WHEN OLD.status = 'revoked' AND NEW.status != 'revoked'
BEGIN SELECT RAISE(ABORT, 'a revoked principal stays revoked'); END;
CREATE TRIGGER principals_no_delete BEFORE DELETE ON principals
BEGIN SELECT RAISE(ABORT, 'principals are revoked, not deleted'); END;
"#,
    r#"
-- Threshold mode's differencing guard, per released cell (it replaces `query_units`, which
-- held one query's whole selection): for every cell a threshold answer released, each
-- unit's keyed 64-bit hash and the keyed hash of what it contributed to the cell, as sorted
-- little-endian (unit, contribution) pairs. Looked up by dataset and size across every
-- scenario and developer over the dataset; append-only, like the ledger. Selections
-- recorded before this migration carry no contributions and are not kept.
CREATE TABLE released_cells (
    id       INTEGER PRIMARY KEY,
    query_id TEXT NOT NULL REFERENCES queries(id),
    n_units  INTEGER NOT NULL CHECK (n_units >= 0),
    units    BLOB NOT NULL CHECK (length(units) = 16 * n_units)
);
CREATE TABLE released_cell_datasets (
    dataset TEXT NOT NULL,
    n_units INTEGER NOT NULL,
    cell_id INTEGER NOT NULL REFERENCES released_cells(id),
    PRIMARY KEY (dataset, n_units, cell_id)
) WITHOUT ROWID;
CREATE TRIGGER released_cells_no_update BEFORE UPDATE ON released_cells
BEGIN SELECT RAISE(ABORT, 'released cells are append-only'); END;
CREATE TRIGGER released_cells_no_delete BEFORE DELETE ON released_cells
BEGIN SELECT RAISE(ABORT, 'released cells are append-only'); END;
CREATE TRIGGER released_cell_datasets_no_update BEFORE UPDATE ON released_cell_datasets
BEGIN SELECT RAISE(ABORT, 'released cells are append-only'); END;
CREATE TRIGGER released_cell_datasets_no_delete BEFORE DELETE ON released_cell_datasets
BEGIN SELECT RAISE(ABORT, 'released cells are append-only'); END;
DROP TABLE query_units;
"#,
    r#"
-- A cell released again with the same units and contributions (a query asked again, the
-- same cell in another grouping) is one record: the guard compares a new cell with each
-- distinct earlier one, so a repeated dashboard does not grow what every later threshold
-- query over the dataset reads. Looked up by content.
CREATE INDEX released_cells_content ON released_cells (n_units, units);
"#,
    r#"
-- The language a principal reads Sandbox in (a BCP 47 tag, NULL for the client's, else the
-- domain's default). A domain that existed before languages keeps English as its default;
-- a new one is created with Simplified Chinese (`Domain::init`).
ALTER TABLE principals ADD COLUMN language TEXT CHECK (language IN ('zh-CN', 'en'));
INSERT INTO meta (key, value) SELECT 'default_language', 'en' WHERE EXISTS (SELECT 1 FROM principals);
"#,
    r#"
-- What each answered query's columns can be trusted to (noise scale, 95 % interval,
-- rounding unit, cells withheld), for the reviewer and the manifest.
ALTER TABLE queries ADD COLUMN accuracy_json TEXT;
"#,
    r#"
-- Review as a conversation: the outputs of a job are one review request; its reviewers
-- and its developer write to one thread, and a job resubmitted after changes were
-- requested continues it. Append-only, like the decisions.
CREATE TABLE review_comments (
    id          INTEGER PRIMARY KEY,
    job_id      TEXT NOT NULL REFERENCES jobs(id),
    author      TEXT NOT NULL,
    body        TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 4000),
    created_at  TEXT NOT NULL
);
CREATE INDEX review_comments_job ON review_comments (job_id, id);
CREATE TRIGGER review_comments_no_update BEFORE UPDATE ON review_comments
BEGIN SELECT RAISE(ABORT, 'review comments are append-only'); END;
CREATE TRIGGER review_comments_no_delete BEFORE DELETE ON review_comments
BEGIN SELECT RAISE(ABORT, 'review comments are append-only'); END;
-- A job submitted in answer to a request for changes on an earlier one (one answer each).
CREATE TABLE resubmissions (
    job_id     TEXT PRIMARY KEY REFERENCES jobs(id),
    resubmits  TEXT NOT NULL UNIQUE REFERENCES jobs(id)
);
CREATE TRIGGER resubmissions_no_update BEFORE UPDATE ON resubmissions
BEGIN SELECT RAISE(ABORT, 'resubmissions are append-only'); END;
CREATE TRIGGER resubmissions_no_delete BEFORE DELETE ON resubmissions
BEGIN SELECT RAISE(ABORT, 'resubmissions are append-only'); END;
"#,
    r#"
-- What ingest found in a version's source (NULLs, values outside bounds or categories,
-- units over the row bound) and what it did; a dataset registered by mistake is retired
-- (kept, recorded, refused for new scenarios), never deleted.
ALTER TABLE dataset_versions ADD COLUMN report_json TEXT;
ALTER TABLE datasets ADD COLUMN retired_at TEXT;
ALTER TABLE datasets ADD COLUMN retired_by TEXT;
ALTER TABLE datasets ADD COLUMN retire_reason TEXT;
"#,
    r#"
-- The dataset versions an answered query read, recorded with its charge: a product's
-- manifest names exactly the versions its numbers came from (SYS Art. 41).
CREATE TABLE query_datasets (
    query_id  TEXT NOT NULL REFERENCES queries(id),
    dataset   TEXT NOT NULL,
    version   INTEGER NOT NULL,
    PRIMARY KEY (query_id, dataset)
);
CREATE TRIGGER query_datasets_no_update BEFORE UPDATE ON query_datasets
BEGIN SELECT RAISE(ABORT, 'the versions a query read are append-only'); END;
CREATE TRIGGER query_datasets_no_delete BEFORE DELETE ON query_datasets
BEGIN SELECT RAISE(ABORT, 'the versions a query read are append-only'); END;
"#,
    r#"
-- Organisations (QQHR Art. 14, 23): the unified social credit code, the security officer
-- and the qualification's expiry (its developers' work stops when it passes), and an
-- optional cap on the ε its scenarios may spend together. Kept, never deleted.
CREATE TABLE organisations (
    credit_code      TEXT PRIMARY KEY CHECK (length(credit_code) = 18),
    name             TEXT NOT NULL CHECK (length(trim(name)) > 0),
    security_officer TEXT NOT NULL CHECK (length(trim(security_officer)) > 0),
    security_contact TEXT NOT NULL CHECK (length(trim(security_contact)) > 0),
    qualified_until  TEXT NOT NULL,
    epsilon_cap      REAL CHECK (epsilon_cap IS NULL OR epsilon_cap > 0),
    created_by       TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE TRIGGER organisations_no_delete BEFORE DELETE ON organisations
BEGIN SELECT RAISE(ABORT, 'organisations are kept in the register, not deleted'); END;
-- A data-user role (TJ-Sec Art. 9, 11), and each principal's organisation: the role's
-- CHECK is rebuilt with the rows (and the triggers of migration 9).
PRAGMA defer_foreign_keys = ON;
CREATE TEMP TABLE principals_copy AS SELECT * FROM principals;
DROP TRIGGER principals_revocation_is_final;
DROP TRIGGER principals_no_delete;
DROP TABLE principals;
CREATE TABLE principals (
    name         TEXT PRIMARY KEY,
    role         TEXT NOT NULL CHECK (role IN ('provider', 'operator', 'developer', 'supervisor', 'data_user', 'admin')),
    created_at   TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'revoked')),
    language     TEXT CHECK (language IN ('zh-CN', 'en')),
    organisation TEXT REFERENCES organisations(credit_code)
);
INSERT INTO principals (name, role, created_at, status, language)
    SELECT name, role, created_at, status, language FROM principals_copy;
DROP TABLE principals_copy;
CREATE TRIGGER principals_revocation_is_final BEFORE UPDATE OF status ON principals
WHEN OLD.status = 'revoked' AND NEW.status != 'revoked'
BEGIN SELECT RAISE(ABORT, 'a revoked principal stays revoked'); END;
CREATE TRIGGER principals_no_delete BEFORE DELETE ON principals
BEGIN SELECT RAISE(ABORT, 'principals are revoked, not deleted'); END;
-- Who may receive a product (TJ-Sec Art. 9, 11): its scope at release (the scenario's
-- recipients, written in the signed manifest) and grants made later. Append-only.
CREATE TABLE product_grants (
    product_id   TEXT NOT NULL REFERENCES products(id),
    grantee_kind TEXT NOT NULL CHECK (grantee_kind IN ('principal', 'organisation')),
    grantee      TEXT NOT NULL,
    at_release   INTEGER NOT NULL CHECK (at_release IN (0, 1)),
    granted_by   TEXT NOT NULL,
    granted_at   TEXT NOT NULL,
    PRIMARY KEY (product_id, grantee_kind, grantee)
);
CREATE TRIGGER product_grants_no_update BEFORE UPDATE ON product_grants
BEGIN SELECT RAISE(ABORT, 'grants are append-only'); END;
CREATE TRIGGER product_grants_no_delete BEFORE DELETE ON product_grants
BEGIN SELECT RAISE(ABORT, 'grants are append-only'); END;
-- A product's withdrawal (QQHR Art. 20, 23; SYS Art. 28): final, with its reason and the
-- hash of the signed notice written beside the manifest.
CREATE TABLE product_withdrawals (
    product_id    TEXT PRIMARY KEY REFERENCES products(id),
    reason        TEXT NOT NULL CHECK (length(trim(reason)) > 0),
    withdrawn_by  TEXT NOT NULL,
    withdrawn_at  TEXT NOT NULL,
    notice_sha256 TEXT NOT NULL
);
CREATE TRIGGER product_withdrawals_no_update BEFORE UPDATE ON product_withdrawals
BEGIN SELECT RAISE(ABORT, 'a withdrawal is final'); END;
CREATE TRIGGER product_withdrawals_no_delete BEFORE DELETE ON product_withdrawals
BEGIN SELECT RAISE(ABORT, 'a withdrawal is final'); END;
"#,
    r#"
-- Consent before use (JZ Art. 11; SYS Art. 43; TJ-Sec Art. 7): each provider's and the
-- supervisor's no-objection or objection (with reasons) on a scenario, and the applicant's
-- answers to objections. Append-only: the latest word of each party stands.
CREATE TABLE scenario_consents (
    id          INTEGER PRIMARY KEY,
    scenario_id INTEGER NOT NULL REFERENCES scenarios(id),
    party       TEXT NOT NULL CHECK (party IN ('provider', 'supervisor')),
    dataset     TEXT,
    actor       TEXT NOT NULL,
    decision    TEXT NOT NULL CHECK (decision IN ('no_objection', 'objection', 'answer')),
    text        TEXT,
    created_at  TEXT NOT NULL,
    CHECK ((party = 'provider') = (dataset IS NOT NULL)),
    CHECK (decision = 'no_objection' OR length(trim(text)) > 0)
);
CREATE INDEX scenario_consents_by_scenario ON scenario_consents (scenario_id, id);
CREATE TRIGGER scenario_consents_no_update BEFORE UPDATE ON scenario_consents
BEGIN SELECT RAISE(ABORT, 'consents are append-only'); END;
CREATE TRIGGER scenario_consents_no_delete BEFORE DELETE ON scenario_consents
BEGIN SELECT RAISE(ABORT, 'consents are append-only'); END;
-- Scenario types (QQHR Art. 15, "one type of scenario, one review"): established from a
-- scenario that went through the whole review; its datasets, columns and mode.
CREATE TABLE scenario_types (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL CHECK (length(trim(description)) > 0),
    scenario_id INTEGER NOT NULL REFERENCES scenarios(id),
    shape_json  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE TRIGGER scenario_types_no_update BEFORE UPDATE ON scenario_types
BEGIN SELECT RAISE(ABORT, 'a scenario type is kept as established'); END;
CREATE TRIGGER scenario_types_no_delete BEFORE DELETE ON scenario_types
BEGIN SELECT RAISE(ABORT, 'a scenario type is kept as established'); END;
"#,
    r#"
-- Objections against a dataset version, and its suspensions (its queries refused until it
-- is reinstated or replaced by a new version): QQHR Art. 20; JZ Art. 16; SYS Art. 28, 40.
CREATE TABLE dataset_objections (
    id         INTEGER PRIMARY KEY,
    dataset    TEXT NOT NULL,
    version    INTEGER NOT NULL,
    raised_by  TEXT NOT NULL,
    reason     TEXT NOT NULL CHECK (length(trim(reason)) > 0),
    created_at TEXT NOT NULL,
    FOREIGN KEY (dataset, version) REFERENCES dataset_versions (dataset, version)
);
CREATE TRIGGER dataset_objections_no_update BEFORE UPDATE ON dataset_objections
BEGIN SELECT RAISE(ABORT, 'objections are append-only'); END;
CREATE TRIGGER dataset_objections_no_delete BEFORE DELETE ON dataset_objections
BEGIN SELECT RAISE(ABORT, 'objections are append-only'); END;
CREATE TABLE dataset_suspensions (
    id           INTEGER PRIMARY KEY,
    dataset      TEXT NOT NULL,
    version      INTEGER NOT NULL,
    suspended_by TEXT NOT NULL,
    reason       TEXT NOT NULL CHECK (length(trim(reason)) > 0),
    suspended_at TEXT NOT NULL,
    lifted_by    TEXT,
    lift_reason  TEXT,
    lifted_at    TEXT,
    FOREIGN KEY (dataset, version) REFERENCES dataset_versions (dataset, version)
);
CREATE UNIQUE INDEX dataset_suspensions_one_in_force
    ON dataset_suspensions (dataset, version) WHERE lifted_at IS NULL;
CREATE TRIGGER dataset_suspensions_lifted_once BEFORE UPDATE ON dataset_suspensions
WHEN OLD.lifted_at IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'a lifted suspension stays as it was'); END;
CREATE TRIGGER dataset_suspensions_no_delete BEFORE DELETE ON dataset_suspensions
BEGIN SELECT RAISE(ABORT, 'suspensions are lifted, not deleted'); END;
"#,
    r#"
-- A dataset destroyed at the end of its authorization: its files are gone, the record of
-- what was destroyed (each version's files with their sizes and hashes), by whom, when and
-- why stays in the catalog for good.
CREATE TABLE dataset_destructions (
    dataset      TEXT PRIMARY KEY REFERENCES datasets(name),
    destroyed_by TEXT NOT NULL,
    reason       TEXT NOT NULL CHECK (length(trim(reason)) > 0),
    destroyed_at TEXT NOT NULL,
    record_json  TEXT NOT NULL
);
CREATE TRIGGER dataset_destructions_no_update BEFORE UPDATE ON dataset_destructions
BEGIN SELECT RAISE(ABORT, 'a destruction record is kept as written'); END;
CREATE TRIGGER dataset_destructions_no_delete BEFORE DELETE ON dataset_destructions
BEGIN SELECT RAISE(ABORT, 'a destruction record is kept as written'); END;
"#,
    r#"
-- A dataset its policy marks `not_shared` goes into a scenario only on a recorded decision
-- of its provider or the data bureau (SYS Art. 24), naming the scenario.
CREATE TABLE sharing_decisions (
    dataset    TEXT NOT NULL REFERENCES datasets(name),
    scenario   TEXT NOT NULL,
    decided_by TEXT NOT NULL,
    reason     TEXT NOT NULL CHECK (length(trim(reason)) > 0),
    decided_at TEXT NOT NULL,
    PRIMARY KEY (dataset, scenario)
);
CREATE TRIGGER sharing_decisions_no_update BEFORE UPDATE ON sharing_decisions
BEGIN SELECT RAISE(ABORT, 'sharing decisions are append-only'); END;
CREATE TRIGGER sharing_decisions_no_delete BEFORE DELETE ON sharing_decisions
BEGIN SELECT RAISE(ABORT, 'sharing decisions are append-only'); END;
"#,
    r#"
-- Incidents (QQHR Art. 20; JZ Art. 21; SYS Art. 61; TJ-Sec Art. 15): a grade, a
-- description, and a timeline of what was done under it (actions, the stops, suspensions
-- and withdrawals taken, reports and notices made: to whom, when). Entries are append-only.
CREATE TABLE incidents (
    id          INTEGER PRIMARY KEY,
    grade       TEXT NOT NULL CHECK (grade IN ('general', 'relatively_major', 'major', 'especially_major')),
    title       TEXT NOT NULL CHECK (length(trim(title)) > 0),
    description TEXT NOT NULL CHECK (length(trim(description)) > 0),
    opened_by   TEXT NOT NULL,
    opened_at   TEXT NOT NULL,
    closed_by   TEXT,
    closed_at   TEXT,
    summary     TEXT
);
CREATE TRIGGER incidents_closed_once BEFORE UPDATE ON incidents
WHEN OLD.closed_at IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'a closed incident stays as it was'); END;
CREATE TRIGGER incidents_no_delete BEFORE DELETE ON incidents
BEGIN SELECT RAISE(ABORT, 'incidents are kept'); END;
CREATE TABLE incident_entries (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    kind        TEXT NOT NULL CHECK (kind IN ('action', 'stop', 'suspension', 'withdrawal', 'report', 'notice')),
    reference   TEXT,
    recipient   TEXT,
    text        TEXT NOT NULL CHECK (length(trim(text)) > 0),
    by          TEXT NOT NULL,
    at          TEXT NOT NULL,
    CHECK (kind NOT IN ('report', 'notice') OR length(trim(recipient)) > 0)
);
CREATE TRIGGER incident_entries_no_update BEFORE UPDATE ON incident_entries
BEGIN SELECT RAISE(ABORT, 'an incident timeline is append-only'); END;
CREATE TRIGGER incident_entries_no_delete BEFORE DELETE ON incident_entries
BEGIN SELECT RAISE(ABORT, 'an incident timeline is append-only'); END;
-- Rectification orders (SYS Art. 31; QQHR Art. 23): from a supervisor to a developer, an
-- organisation or a scenario, with a deadline; answered and closed, or enforced (the
-- target suspended) when the deadline passes unanswered.
CREATE TABLE rectification_orders (
    id           INTEGER PRIMARY KEY,
    target_kind  TEXT NOT NULL CHECK (target_kind IN ('principal', 'organisation', 'scenario')),
    target       TEXT NOT NULL,
    requirement  TEXT NOT NULL CHECK (length(trim(requirement)) > 0),
    deadline     TEXT NOT NULL,
    issued_by    TEXT NOT NULL,
    issued_at    TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'answered', 'closed', 'enforced')),
    answer       TEXT,
    answered_by  TEXT,
    answered_at  TEXT,
    closed_by    TEXT,
    closed_at    TEXT,
    enforced_at  TEXT
);
CREATE TRIGGER rectification_orders_final BEFORE UPDATE ON rectification_orders
WHEN OLD.status IN ('closed', 'enforced')
BEGIN SELECT RAISE(ABORT, 'a closed or enforced order stays as it was'); END;
CREATE TRIGGER rectification_orders_no_delete BEFORE DELETE ON rectification_orders
BEGIN SELECT RAISE(ABORT, 'orders are kept'); END;
"#,
    // 25: the data key of each dataset version's file (Parquet modular encryption), wrapped
    // by the master key. One row per master key generation: a rotation adds the new key's
    // rows before its commit point and removes the old ones after; destroying a version
    // removes its rows, which leaves any copy of its file unreadable.
    r#"
CREATE TABLE data_keys (
    dataset     TEXT NOT NULL,
    version     INTEGER NOT NULL,
    file_id     TEXT NOT NULL,
    master_key  TEXT NOT NULL,
    wrapped     BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (dataset, version, master_key),
    FOREIGN KEY (dataset, version) REFERENCES dataset_versions (dataset, version)
);
CREATE TRIGGER data_keys_no_update BEFORE UPDATE ON data_keys
BEGIN SELECT RAISE(ABORT, 'a wrapped data key is replaced by a new row, not changed'); END;
"#,
    // 26: a version's rows in several files (`data.parquet`, `data-1.parquet`, ...).
    r#"
ALTER TABLE dataset_versions ADD COLUMN data_files INTEGER NOT NULL DEFAULT 1 CHECK (data_files >= 1);
"#,
    // 27: a released cell of many units is kept as a sketch of its (unit, contribution)
    // pairs (`SGF1`, the number of units, then cells of 32 bytes in three rows), whatever
    // its size; small cells keep their pairs. The CHECK is rebuilt with the rows, their ids
    // (which `released_cell_datasets` references), the triggers and the index.
    r#"
PRAGMA defer_foreign_keys = ON;
CREATE TEMP TABLE released_cells_copy AS SELECT * FROM released_cells;
DROP TRIGGER released_cells_no_update;
DROP TRIGGER released_cells_no_delete;
DROP INDEX released_cells_content;
DROP TABLE released_cells;
CREATE TABLE released_cells (
    id       INTEGER PRIMARY KEY,
    query_id TEXT NOT NULL REFERENCES queries(id),
    n_units  INTEGER NOT NULL CHECK (n_units >= 0),
    units    BLOB NOT NULL CHECK (
        length(units) = 16 * n_units
        OR (substr(units, 1, 4) = X'53474631' AND (length(units) - 12) % 96 = 0)
    )
);
INSERT INTO released_cells (id, query_id, n_units, units)
    SELECT id, query_id, n_units, units FROM released_cells_copy;
DROP TABLE released_cells_copy;
CREATE TRIGGER released_cells_no_update BEFORE UPDATE ON released_cells
BEGIN SELECT RAISE(ABORT, 'released cells are append-only'); END;
CREATE TRIGGER released_cells_no_delete BEFORE DELETE ON released_cells
BEGIN SELECT RAISE(ABORT, 'released cells are append-only'); END;
CREATE INDEX released_cells_content ON released_cells (n_units, units);
"#,
    // 28: a running job's lease, renewed by its runner: once it has lapsed, any server
    // fails the job (its runner is gone, on whatever host). The same in PostgreSQL.
    LEASE,
];

/// Migration 28, the same SQL in both stores.
const LEASE: &str = r#"
ALTER TABLE jobs ADD COLUMN lease_until TEXT;
CREATE INDEX jobs_running_lease ON jobs (status, lease_until);
"#;

/// Steps of a migration that SQL cannot do, run after its SQL in its transaction.
fn after(conn: &Conn, version: i64) -> Result<()> {
    match version {
        7 => crate::audit::build_tree(conn),
        _ => Ok(()),
    }
}

/// Applies every migration the database has not seen, in one transaction each.
pub(crate) fn migrate(conn: &Conn) -> Result<()> {
    let c = conn.sqlite()?;
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let version = i as i64 + 1;
        // Read the version inside a write transaction, so that two processes opening the
        // same store do not both apply a migration.
        let tx = rusqlite::Transaction::new_unchecked(c, rusqlite::TransactionBehavior::Immediate)?;
        let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version <= current {
            continue;
        }
        tx.execute_batch(sql)?;
        after(conn, version)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    Ok(())
}

/// The version PostgreSQL's schema starts at (its baseline, `postgres/0027_baseline.sql`).
pub(crate) const POSTGRES_BASELINE_VERSION: i64 = 27;

/// PostgreSQL's migrations after its baseline, numbered as SQLite's: entry `i` is version
/// `POSTGRES_BASELINE_VERSION + 1 + i`. Every migration added to [`MIGRATIONS`] adds its
/// PostgreSQL form here (a test holds the two lists to the same length).
pub(crate) const POSTGRES_MIGRATIONS: &[&str] = &[LEASE];

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    /// The SQLite connection under a test's store.
    fn c(conn: &Conn) -> &Connection {
        conn.sqlite().unwrap_or_else(|_| unreachable!())
    }

    fn wrap(c: Connection) -> Conn {
        let master = crate::master::LocalKey::from_bytes(sandbox_core::Suite::Standard, &[1u8; 32])
            .unwrap_or_else(|_| unreachable!());
        Conn {
            c: crate::Backend::Sqlite(c),
            layout: crate::Layout::new(""),
            keys: std::sync::Arc::new(
                crate::keys::Keyring::new(crate::Layout::new(""), std::sync::Arc::new(master))
                    .unwrap_or_else(|_| unreachable!()),
            ),
        }
    }

    /// A store as version `n` left it, with foreign keys enforced (as `store::connect` does).
    fn at_version(n: usize) -> Result<Conn> {
        let conn = Connection::open_in_memory()?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        for sql in &MIGRATIONS[..n] {
            conn.execute_batch(sql)?;
        }
        conn.pragma_update(None, "user_version", n as i64)?;
        Ok(wrap(conn))
    }

    fn foreign_key_violations(conn: &Conn) -> Result<i64> {
        Ok(
            c(conn).query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })?,
        )
    }

    #[test]
    fn every_version_has_its_migration() {
        assert_eq!(MIGRATIONS.len() as i64, SCHEMA_VERSION);
    }

    #[test]
    fn rebuilt_outputs_keep_their_rows_and_references() -> Result<()> {
        // Up to version 5, then an output with a review, then the rebuild.
        let conn = at_version(5)?;
        c(&conn).execute_batch(
            "INSERT INTO principals (name, role, created_at) VALUES ('op', 'operator', 'now');
             INSERT INTO scenarios (id, name, developer, spec_toml, status, epsilon_total, delta_total, created_at)
                 VALUES (1, 's', 'op', '', 'approved', 1, 0, 'now');
             INSERT INTO modules (sha256, size, stored_at) VALUES ('m', 1, 'now');
             INSERT INTO jobs (id, scenario_id, submitter, module_sha256, params_json, status, created_at)
                 VALUES ('j', 1, 'op', 'm', '{}', 'succeeded', 'now');
             INSERT INTO outputs (id, job_id, name, kind, file_name, sha256, bytes, status, created_at)
                 VALUES ('o', 'j', 'n', 'text', 'n.md', 'h', 1, 'checked', 'now');
             INSERT INTO reviews (output_id, reviewer, tier, decision, created_at)
                 VALUES ('o', 'op', 'operator', 'approve', 'now');",
        )?;
        migrate(&conn)?;
        let n: i64 =
            c(&conn).query_row("SELECT COUNT(*) FROM outputs WHERE id = 'o'", [], |r| {
                r.get(0)
            })?;
        assert_eq!(n, 1);
        let parent: String = c(&conn).query_row(
            "SELECT \"table\" FROM pragma_foreign_key_list('reviews') WHERE \"from\" = 'output_id'",
            [],
            |r| r.get(0),
        )?;
        assert_eq!(parent, "outputs");
        assert_eq!(foreign_key_violations(&conn)?, 0);
        c(&conn).execute(
            "UPDATE outputs SET kind = 'chart', status = 'changes_requested' WHERE id = 'o'",
            [],
        )?;
        // Migration 8 rebuilt the reviews with their rows, for requests for changes.
        let reviews: i64 = c(&conn).query_row(
            "SELECT COUNT(*) FROM reviews WHERE output_id = 'o' AND decision = 'approve'",
            [],
            |r| r.get(0),
        )?;
        assert_eq!(reviews, 1);
        c(&conn).execute(
            "INSERT INTO reviews (output_id, reviewer, tier, decision, reason, created_at)
             VALUES ('o', 'op', 'operator', 'request_changes', 'why', 'now')",
            [],
        )?;
        Ok(())
    }

    #[test]
    fn audit_tree_is_built_over_the_events_already_stored() -> Result<()> {
        use crate::audit::{self, Event, GENESIS, merkle};
        use sha2::{Digest, Sha256};

        let conn = Connection::open_in_memory()?;
        for sql in &MIGRATIONS[..6] {
            conn.execute_batch(sql)?;
        }
        conn.pragma_update(None, "user_version", 6)?;
        let conn = wrap(conn);
        // Five events as version 6 wrote them: the hash chain and the head, no tree.
        let mut prev = GENESIS.to_string();
        let mut leaves = Vec::new();
        for seq in 1..=5 {
            let mut e = Event {
                seq,
                ts: format!("2026-01-0{seq}T00:00:00.000000Z"),
                actor: "ops-li".into(),
                action: "principal.added".into(),
                subject: format!("principal:p{seq}"),
                details: serde_json::json!({"role": "developer", "n": seq}),
                prev_hash: prev.clone(),
                hash: String::new(),
            };
            let body = e.canonical_bytes()?;
            let mut h = Sha256::new();
            h.update(prev.as_bytes());
            h.update(b"\n");
            h.update(&body);
            e.hash = hex::encode(h.finalize());
            c(&conn).execute(
                "INSERT INTO audit_events (seq, ts, actor, action, subject, details, prev_hash, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                rusqlite::params![
                    e.seq,
                    e.ts,
                    e.actor,
                    e.action,
                    e.subject,
                    e.details.to_string(),
                    e.prev_hash,
                    e.hash
                ],
            )?;
            leaves.push(merkle::leaf_hash(sandbox_core::Suite::Standard, &body));
            prev = e.hash;
        }
        c(&conn).execute(
            "INSERT INTO meta (key, value) VALUES ('audit_head', ?1)",
            [format!("5:{prev}")],
        )?;
        migrate(&conn)?;
        let nodes: i64 =
            c(&conn).query_row("SELECT COUNT(*) FROM audit_nodes", [], |r| r.get(0))?;
        assert_eq!(nodes, 8, "5 leaves, 2 + 1 inner nodes");
        let v = audit::verify(&conn)?;
        assert_eq!((v.events, v.head.as_str()), (5, prev.as_str()));
        assert_eq!(
            v.root,
            merkle::to_hex(&merkle::root(sandbox_core::Suite::Standard, &leaves))
        );
        assert_eq!(v.checkpoints, 0);
        // Appending goes on from the built tree.
        audit::append(
            &conn,
            "system",
            sandbox_core::audit::EventKind::AuditExported,
            &sandbox_core::audit::Subject::Audit,
            serde_json::json!({}),
        )?;
        assert_eq!(audit::verify(&conn)?.events, 6);
        // Retention: 3 years by default, never lower, never unset.
        assert_eq!(audit::retention_years(&conn)?, 3);
        for bad in [
            "UPDATE meta SET value = '2' WHERE key = 'audit_retention_years'",
            "UPDATE meta SET value = '3 years' WHERE key = 'audit_retention_years'",
            "DELETE FROM meta WHERE key = 'audit_retention_years'",
            "UPDATE audit_nodes SET hash = zeroblob(32) WHERE level = 0 AND idx = 0",
            "DELETE FROM audit_nodes WHERE level = 0 AND idx = 0",
        ] {
            assert!(c(&conn).execute(bad, []).is_err(), "{bad}");
        }
        c(&conn).execute(
            "UPDATE meta SET value = '10' WHERE key = 'audit_retention_years'",
            [],
        )?;
        assert_eq!(audit::retention_years(&conn)?, 10);
        Ok(())
    }

    #[test]
    fn principals_get_a_status_and_tokens_are_revoked_once() -> Result<()> {
        let conn = at_version(8)?;
        c(&conn).execute_batch(
            "INSERT INTO principals (name, role, created_at) VALUES ('ops-li', 'operator', 'now');
             INSERT INTO principals (name, role, created_at) VALUES ('dev-zhao', 'developer', 'now');",
        )?;
        migrate(&conn)?;
        // Principals stored before the migration are active.
        let active: i64 = c(&conn).query_row(
            "SELECT COUNT(*) FROM principals WHERE status = 'active'",
            [],
            |r| r.get(0),
        )?;
        assert_eq!(active, 2);
        c(&conn).execute(
            "UPDATE principals SET status = 'suspended' WHERE name = 'dev-zhao'",
            [],
        )?;
        c(&conn).execute(
            "UPDATE principals SET status = 'revoked' WHERE name = 'dev-zhao'",
            [],
        )?;
        c(&conn).execute(
            "INSERT INTO api_tokens (id, principal, hash, issued_by, created_at)
             VALUES ('t1', 'ops-li', '$argon2id$x', 'ops-li', 'now')",
            [],
        )?;
        for bad in [
            "UPDATE principals SET status = 'active' WHERE name = 'dev-zhao'",
            "UPDATE principals SET status = 'unknown' WHERE name = 'ops-li'",
            "DELETE FROM principals WHERE name = 'dev-zhao'",
            "INSERT INTO api_tokens (id, principal, hash, issued_by, created_at)
             VALUES ('t2', 'nobody', 'h', 'ops-li', 'now')",
            "UPDATE api_tokens SET hash = 'other' WHERE id = 't1'",
            "UPDATE api_tokens SET principal = 'dev-zhao' WHERE id = 't1'",
            "UPDATE api_tokens SET revoked_at = 'now' WHERE id = 't1'",
            "DELETE FROM api_tokens WHERE id = 't1'",
        ] {
            assert!(c(&conn).execute(bad, []).is_err(), "{bad}");
        }
        c(&conn).execute(
            "UPDATE api_tokens SET revoked_at = 'now', revoked_by = 'ops-li' WHERE id = 't1'",
            [],
        )?;
        // Revoked once: not again, not back.
        for bad in [
            "UPDATE api_tokens SET revoked_at = 'later', revoked_by = 'ops-li' WHERE id = 't1'",
            "UPDATE api_tokens SET revoked_at = NULL, revoked_by = NULL WHERE id = 't1'",
        ] {
            assert!(c(&conn).execute(bad, []).is_err(), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn rebuilt_jobs_keep_their_rows_queries_and_outputs() -> Result<()> {
        let conn = at_version(9)?;
        c(&conn).execute_batch(
            "INSERT INTO principals (name, role, created_at) VALUES ('dev', 'developer', 'now');
             INSERT INTO scenarios (id, name, developer, spec_toml, status, epsilon_total, delta_total, created_at)
                 VALUES (1, 's', 'dev', '', 'approved', 1, 0, 'now');
             INSERT INTO modules (sha256, size, stored_at) VALUES ('m', 1, 'now');
             INSERT INTO jobs (id, scenario_id, submitter, module_sha256, params_json, status, fuel_used, created_at, finished_at)
                 VALUES ('j', 1, 'dev', 'm', '{}', 'succeeded', 7, 't0', 't1');
             INSERT INTO queries (id, job_id, scenario_id, sql, status, created_at)
                 VALUES ('q', 'j', 1, 'SELECT 1', 'answered', 'now');
             INSERT INTO outputs (id, job_id, name, kind, file_name, sha256, bytes, status, created_at)
                 VALUES ('o', 'j', 'n', 'text', 'n.md', 'h', 1, 'checked', 'now');",
        )?;
        migrate(&conn)?;
        let (status, fuel, started, finished): (String, i64, String, String) = c(&conn).query_row(
            "SELECT status, fuel_used, started_at, finished_at FROM jobs WHERE id = 'j'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        assert_eq!(
            (status.as_str(), fuel, started.as_str(), finished.as_str()),
            ("succeeded", 7, "t0", "t1")
        );
        assert_eq!(foreign_key_violations(&conn)?, 0);
        for (table, column) in [("queries", "job_id"), ("outputs", "job_id")] {
            let parent: String = c(&conn).query_row(
                &format!(
                    "SELECT \"table\" FROM pragma_foreign_key_list('{table}') WHERE \"from\" = '{column}'"
                ),
                [],
                |r| r.get(0),
            )?;
            assert_eq!(parent, "jobs");
        }
        // The queue's states are allowed now; scenarios are revoked for good.
        c(&conn).execute(
            "INSERT INTO jobs (id, scenario_id, submitter, module_sha256, params_json, status, created_at)
             VALUES ('k', 1, 'dev', 'm', '{}', 'queued', 'now')",
            [],
        )?;
        c(&conn).execute("UPDATE jobs SET status = 'cancelled' WHERE id = 'k'", [])?;
        c(&conn).execute("UPDATE scenarios SET status = 'revoked' WHERE id = 1", [])?;
        assert!(
            c(&conn)
                .execute("UPDATE scenarios SET status = 'approved' WHERE id = 1", [])
                .is_err()
        );
        Ok(())
    }

    #[test]
    fn principals_rebuilt_for_the_admin_role_keep_rows_references_and_triggers() -> Result<()> {
        let conn = at_version(10)?;
        c(&conn).execute_batch(
            "INSERT INTO principals (name, role, created_at) VALUES ('ops', 'operator', 't');
             INSERT INTO principals (name, role, created_at, status) VALUES ('dev', 'developer', 't', 'revoked');
             INSERT INTO api_tokens (id, principal, hash, issued_by, created_at) VALUES ('t1', 'ops', 'h', 'ops', 't');
             INSERT INTO scenarios (id, name, developer, spec_toml, status, epsilon_total, delta_total, created_at)
                 VALUES (1, 's', 'dev', '', 'approved', 1, 0, 't');",
        )?;
        migrate(&conn)?;
        let rows: Vec<(String, String, String)> = c(&conn)
            .prepare("SELECT name, role, status FROM principals ORDER BY name")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<std::result::Result<_, _>>()?;
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0],
            ("dev".into(), "developer".into(), "revoked".into())
        );
        assert_eq!(foreign_key_violations(&conn)?, 0);
        c(&conn).execute(
            "INSERT INTO principals (name, role, created_at) VALUES ('root', 'admin', 't')",
            [],
        )?;
        assert!(
            c(&conn)
                .execute(
                    "UPDATE principals SET status = 'active' WHERE name = 'dev'",
                    []
                )
                .is_err()
        );
        assert!(
            c(&conn)
                .execute("DELETE FROM principals WHERE name = 'root'", [])
                .is_err()
        );
        Ok(())
    }

    #[test]
    fn principals_rebuilt_for_data_users_keep_languages_references_and_triggers() -> Result<()> {
        let conn = at_version(18)?;
        c(&conn).execute_batch(
            "INSERT INTO principals (name, role, created_at, language) VALUES ('ops', 'operator', 't', 'en');
             INSERT INTO principals (name, role, created_at, status) VALUES ('dev', 'developer', 't', 'revoked');
             INSERT INTO api_tokens (id, principal, hash, issued_by, created_at) VALUES ('t1', 'ops', 'h', 'ops', 't');",
        )?;
        migrate(&conn)?;
        let rows: Vec<(String, String, Option<String>)> = c(&conn)
            .prepare("SELECT name, status, language FROM principals ORDER BY name")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<std::result::Result<_, _>>()?;
        assert_eq!(
            rows,
            vec![
                ("dev".into(), "revoked".into(), None),
                ("ops".into(), "active".into(), Some("en".into()))
            ]
        );
        assert_eq!(foreign_key_violations(&conn)?, 0);
        c(&conn).execute(
            "INSERT INTO principals (name, role, created_at) VALUES ('user', 'data_user', 't')",
            [],
        )?;
        assert!(
            c(&conn)
                .execute(
                    "UPDATE principals SET status = 'active' WHERE name = 'dev'",
                    []
                )
                .is_err()
        );
        assert!(
            c(&conn)
                .execute("DELETE FROM principals WHERE name = 'user'", [])
                .is_err()
        );
        Ok(())
    }

    #[test]
    fn rebuilt_released_cells_keep_their_pairs_and_take_sketches() -> Result<()> {
        let conn = at_version(26)?;
        c(&conn).execute_batch(
            "INSERT INTO principals (name, role, created_at) VALUES ('dev', 'developer', 'now');
             INSERT INTO scenarios (id, name, developer, spec_toml, status, epsilon_total, delta_total, created_at)
                 VALUES (1, 's', 'dev', '', 'approved', 1, 0, 'now');
             INSERT INTO queries (id, scenario_id, sql, status, created_at)
                 VALUES ('q', 1, 'SELECT 1', 'answered', 'now');
             INSERT INTO released_cells (id, query_id, n_units, units)
                 VALUES (7, 'q', 1, X'0102030405060708090a0b0c0d0e0f10');
             INSERT INTO released_cell_datasets (dataset, n_units, cell_id) VALUES ('d', 1, 7);",
        )?;
        migrate(&conn)?;
        let (id, n): (i64, i64) = c(&conn).query_row(
            "SELECT c.id, c.n_units FROM released_cell_datasets d JOIN released_cells c ON c.id = d.cell_id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        assert_eq!((id, n), (7, 1));
        assert_eq!(foreign_key_violations(&conn)?, 0);
        let sketch = [b"SGF1".as_slice(), &[0u8; 8 + 96 * 64]].concat();
        c(&conn).execute(
            "INSERT INTO released_cells (query_id, n_units, units) VALUES ('q', 300, ?1)",
            [&sketch],
        )?;
        for (n, bad) in [
            (2, vec![0u8; 16]),
            (300, sketch[..sketch.len() - 32].to_vec()),
            (300, [b"XGF1".as_slice(), &sketch[4..]].concat()),
        ] {
            assert!(
                c(&conn).execute(
                    "INSERT INTO released_cells (query_id, n_units, units) VALUES ('q', ?1, ?2)",
                    rusqlite::params![n, bad],
                )
                .is_err()
            );
        }
        for bad in [
            "UPDATE released_cells SET n_units = 2 WHERE id = 7",
            "DELETE FROM released_cells WHERE id = 7",
        ] {
            assert!(c(&conn).execute(bad, []).is_err(), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn migrating_twice_changes_nothing() -> Result<()> {
        let conn = wrap(Connection::open_in_memory()?);
        migrate(&conn)?;
        migrate(&conn)?;
        let v: i64 = c(&conn).query_row("PRAGMA user_version", [], |r| r.get(0))?;
        assert_eq!(v, SCHEMA_VERSION);
        Ok(())
    }
}
