//! Requests being served at once, bounded for the listener and for each caller.
//!
//! Past the listener's bound a request is answered 503 `overloaded` at once: a queue for
//! places would hold requests for as long as the requests ahead of them take, which no
//! deadline bounds. Past a caller's own bound (a shop, a user, an address without a
//! credential) it is answered 429 `too_many_in_flight`: one credential holding requests
//! open, say by sending their bodies a byte a second, then takes only its own places,
//! never every shop's.
use crate::auth::Principal;
use crate::config::HttpConfig;
use crate::metrics::metrics;
use crate::problem::Problem;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Clone)]
pub struct InFlight {
    places: Arc<Semaphore>,
    /// Requests in flight by caller; a caller is removed when its last one ends, so the
    /// map holds at most as many callers as the listener has places.
    callers: Arc<Mutex<HashMap<String, usize>>>,
    per_caller: usize,
    per_user: usize,
}

/// A request's place: given back when dropped (when its response is ready).
pub struct Ticket {
    _place: OwnedSemaphorePermit,
    caller: String,
    callers: Arc<Mutex<HashMap<String, usize>>>,
}

impl InFlight {
    pub fn new(config: &HttpConfig) -> Self {
        InFlight {
            places: Arc::new(Semaphore::new(config.max_concurrent_requests)),
            callers: Arc::default(),
            per_caller: config.max_in_flight_per_caller,
            per_user: config.max_in_flight_per_user,
        }
    }

    /// A place for one more request of `caller` (bounded by `limit`), or the refusal.
    pub fn enter(&self, caller: String, limit: usize) -> Result<Ticket, Problem> {
        let Ok(place) = self.places.clone().try_acquire_owned() else {
            return Err(refusal("overloaded"));
        };
        let mut callers = lock(&self.callers);
        let count = callers.entry(caller.clone()).or_insert(0);
        if *count >= limit {
            return Err(refusal("too_many_in_flight"));
        }
        *count += 1;
        Ok(Ticket {
            _place: place,
            caller,
            callers: self.callers.clone(),
        })
    }

    /// Callers with a request in flight: none are left behind.
    #[cfg(test)]
    fn callers(&self) -> usize {
        lock(&self.callers).len()
    }

    fn caller_of(&self, request: &Request) -> (String, usize) {
        match request.extensions().get::<Principal>() {
            Some(p @ Principal::User(_)) => (p.key(), self.per_user),
            Some(p) => (p.key(), self.per_caller),
            None => {
                let address = crate::gate::client_address(request);
                (format!("addr:{address}"), self.per_caller)
            }
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut callers = lock(&self.callers);
        if let Some(count) = callers.get_mut(&self.caller) {
            *count -= 1;
            if *count == 0 {
                callers.remove(&self.caller);
            }
        }
    }
}

/// The map is only counted in; a panic elsewhere while it was held leaves it whole.
fn lock(callers: &Mutex<HashMap<String, usize>>) -> MutexGuard<'_, HashMap<String, usize>> {
    callers
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn refusal(code: &'static str) -> Problem {
    metrics().rate_limited.with_label_values(&[code]).inc();
    let (status, detail) = match code {
        "overloaded" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is serving as many requests as it takes at once; retry shortly",
        ),
        _ => (
            StatusCode::TOO_MANY_REQUESTS,
            "this caller has as many requests in flight as it may; wait for one to finish",
        ),
    };
    let mut problem = Problem::new(status, code, detail);
    problem.retry_after_secs = Some(1);
    problem
}

/// Middleware (inside the gate, which names the caller): hold a place while the request
/// is served.
pub async fn admit(State(in_flight): State<InFlight>, request: Request, next: Next) -> Response {
    let (caller, limit) = in_flight.caller_of(&request);
    match in_flight.enter(caller, limit) {
        Ok(ticket) => {
            let response = next.run(request).await;
            drop(ticket);
            response
        }
        Err(problem) => problem.into_response(),
    }
}

#[cfg(test)]
#[path = "in_flight_test.rs"]
mod tests;
