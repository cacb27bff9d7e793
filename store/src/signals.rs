//! Interruptions that reach other servers: a stop, a suspension or a cancel recorded by
//! one server is announced in its transaction ([`notify`], PostgreSQL's `NOTIFY`,
//! delivered when it commits), and every server follows the announcements
//! ([`Listener`]) to interrupt the jobs it runs. The tables stay the truth: a server that
//! missed one (its connection lost) still refuses the job's next query, and learns of a
//! cancel at its lease's next renewal. On SQLite, with one server, there is nothing to
//! announce.

use std::sync::mpsc;
use std::time::Duration;

use futures::StreamExt;

use crate::db::args;
use crate::metadata::Metadata;
use crate::{Conn, DomainError, Layout, Result};

/// The channel the announcements go on.
const CHANNEL: &str = "sandbox_interrupts";

/// Announces `payload` to every server when the caller's transaction commits (nothing on
/// SQLite, or when it rolls back).
pub fn notify(conn: &Conn, payload: &str) -> Result<()> {
    if conn.is_postgres() {
        conn.execute("SELECT pg_notify('sandbox_interrupts', ?1)", args![payload])?;
    }
    Ok(())
}

/// A connection that follows the announcements.
pub struct Listener {
    _client: tokio_postgres::Client,
    received: mpsc::Receiver<String>,
}

impl Listener {
    /// Follows the announcements of the store at `layout`; `None` when it is SQLite's.
    pub fn listen(layout: &Layout) -> Result<Option<Listener>> {
        let Metadata::Postgres { connection } = Metadata::of(layout)? else {
            return Ok(None);
        };
        let rt = crate::pg::runtime()?;
        let (send, received) = mpsc::channel();
        let connected = futures::executor::block_on(rt.spawn(async move {
            let (client, mut connection) =
                tokio_postgres::connect(&connection, tokio_postgres::NoTls).await?;
            // This connection's messages, notifications among them, read by a task of
            // the store's runtime until the client is dropped or the server goes.
            tokio::spawn(async move {
                let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                while let Some(Ok(message)) = messages.next().await {
                    if let tokio_postgres::AsyncMessage::Notification(n) = message
                        && send.send(n.payload().to_owned()).is_err()
                    {
                        break;
                    }
                }
            });
            client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
            Ok::<_, tokio_postgres::Error>(client)
        }))
        .map_err(|e| DomainError::Internal(format!("following announcements: {e}")))?;
        let client = connected.map_err(crate::DbError::from)?;
        Ok(Some(Listener {
            _client: client,
            received,
        }))
    }

    /// The next announcement, waiting at most `timeout`: `Ok(None)` when none came, an
    /// error when the connection is gone (listen again).
    pub fn next(&self, timeout: Duration) -> Result<Option<String>> {
        match self.received.recv_timeout(timeout) {
            Ok(payload) => Ok(Some(payload)),
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(DomainError::Internal(
                "the connection following announcements is gone".into(),
            )
            .into()),
        }
    }
}
