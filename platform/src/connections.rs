//! A bound on the connections one listener holds open. Past it a new connection is
//! answered 503 at once and closed, so however many sockets clients open, the process
//! keeps files for Postgres, NATS and its own work (the header timeout bounds how long a
//! half-sent request holds a socket, not how many are open at once).
use crate::metrics::metrics;
use crate::problem::Problem;
use axum::http::StatusCode;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Clone)]
pub struct ConnectionCap {
    permits: Arc<Semaphore>,
    limit: usize,
    refusal: Arc<[u8]>,
}

/// One open connection's place under the cap; dropping it frees the place.
pub struct Held {
    _permit: OwnedSemaphorePermit,
}

impl Drop for Held {
    fn drop(&mut self) {
        metrics().http_connections.dec();
    }
}

impl ConnectionCap {
    /// `configured` connections, or fewer where the open-file limit (raised to its hard
    /// limit first) would not leave `reserved_files` free beside them.
    pub fn new(configured: usize, reserved_files: usize) -> Self {
        let files = usize::try_from(open_file_limit()).unwrap_or(usize::MAX);
        let room = files.saturating_sub(reserved_files).max(1);
        let limit = configured.min(room);
        if limit < configured {
            tracing::warn!(
                configured,
                limit,
                open_files = files,
                "http.max_connections lowered to fit the open-file limit"
            );
        }
        ConnectionCap {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            refusal: refusal().into(),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Answers a connection past the bound and closes it. One non-blocking write straight
    /// on the socket (tokio's `try_write` would not even try before its reactor has seen
    /// the new socket writable): the answer fits an empty send buffer, and a client that
    /// cannot take it lost nothing it asked for. Best effort: a client whose request is
    /// already in our receive buffer may see a reset instead.
    pub fn refuse(&self, io: TcpStream) {
        metrics()
            .http_connections_refused
            .with_label_values::<&str>(&[])
            .inc();
        if let Ok(mut socket) = io.into_std() {
            let _ = std::io::Write::write(&mut socket, &self.refusal);
        }
    }

    /// A place for one more connection, or `None` at the bound.
    pub fn admit(&self) -> Option<Held> {
        let permit = self.permits.clone().try_acquire_owned().ok()?;
        metrics().http_connections.inc();
        Some(Held { _permit: permit })
    }
}

/// The whole HTTP answer to a connection past the bound, written without reading its
/// request: a problem (`too_many_connections`) like every other refusal.
fn refusal() -> Vec<u8> {
    let mut problem = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "too_many_connections",
        "the server holds as many connections as it may; retry shortly",
    );
    problem.retry_after_secs = Some(1);
    let body = serde_json::to_string(&problem).unwrap_or_default();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// This process's open-file limit, its soft limit raised to the hard one first (as many
/// runtimes do at start): connections are files.
fn open_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-file limit");
            rlimit::Resource::NOFILE
                .get()
                .map_or(u64::MAX, |(soft, _)| soft)
        }
    }
}

#[cfg(test)]
#[path = "connections_test.rs"]
mod tests;
