//! Table `meta`: the domain's settings and the audit log's recorded head and checkpoint.

use crate::db::{OptionalExt, args};

use crate::{Conn, Result};

/// A setting's value.
pub fn get(conn: &Conn, key: &str) -> Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", args![key], |r| {
        r.get(0)
    })
    .optional()
}

/// Sets a setting.
pub fn set(conn: &Conn, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        args![key, value],
    )?;
    Ok(())
}
