//! The demo's HTTP client: a shop's requests to a running instance, retried when the
//! server says "later" (429 with `Retry-After`, or a 503 meant to be retried), so the demo
//! keeps within the server's rate limit on any machine instead of failing.
use anyhow::Context;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

pub struct ShopClient {
    http: reqwest::Client,
    base: String,
    key: String,
    /// Answers of "later" tolerated for one request before giving up.
    max_retries: u32,
}

/// Where to look when the instance cannot be reached.
fn unreachable(base: &str) -> String {
    format!("cannot reach {base}: is `referral all` running there? (scripts/run.sh starts it)")
}

impl ShopClient {
    pub fn new(base: &str, key: &str, max_retries: u32) -> Self {
        ShopClient {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
            max_retries,
        }
    }

    /// Fails with a hint unless the instance answers `/healthz`.
    pub async fn ensure_reachable(&self) -> anyhow::Result<()> {
        let url = format!("{}/healthz", self.base);
        let response = self
            .http
            .get(&url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .with_context(|| unreachable(&self.base))?;
        anyhow::ensure!(
            response.status().is_success(),
            "{url} answered {}: {}",
            response.status(),
            unreachable(&self.base)
        );
        Ok(())
    }

    /// POSTs `body` as the shop; waits and resends while the server answers "later".
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut retries = 0;
        loop {
            let response = self
                .http
                .post(&url)
                .bearer_auth(&self.key)
                .json(body)
                .send()
                .await
                .with_context(|| unreachable(&self.base))?;
            let status = response.status();
            let wait = retry_after(&response);
            let value: Value = response.json().await.unwrap_or(Value::Null);
            let later = status == StatusCode::TOO_MANY_REQUESTS
                || (status == StatusCode::SERVICE_UNAVAILABLE && wait.is_some());
            if !later {
                anyhow::ensure!(
                    status.is_success(),
                    "{path} answered {}",
                    describe(status, &value)
                );
                return Ok(value);
            }
            retries += 1;
            anyhow::ensure!(
                retries <= self.max_retries,
                "{path} still answered {} after {} retries: the server is overloaded; \
                 try again later or with fewer --concurrency",
                describe(status, &value),
                self.max_retries
            );
            tokio::time::sleep(Duration::from_secs(wait.unwrap_or(1).clamp(1, 60))).await;
        }
    }
}

/// `Retry-After` in seconds, if the server sent one.
fn retry_after(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// "429 rate_limited: too many requests…" from a problem body (or the status alone).
pub fn describe(status: StatusCode, body: &Value) -> String {
    match (body["code"].as_str(), body["detail"].as_str()) {
        (Some(code), Some(detail)) => format!("{} {code}: {detail}", status.as_u16()),
        _ => status.to_string(),
    }
}
