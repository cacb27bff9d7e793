//! Migrations of the metadata store.

use rusqlite::Connection;

use crate::Result;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 6;

const MIGRATIONS: &[&str] = &[
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
];

/// Applies every migration the database has not seen, in one transaction each.
pub fn migrate(conn: &Connection) -> Result<()> {
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let version = i as i64 + 1;
        // Read the version inside a write transaction, so that two processes opening the
        // same store do not both apply a migration.
        let tx =
            rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
        let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version <= current {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_version_has_its_migration() {
        assert_eq!(MIGRATIONS.len() as i64, SCHEMA_VERSION);
    }

    #[test]
    fn rebuilt_outputs_keep_their_rows_and_references() -> Result<()> {
        let conn = Connection::open_in_memory()?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Up to version 5, then an output with a review, then the rebuild.
        for sql in &MIGRATIONS[..5] {
            conn.execute_batch(sql)?;
        }
        conn.pragma_update(None, "user_version", 5)?;
        conn.execute_batch(
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
        let n: i64 = conn.query_row("SELECT COUNT(*) FROM outputs WHERE id = 'o'", [], |r| {
            r.get(0)
        })?;
        assert_eq!(n, 1);
        let parent: String = conn.query_row(
            "SELECT \"table\" FROM pragma_foreign_key_list('reviews') WHERE \"from\" = 'output_id'",
            [],
            |r| r.get(0),
        )?;
        assert_eq!(parent, "outputs");
        let broken: i64 =
            conn.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })?;
        assert_eq!(broken, 0);
        conn.execute(
            "UPDATE outputs SET kind = 'chart', status = 'changes_requested' WHERE id = 'o'",
            [],
        )?;
        Ok(())
    }

    #[test]
    fn migrating_twice_changes_nothing() -> Result<()> {
        let conn = Connection::open_in_memory()?;
        migrate(&conn)?;
        migrate(&conn)?;
        let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        assert_eq!(v, SCHEMA_VERSION);
        Ok(())
    }
}
