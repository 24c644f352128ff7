//! Program-wide analytics answers shared for `clickhouse.analytics_cache_ms`: such a query
//! reads the whole warehouse (top earners took 3.5 s at 10M entries on this machine), and
//! every admin asking the same question in that window gets the one answer, those asking
//! while it is computed waiting for it rather than starting their own. Keyed by the SQL,
//! which the route and its parsed range determine; failures are not kept. What is kept is
//! the response body: an answer of 10,000 shop-days is parsed and serialized once, not
//! once per request (that cost 7 ms of CPU a request and set the route's p99).
use axum::body::Bytes;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

pub struct SharedAnswers {
    window: Duration,
    max_entries: usize,
    answers: Mutex<HashMap<String, Asked>>,
}

/// One question: when it was first asked, and its answer once ClickHouse gave it.
struct Asked {
    at: Instant,
    answer: Arc<OnceCell<Bytes>>,
}

impl SharedAnswers {
    pub fn new(config: &platform::config::ClickhouseConfig) -> Self {
        SharedAnswers {
            window: Duration::from_millis(config.analytics_cache_ms),
            max_entries: config.analytics_cache_max_entries,
            answers: Mutex::new(HashMap::new()),
        }
    }

    /// The answer to `sql`: one asked less than the window ago, or `ask()`'s.
    pub async fn answer<F, Fut, E>(&self, sql: &str, ask: F) -> Result<Bytes, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
    {
        match self.slot(sql) {
            Some(slot) => slot.get_or_try_init(ask).await.cloned(),
            None => ask().await,
        }
    }

    /// The shared place of `sql`'s answer; `None` when nothing is shared (a window of 0,
    /// or as many questions kept as allowed).
    fn slot(&self, sql: &str) -> Option<Arc<OnceCell<Bytes>>> {
        if self.window.is_zero() {
            return None;
        }
        // A poisoned lock only means another request panicked while holding it; the map
        // is still whole (every change is one insert or retain).
        let mut answers = self.answers.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        answers.retain(|_, asked| now.duration_since(asked.at) < self.window);
        if let Some(asked) = answers.get(sql) {
            return Some(asked.answer.clone());
        }
        if answers.len() >= self.max_entries {
            return None;
        }
        let answer = Arc::new(OnceCell::new());
        let asked = Asked {
            at: now,
            answer: answer.clone(),
        };
        answers.insert(sql.to_owned(), asked);
        Some(answer)
    }
}

#[cfg(test)]
#[path = "shared_test.rs"]
mod tests;
