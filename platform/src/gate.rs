//! The front door every route shares: who is calling, and whether they may call now.
//!
//! A request with a credential is authenticated first and limited by who it is (one
//! bucket per shop, user or admin however the header is spelled); the `Principal` is
//! left in the request's extensions, so handlers do not authenticate again. A request
//! without one is limited by its client address. A failed authentication costs the client
//! address a token of its own, smaller bucket; once that is empty the address is answered
//! 429 without its credentials being looked up, so made-up shop keys cannot each cost a
//! Postgres query. An address's unknown credentials are looked up one at a time (its
//! turn, `LOOKUP_TURNS`), and the failure is counted before the turn passes on: checking
//! the bucket and counting after the lookup let every request already waiting pass the
//! check at once, so a thousand concurrent made-up keys cost a thousand lookups. A shop key
//! Postgres confirmed before is looked up again without a turn and whatever the bucket
//! says, so made-up keys sent from a shared address (a proxy) cannot lock real shops
//! out. Answers to a request with a credential are `Cache-Control: no-store`.
use crate::auth::{bearer, Authenticator, Principal};
use crate::config::HttpConfig;
use crate::metrics::metrics;
use crate::problem::Problem;
use crate::ratelimit::RateLimiter;
use crate::turns::KeyedTurns;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Addresses' lookup turns: enough that two addresses seldom share one.
const LOOKUP_TURNS: usize = 256;

#[derive(Clone)]
pub struct Gate {
    auth: Authenticator,
    callers: RateLimiter,
    failures: RateLimiter,
    lookups: Arc<KeyedTurns>,
}

impl Gate {
    pub fn new(config: &HttpConfig, auth: Authenticator) -> Self {
        Gate {
            auth,
            callers: RateLimiter::new(config.rate_limit_per_sec, config.rate_limit_burst),
            failures: RateLimiter::new(config.auth_failures_per_sec, config.auth_failures_burst),
            lookups: Arc::new(KeyedTurns::new(LOOKUP_TURNS)),
        }
    }

    /// The caller's principal, or the answer to send instead (401, or 429 for an address
    /// that failed too often).
    async fn identify(&self, peer: &str, credential: &str) -> Result<Principal, Response> {
        if let Some(result) = self.auth.authenticate_offline(credential) {
            return result.map_err(|problem| self.refuse(peer, problem));
        }
        if self.auth.confirmed_before(credential) {
            let result = self.auth.authenticate(credential).await;
            return result.map_err(|problem| self.refuse(peer, problem));
        }
        let _turn = {
            let _waiting = crate::metrics::Waiting::start(&metrics().auth_lookups_waiting);
            self.lookups.take(peer).await
        };
        // While this waited, the key may have been confirmed by another request, or the
        // address may have used up its failures.
        let result = match self.auth.authenticate_offline(credential) {
            Some(result) => result,
            None => {
                self.failures
                    .peek(peer.as_bytes())
                    .map_err(|wait| rate_limited(wait, "auth_failures"))?;
                self.auth.authenticate(credential).await
            }
        };
        // Counted in the turn, so the next lookup of this address sees it.
        result.map_err(|problem| self.refuse(peer, problem))
    }

    /// A refused credential costs the address a failure; an outage (500) does not.
    fn refuse(&self, peer: &str, problem: Problem) -> Response {
        if problem.status != StatusCode::UNAUTHORIZED.as_u16() {
            return problem.into_response();
        }
        match self.failures.check(peer.as_bytes()) {
            Ok(()) => problem.into_response(),
            Err(wait) => rate_limited(wait, "auth_failures"),
        }
    }
}

/// Middleware: authenticate, rate limit by caller, mark authenticated answers no-store.
pub async fn admit(State(gate): State<Gate>, mut request: Request, next: Next) -> Response {
    let peer = client_address(&request);
    let credential = match bearer(request.headers()) {
        None => None,
        Some(Err(problem)) => return no_store(gate.refuse(&peer, problem)),
        Some(Ok(credential)) => Some(credential.to_owned()),
    };
    let (key, kind) = match credential {
        None => (format!("addr:{peer}"), "anonymous"),
        Some(credential) => match gate.identify(&peer, &credential).await {
            Ok(principal) => {
                request.extensions_mut().insert(principal);
                (principal.key(), principal.kind())
            }
            Err(response) => return no_store(response),
        },
    };
    let authenticated = kind != "anonymous";
    if let Err(wait) = gate.callers.check(key.as_bytes()) {
        let response = rate_limited(wait, kind);
        return if authenticated {
            no_store(response)
        } else {
            response
        };
    }
    let response = next.run(request).await;
    if authenticated {
        no_store(response)
    } else {
        response
    }
}

/// The peer's bucket, whatever its port; "unknown" without one.
pub(crate) fn client_address(request: &Request) -> String {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |c| address_bucket(c.0.ip()))
}

/// One bucket per client host (`host`).
pub(crate) fn address_bucket(ip: IpAddr) -> String {
    match host(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(prefix) => format!("{prefix}/64"),
    }
}

/// The host a client address stands for, as every per-address bound counts it: an IPv4
/// address (an IPv4-mapped IPv6 address is its IPv4 address), or an IPv6 /64: a single
/// host is routinely given a whole /64, so counting per IPv6 address would let one client
/// use 2^64 of them.
pub(crate) fn host(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

fn rate_limited(wait_secs: u64, kind: &'static str) -> Response {
    metrics().rate_limited.with_label_values(&[kind]).inc();
    let detail = if kind == "auth_failures" {
        "too many failed authentications from this address; wait before retrying"
    } else {
        "too many requests for this caller; wait Retry-After seconds"
    };
    let mut problem = Problem::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", detail);
    problem.retry_after_secs = Some(wait_secs);
    problem.into_response()
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
#[path = "gate_test.rs"]
mod tests;
