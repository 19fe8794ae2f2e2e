//! An embedded DynamoDB: dynoxide serving the DynamoDB and Streams APIs on a
//! loopback port of this process, its data in a SQLite file or in memory.
//!
//! A data file gets two indexes dynoxide 3.2 lacks on its stream records, and
//! loses the records older than the 24 hours DynamoDB Streams keeps: without
//! the indexes each write's next stream sequence number
//! (`MAX(CAST(sequence_number AS INTEGER))` over the table's records) and each
//! `GetRecords` and `DescribeStream` scan the whole stream history, so every
//! write cost more than the one before and the file grew without bound. The
//! indexes are on the very expressions those queries use, so SQLite answers
//! them from the index; nothing of dynoxide's behaviour changes.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Why the embedded server could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// The database could not be opened.
    #[error("cannot open the dynoxide database {path}: {reason}")]
    Open {
        /// The data file, or `:memory:`.
        path: String,
        /// What dynoxide said.
        reason: String,
    },
    /// No loopback port could be bound.
    #[error("cannot bind a loopback port: {0}")]
    Bind(#[from] std::io::Error),
    /// The server failed while serving.
    #[error("the dynoxide server failed: {0}")]
    Serve(String),
    /// The stream history could not be indexed or trimmed.
    #[error("cannot index the stream records of {path}: {source}")]
    Streams {
        /// The data file.
        path: String,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
}

/// How long stream records stay, as in DynamoDB Streams.
const STREAM_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// The indexes of the stream records, by the expressions dynoxide's queries use.
const STREAM_INDEXES: &str = "
    CREATE INDEX IF NOT EXISTS outbox_stream_sequence
        ON _stream_records (table_name, CAST(sequence_number AS INTEGER));
    CREATE INDEX IF NOT EXISTS outbox_stream_shard_sequence
        ON _stream_records (table_name, shard_id, CAST(sequence_number AS INTEGER));";

/// Indexes the stream records of the data file at `path` and drops those past
/// [`STREAM_RETENTION`], through a connection of its own (dynoxide's is not
/// reachable); dynoxide has created the table by then.
fn tend_stream_records(path: &str) -> Result<(), rusqlite::Error> {
    let connection = rusqlite::Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(5))?;
    connection.execute_batch(STREAM_INDEXES)?;
    let cutoff = time::OffsetDateTime::now_utc().unix_timestamp()
        - i64::try_from(STREAM_RETENTION.as_secs()).unwrap_or(i64::MAX);
    connection.execute(
        "DELETE FROM _stream_records WHERE created_at < ?1",
        [cutoff],
    )?;
    Ok(())
}

/// A running embedded dynoxide server; stopped by [`EmbeddedDynamo::stop`] or on drop.
#[derive(Debug)]
pub struct EmbeddedDynamo {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), String>>>,
}

impl EmbeddedDynamo {
    /// Starts a server on a free loopback port with its data in `data_file`, or in
    /// memory when `None`. Must run inside a Tokio runtime.
    ///
    /// # Errors
    /// [`EmbeddedError::Open`] or [`EmbeddedError::Bind`].
    pub async fn start(data_file: Option<&Path>) -> Result<Self, EmbeddedError> {
        let path = data_file.map_or_else(|| ":memory:".to_owned(), |p| p.display().to_string());
        let database = match data_file {
            Some(_) => dynoxide::Database::new(&path),
            None => dynoxide::Database::memory(),
        }
        .map_err(|error| EmbeddedError::Open {
            path: path.clone(),
            reason: error.to_string(),
        })?;
        if data_file.is_some() {
            tend_stream_records(&path).map_err(|source| EmbeddedError::Streams {
                path: path.clone(),
                source,
            })?;
        }
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(dynoxide::server::serve_with_shutdown(
            listener,
            database,
            async {
                let _ = stopped.await;
            },
        ));
        tracing::debug!(%address, %path, "dynoxide serving");
        Ok(Self {
            address,
            stop: Some(stop),
            server: Some(server),
        })
    }

    /// The endpoint URL to give an SDK client.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Stops accepting, lets running requests finish and closes the database.
    ///
    /// # Errors
    /// [`EmbeddedError::Serve`] when the server had failed.
    pub async fn stop(mut self) -> Result<(), EmbeddedError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.server.take() {
            Some(server) => match server.await {
                Ok(result) => result.map_err(EmbeddedError::Serve),
                Err(error) => Err(EmbeddedError::Serve(error.to_string())),
            },
            None => Ok(()),
        }
    }
}

impl Drop for EmbeddedDynamo {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A panic is how these tests fail.

    use super::*;

    /// SQLite's plan for `sql`, one line per step.
    fn plan(connection: &rusqlite::Connection, sql: &str) -> String {
        let mut statement = connection
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let steps = statement
            .query_map([], |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        steps.join("\n")
    }

    /// Starts the embedded server on the data file at `path`, and stops it.
    async fn open_and_close(path: &Path) {
        EmbeddedDynamo::start(Some(path))
            .await
            .unwrap()
            .stop()
            .await
            .unwrap();
    }

    /// The queries dynoxide runs on every write, `GetRecords` and
    /// `DescribeStream` are answered from the indexes, not by scanning the
    /// stream history; records past 24 hours go at the next start, recent ones stay.
    #[tokio::test]
    async fn a_data_file_answers_stream_queries_by_index_and_keeps_24_hours() {
        let path = std::env::temp_dir().join(format!("outbox-streams-{}.db", uuid::Uuid::now_v7()));
        open_and_close(&path).await;
        let connection = rusqlite::Connection::open(&path).unwrap();
        for (sql, index) in [
            (
                "SELECT COALESCE(MAX(CAST(sequence_number AS INTEGER)), 0) + 1 FROM _stream_records WHERE table_name = 't'",
                "outbox_stream_sequence",
            ),
            (
                "SELECT event_name FROM _stream_records WHERE table_name = 't' AND shard_id = 's' AND CAST(sequence_number AS INTEGER) > 5 ORDER BY CAST(sequence_number AS INTEGER) ASC LIMIT 10",
                "outbox_stream_shard_sequence",
            ),
        ] {
            let plan = plan(&connection, sql);
            assert!(plan.contains(index), "{sql}\n{plan}");
            assert!(!plan.contains("SCAN _stream_records"), "{sql}\n{plan}");
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        for (sequence, created_at) in [(1, now - 2 * 24 * 3600), (2, now - 3600)] {
            connection
                .execute(
                    "INSERT INTO _stream_records (table_name, event_name, keys_json, sequence_number, shard_id, created_at) VALUES ('t', 'INSERT', '{}', ?1, 's', ?2)",
                    (sequence.to_string(), created_at),
                )
                .unwrap();
        }
        drop(connection);
        open_and_close(&path).await;
        let connection = rusqlite::Connection::open(&path).unwrap();
        let kept: Vec<String> = connection
            .prepare("SELECT sequence_number FROM _stream_records WHERE table_name = 't'")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            kept,
            ["2"],
            "the record of 2 days ago went, the hour-old one stayed"
        );
        drop(connection);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
