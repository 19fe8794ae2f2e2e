//! An embedded DynamoDB: dynoxide serving the DynamoDB and Streams APIs on a
//! loopback port of this process, its data in a SQLite file or in memory.

use std::net::SocketAddr;
use std::path::Path;

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
