//! Where a domain's metadata store is: the embedded SQLite file (`sandbox.db`, the
//! default), or a PostgreSQL database several Sandbox servers share, named in
//! `<data-dir>/metadata.toml`:
//!
//! ```toml
//! backend = "postgres"
//! connection = "host=/run/postgresql user=sandbox_app dbname=sandbox"
//! ```
//!
//! The connection is the one the servers use: a role that owns nothing, so that it can
//! neither switch off the append-only triggers nor truncate a table (a connection as the
//! schema's owner, or as a superuser, is refused when the store opens). Migrations run as
//! the owner, whose connection is given to `sandbox init` and `sandbox migrate` and never
//! written down.

use std::fs;

use serde::{Deserialize, Serialize};

use crate::{DomainError as Error, Layout, Result};

/// File name of the record, in the data directory.
pub const FILE: &str = "metadata.toml";

/// Where the metadata store is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Metadata {
    /// `sandbox.db` in the data directory.
    #[default]
    Sqlite,
    /// A PostgreSQL database.
    Postgres {
        /// What the servers connect with (a libpq connection string or a
        /// `postgresql://` URL), as a role that owns nothing.
        connection: String,
    },
}

/// Where a new domain's metadata store is to be made.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Create {
    /// `sandbox.db` in the data directory (the default).
    #[default]
    Sqlite,
    /// An empty PostgreSQL database.
    Postgres {
        /// The schema owner's connection: the schema is made over it, and it is not
        /// recorded.
        owner: String,
        /// What the servers connect with: a role that owns nothing (recorded).
        serving: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    backend: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connection: Option<String>,
}

impl Metadata {
    /// What the data directory at `layout` records (SQLite when it records nothing).
    pub fn of(layout: &Layout) -> Result<Metadata> {
        let path = layout.root().join(FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Metadata::Sqlite),
            Err(e) => return Err(e.into()),
        };
        let bad = |why: String| -> crate::Error {
            Error::Invalid(format!("{}: {why}", path.display())).into()
        };
        let file: File = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        match (file.backend.as_str(), file.connection) {
            ("sqlite", None) => Ok(Metadata::Sqlite),
            ("postgres", Some(connection)) if !connection.trim().is_empty() => {
                Ok(Metadata::Postgres { connection })
            }
            _ => Err(bad(
                "`backend` is `sqlite`, or `postgres` with a `connection`".into(),
            )),
        }
    }

    /// Records where the metadata store is (nothing for SQLite, the default). The file is
    /// readable by its owner only: a connection string may carry a password.
    pub fn record(&self, layout: &Layout) -> Result<()> {
        let Metadata::Postgres { connection } = self else {
            return Ok(());
        };
        let text = toml::to_string(&File {
            backend: "postgres".into(),
            connection: Some(connection.clone()),
        })
        .map_err(|e| Error::Internal(format!("writing {FILE}: {e}")))?;
        let text = format!(
            "# Where this domain's metadata store is, and how its servers connect to it.\n{text}"
        );
        Ok(crate::master::write_new(
            &layout.root().join(FILE),
            text.as_bytes(),
        )?)
    }

    /// Whether a store is there: the SQLite file, or the record of a PostgreSQL one.
    pub fn exists(layout: &Layout) -> bool {
        layout.db().exists() || layout.root().join(FILE).exists()
    }
}

/// The PostgreSQL connection string in `text`, checked for what a store needs: it parses,
/// and it names a database.
pub fn check_connection(text: &str) -> Result<()> {
    let config: tokio_postgres::Config = text.parse().map_err(|e| {
        Error::Invalid(format!(
            "`{}` is not a PostgreSQL connection string: {e}",
            redact(text)
        ))
    })?;
    if config.get_dbname().is_none() {
        return Err(Error::Invalid(format!(
            "the PostgreSQL connection `{}` names no database (dbname=...)",
            redact(text)
        ))
        .into());
    }
    Ok(())
}

/// A connection string without its password, for messages.
pub fn redact(text: &str) -> String {
    if let Some((scheme, rest)) = text.split_once("://") {
        // postgresql://user:password@host/db
        if let Some((credentials, host)) = rest.split_once('@')
            && let Some((user, _)) = credentials.split_once(':')
        {
            return format!("{scheme}://{user}:***@{host}");
        }
        return text.to_owned();
    }
    text.split_whitespace()
        .map(|kv| match kv.split_once('=') {
            Some(("password", _)) => "password=***".to_owned(),
            _ => kv.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_and_bad_ones_say_why() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let layout = Layout::new(dir.path());
        assert_eq!(Metadata::of(&layout)?, Metadata::Sqlite);
        let pg = Metadata::Postgres {
            connection: "host=/tmp/pg user=sandbox_app dbname=sandbox".into(),
        };
        pg.record(&layout)?;
        assert!(Metadata::exists(&layout));
        assert_eq!(Metadata::of(&layout)?, pg);
        fs::write(dir.path().join(FILE), "backend = \"postgres\"\n")?;
        let err = Metadata::of(&layout)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("with a `connection`"), "{err}");
        fs::write(
            dir.path().join(FILE),
            "backend = \"mysql\"\nconnection = \"x\"\n",
        )?;
        assert!(Metadata::of(&layout).is_err());
        Ok(())
    }

    #[test]
    fn connection_strings_are_checked_and_passwords_kept_out_of_messages() {
        assert!(check_connection("host=/tmp user=a dbname=sandbox").is_ok());
        assert!(check_connection("postgresql://a@localhost/sandbox").is_ok());
        let err = check_connection("host=/tmp user=a password=hunter2")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("names no database") && !err.contains("hunter2"),
            "{err}"
        );
        assert_eq!(
            redact("postgresql://a:hunter2@localhost/sandbox"),
            "postgresql://a:***@localhost/sandbox"
        );
        assert!(check_connection("host='unterminated").is_err());
    }
}
