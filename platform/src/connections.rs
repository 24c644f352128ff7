//! A bound on the connections one listener holds open. Past it a new connection is
//! answered 503 at once and closed, so however many sockets clients open, the process
//! keeps files for Postgres, NATS and its own work (the header timeout bounds how long a
//! half-sent request holds a socket, not how many are open at once). A second bound per
//! client address keeps one host from taking every place: past it that host's new
//! connection is answered 429 and closed, while other hosts still get in.
use crate::metrics::metrics;
use crate::problem::Problem;
use axum::http::StatusCode;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Clone)]
pub struct ConnectionCap {
    permits: Arc<Semaphore>,
    limit: usize,
    /// Connections one client address may hold; 0: no bound per address.
    per_address: usize,
    /// Open connections per client host (`gate::host`, as the rate limits count them); a
    /// host leaves the map with its last one, so the map never holds more entries than
    /// there are open connections.
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    refusal: Arc<[u8]>,
    address_refusal: Arc<[u8]>,
}

/// Why a connection was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The listener holds `max_connections`.
    Full,
    /// The client's address holds `max_connections_per_address`.
    Address,
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Refusal::Full => "full",
            Refusal::Address => "address",
        }
    }
}

/// One open connection's place under the cap; dropping it frees the place.
pub struct Held {
    _permit: OwnedSemaphorePermit,
    address: Option<AddressCount>,
}

impl Drop for Held {
    fn drop(&mut self) {
        metrics().http_connections.dec();
        release(self.address.take());
    }
}

/// An address's share of the open connections: the map and the address's key.
type AddressCount = (Arc<Mutex<HashMap<IpAddr, usize>>>, IpAddr);

impl ConnectionCap {
    /// `configured` connections, or fewer where the open-file limit (raised to its hard
    /// limit first) would not leave `reserved_files` free beside them.
    pub fn new(configured: usize, reserved_files: usize, per_address: usize) -> Self {
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
            per_address,
            open: Arc::new(Mutex::new(HashMap::new())),
            refusal: refusal(Refusal::Full).into(),
            address_refusal: refusal(Refusal::Address).into(),
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
    pub fn refuse(&self, io: TcpStream, why: Refusal) {
        metrics()
            .http_connections_refused
            .with_label_values(&[why.label()])
            .inc();
        let answer = match why {
            Refusal::Full => &self.refusal,
            Refusal::Address => &self.address_refusal,
        };
        if let Ok(mut socket) = io.into_std() {
            let _ = std::io::Write::write(&mut socket, answer);
        }
    }

    /// A place for one more connection from `client`, or why there is none. The address
    /// is checked first, so a host at its own bound takes no place from anyone else.
    pub fn admit(&self, client: IpAddr) -> Result<Held, Refusal> {
        let address = if self.per_address == 0 {
            None
        } else {
            let key = crate::gate::host(client);
            let mut open = self
                .open
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let count = open.entry(key).or_insert(0);
            if *count >= self.per_address {
                return Err(Refusal::Address);
            }
            *count += 1;
            Some((self.open.clone(), key))
        };
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            release(address);
            return Err(Refusal::Full);
        };
        metrics().http_connections.inc();
        Ok(Held {
            _permit: permit,
            address,
        })
    }
}

/// Gives back an address's count taken for a connection that then found no place.
fn release(address: Option<AddressCount>) {
    let Some((open, key)) = address else { return };
    let mut open = open
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(count) = open.get_mut(&key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            open.remove(&key);
        }
    }
}

/// The whole HTTP answer to a connection past a bound, written without reading its
/// request: a problem like every other refusal, `too_many_connections` (503, the
/// listener is full) or `too_many_connections_from_address` (429, this host is).
fn refusal(why: Refusal) -> Vec<u8> {
    let (status, code, detail) = match why {
        Refusal::Full => (
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_connections",
            "the server holds as many connections as it may; retry shortly",
        ),
        Refusal::Address => (
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_connections_from_address",
            "this address holds as many connections as one address may; close one first",
        ),
    };
    let mut problem = Problem::new(status, code, detail);
    problem.retry_after_secs = Some(1);
    let body = serde_json::to_string(&problem).unwrap_or_default();
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/problem+json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
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
