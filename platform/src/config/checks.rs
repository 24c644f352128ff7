//! Checks on a loaded config: bounds that make no sense, and secrets a service must not
//! start with.
use super::{AuthConfig, Config, NatsConfig, DEV_JWT_SECRET, DEV_PSEUDONYM_KEY, MIN_SECRET_BYTES};
use std::net::SocketAddr;

/// hyper's smallest read buffer (it panics on less).
const MIN_HEADER_BYTES: usize = 8_192;

fn header_floor(max_header_bytes: usize) -> anyhow::Result<()> {
    anyhow::ensure!(
        max_header_bytes >= MIN_HEADER_BYTES,
        "http.max_header_bytes must be at least {MIN_HEADER_BYTES}"
    );
    Ok(())
}

impl Config {
    /// Bounds that make no sense are refused at load, with the setting's name.
    pub fn validate(&self) -> anyhow::Result<()> {
        let h = &self.http;
        for (name, value) in [
            ("http.rate_limit_per_sec", u64::from(h.rate_limit_per_sec)),
            ("http.rate_limit_burst", u64::from(h.rate_limit_burst)),
            (
                "http.auth_failures_per_sec",
                u64::from(h.auth_failures_per_sec),
            ),
            ("http.auth_failures_burst", u64::from(h.auth_failures_burst)),
            (
                "http.readiness_probe_timeout_ms",
                h.readiness_probe_timeout_ms,
            ),
            ("http.body_limit_bytes", h.body_limit_bytes as u64),
            ("http.request_timeout_ms", h.request_timeout_ms),
            ("http.header_read_timeout_ms", h.header_read_timeout_ms),
            ("http.max_connections", h.max_connections as u64),
            ("http.write_stall_timeout_ms", h.write_stall_timeout_ms),
            ("http.max_batch_purchases", h.max_batch_purchases as u64),
            (
                "http.max_concurrent_requests",
                h.max_concurrent_requests as u64,
            ),
            (
                "http.max_in_flight_per_caller",
                h.max_in_flight_per_caller as u64,
            ),
            (
                "http.graph_writes_per_caller",
                h.graph_writes_per_caller as u64,
            ),
            (
                "http.max_in_flight_per_user",
                h.max_in_flight_per_user as u64,
            ),
            (
                "database.max_connections",
                u64::from(self.database.max_connections),
            ),
            ("auth.token_ttl_secs", self.auth.token_ttl_secs),
            (
                "auth.revocations_refresh_ms",
                self.auth.revocations_refresh_ms,
            ),
            (
                "auth.shop_key_cache_size",
                self.auth.shop_key_cache_size as u64,
            ),
        ] {
            anyhow::ensure!(value > 0, "{name} must be at least 1");
        }
        header_floor(h.max_header_bytes)?;
        self.nats.validate()?;
        self.processor.validate()?;
        self.live.validate()?;
        self.reports.validate()?;
        self.ingest.validate()?;
        self.clickhouse.validate()?;
        anyhow::ensure!(
            self.auth.token_ttl_secs <= self.auth.max_token_lifetime_secs,
            "auth.token_ttl_secs ({}) exceeds auth.max_token_lifetime_secs ({})",
            self.auth.token_ttl_secs,
            self.auth.max_token_lifetime_secs
        );
        Ok(())
    }

    /// A shop's share of PURCHASES: `ingest.backlog_bytes_per_shop`, or the whole stream
    /// where that is less (a share larger than the stream bounds nothing more).
    pub fn shop_share_bytes(&self) -> u64 {
        match u64::try_from(self.nats.stream_max_bytes) {
            Ok(stream) if stream > 0 => self.ingest.backlog_bytes_per_shop.min(stream),
            _ => self.ingest.backlog_bytes_per_shop,
        }
    }
}

impl super::ClickhouseConfig {
    fn validate(&self) -> anyhow::Result<()> {
        for (name, value) in [
            (
                "clickhouse.retry_backoff_first_ms",
                self.retry_backoff_first_ms,
            ),
            ("clickhouse.ack_wait_secs", self.ack_wait_secs),
            ("clickhouse.request_timeout_ms", self.request_timeout_ms),
            ("clickhouse.batch_max_rows", self.batch_max_rows as u64),
            ("clickhouse.batch_max_bytes", self.batch_max_bytes as u64),
            (
                "clickhouse.analytics_cache_max_entries",
                self.analytics_cache_max_entries as u64,
            ),
            (
                "clickhouse.analytics_max_concurrent_queries",
                self.analytics_max_concurrent_queries as u64,
            ),
            (
                "clickhouse.partitions_per_insert",
                self.partitions_per_insert as u64,
            ),
        ] {
            anyhow::ensure!(value > 0, "{name} must be at least 1");
        }
        anyhow::ensure!(
            crate::clickhouse::is_identifier(&self.database),
            "clickhouse.database must be letters, digits and '_' (got {:?})",
            self.database
        );
        Ok(())
    }
}

/// Most advisory locks one batch may hold (see `processor.order_lock_buckets`).
pub const MAX_ORDER_LOCK_BUCKETS: u32 = 4_096;

impl super::ProcessorConfig {
    fn validate(&self) -> anyhow::Result<()> {
        for (name, value) in [
            ("processor.workers", self.workers),
            ("processor.batch_max_messages", self.batch_max_messages),
            ("processor.batch_max_bytes", self.batch_max_bytes),
            ("processor.entries_per_message", self.entries_per_message),
            (
                "processor.retry_backoff_first_ms",
                self.retry_backoff_first_ms as usize,
            ),
            (
                "processor.isolate_after_failures",
                self.isolate_after_failures as usize,
            ),
            ("processor.attempts_alone", self.attempts_alone as usize),
        ] {
            anyhow::ensure!(value > 0, "{name} must be at least 1");
        }
        // The batch in progress is re-announced every third of it (consumer.rs).
        anyhow::ensure!(
            self.ack_wait_secs > 0,
            "processor.ack_wait_secs must be at least 1"
        );
        anyhow::ensure!(
            (1..=MAX_ORDER_LOCK_BUCKETS).contains(&self.order_lock_buckets),
            "processor.order_lock_buckets must be 1 to {MAX_ORDER_LOCK_BUCKETS}, not {}",
            self.order_lock_buckets
        );
        Ok(())
    }
}

impl NatsConfig {
    fn validate(&self) -> anyhow::Result<()> {
        crate::nats::server_addrs(&self.url)?;
        anyhow::ensure!(
            (1..=MAX_REPLICAS).contains(&self.num_replicas),
            "nats.num_replicas must be 1 to {MAX_REPLICAS} (JetStream's limit), not {}",
            self.num_replicas
        );
        anyhow::ensure!(
            self.pull_heartbeat_ms > 0 && self.pull_heartbeat_ms * 2 <= self.pull_expires_ms,
            "nats.pull_heartbeat_ms ({}) must be at least 1 and at most half of \
             nats.pull_expires_ms ({})",
            self.pull_heartbeat_ms,
            self.pull_expires_ms
        );
        for (name, value) in [
            ("nats.pull_reopen_timeout_ms", self.pull_reopen_timeout_ms),
            (
                "nats.pull_reopen_backoff_first_ms",
                self.pull_reopen_backoff_first_ms,
            ),
            ("nats.connect_timeout_ms", self.connect_timeout_ms),
            ("nats.max_acks_in_flight", self.max_acks_in_flight as u64),
            (
                "nats.pull_reopen_backoff_max_ms",
                self.pull_reopen_backoff_max_ms,
            ),
        ] {
            anyhow::ensure!(value > 0, "{name} must be at least 1");
        }
        Ok(())
    }
}

impl super::LiveConfig {
    fn validate(&self) -> anyhow::Result<()> {
        for (name, value) in [
            ("live.keepalive_secs", self.keepalive_secs),
            ("live.client_buffer", self.client_buffer as u64),
            (
                "live.max_connections_per_user",
                self.max_connections_per_user as u64,
            ),
            (
                "live.max_connections_total",
                self.max_connections_total as u64,
            ),
            ("live.replay_page", self.replay_page as u64),
            ("live.reopen_delay_ms", self.reopen_delay_ms),
            ("live.stall_check_ms", self.stall_check_ms),
            (
                "live.ws_max_message_bytes",
                self.ws_max_message_bytes as u64,
            ),
        ] {
            anyhow::ensure!(value > 0, "{name} must be at least 1");
        }
        Ok(())
    }
}

impl super::ReportsConfig {
    fn validate(&self) -> anyhow::Result<()> {
        for (name, value) in [
            ("reports.default_page_size", self.default_page_size),
            ("reports.max_page_size", self.max_page_size),
            ("reports.max_tree_nodes", self.max_tree_nodes),
            (
                "reports.max_concurrent_reads",
                self.max_concurrent_reads as i64,
            ),
            ("reports.history_max_scan", self.history_max_scan),
        ] {
            anyhow::ensure!(value > 0, "{name} must be at least 1");
        }
        anyhow::ensure!(
            self.max_concurrent_reads_per_user > 0,
            "reports.max_concurrent_reads_per_user must be at least 1"
        );
        anyhow::ensure!(
            self.default_page_size <= self.max_page_size,
            "reports.default_page_size ({}) exceeds reports.max_page_size ({})",
            self.default_page_size,
            self.max_page_size
        );
        anyhow::ensure!(
            (1..=self.max_tree_depth).contains(&self.default_tree_depth),
            "reports.default_tree_depth ({}) must be 1 to reports.max_tree_depth ({})",
            self.default_tree_depth,
            self.max_tree_depth
        );
        Ok(())
    }
}

impl super::IngestConfig {
    fn validate(&self) -> anyhow::Result<()> {
        for (name, value) in [
            ("ingest.batch_items_in_flight", self.batch_items_in_flight),
            ("ingest.group_commit_queue", self.group_commit_queue),
            (
                "ingest.group_commit_max_purchases",
                self.group_commit_max_purchases,
            ),
            ("ingest.group_commit_in_flight", self.group_commit_in_flight),
            ("ingest.reserve_max_group", self.reserve_max_group),
            ("ingest.reserve_in_flight", self.reserve_in_flight),
            ("ingest.refund_turns", self.refund_turns),
            (
                "ingest.backlog_bytes_per_shop",
                usize::try_from(self.backlog_bytes_per_shop).unwrap_or(usize::MAX),
            ),
            (
                "ingest.backlog_refresh_ms",
                usize::try_from(self.backlog_refresh_ms).unwrap_or(usize::MAX),
            ),
            (
                "ingest.purchases_per_sec_per_shop",
                self.purchases_per_sec_per_shop as usize,
            ),
            (
                "ingest.purchases_burst_per_shop",
                self.purchases_burst_per_shop as usize,
            ),
        ] {
            anyhow::ensure!(value > 0, "{name} must be at least 1");
        }
        Ok(())
    }
}

/// JetStream keeps at most five copies of a stream.
pub const MAX_REPLICAS: usize = 5;

/// A secret of fewer distinct bytes than this is a pattern (`aaaa…`, `abab…`), not a
/// random value; `openssl rand -hex 32` has about 16.
pub const MIN_DISTINCT_SECRET_BYTES: usize = 8;

/// Built in, short, or a pattern: anyone could guess it.
fn guessable(value: &str, built_in: &str) -> bool {
    let distinct: std::collections::HashSet<u8> = value.bytes().collect();
    value == built_in
        || value.len() < MIN_SECRET_BYTES
        || distinct.len() < MIN_DISTINCT_SECRET_BYTES
}

impl AuthConfig {
    /// Refuses to serve with a built-in, short or patterned JWT secret or pseudonym key,
    /// unless the development flag is set, this is a debug build and every address in
    /// `listening` is loopback. Tools that only sign tokens pass no addresses. The error is
    /// one line that says what to set.
    pub fn check_secrets(&self, listening: &[SocketAddr]) -> anyhow::Result<()> {
        self.check_secrets_of_build(listening, cfg!(debug_assertions))
    }

    /// `check_secrets` for a debug build or not: a release build never accepts the
    /// built-in secrets (they are public), whatever the flag says, so a production binary
    /// behind a proxy on the same host cannot be started with them.
    pub(crate) fn check_secrets_of_build(
        &self,
        listening: &[SocketAddr],
        debug_build: bool,
    ) -> anyhow::Result<()> {
        // Optional, so there is no default to refuse; a weak one is refused even in
        // development, where nothing needs it.
        if !self.metrics_token.is_empty() && guessable(&self.metrics_token, "") {
            anyhow::bail!(
                "REFERRAL_AUTH__METRICS_TOKEN is shorter than {MIN_SECRET_BYTES} bytes or a \
                 pattern: set it to a random value, e.g. `openssl rand -hex 32`, or leave it \
                 empty so only admin tokens read /metrics"
            );
        }
        let weak = [
            (
                "REFERRAL_AUTH__JWT_SECRET",
                &self.jwt_secret,
                DEV_JWT_SECRET,
            ),
            (
                "REFERRAL_AUTH__PSEUDONYM_KEY",
                &self.pseudonym_key,
                DEV_PSEUDONYM_KEY,
            ),
        ]
        .into_iter()
        .find(|(_, value, dev)| guessable(value, dev));
        let Some((name, _, _)) = weak else {
            return Ok(());
        };
        let public = listening.iter().find(|a| !a.ip().is_loopback());
        match (self.allow_dev_secrets, public) {
            (true, _) if !debug_build => anyhow::bail!(
                "{name} is a development default, shorter than {MIN_SECRET_BYTES} bytes or a \
                 pattern, and a release build accepts development secrets nowhere: set {name} \
                 to a random value, e.g. `openssl rand -hex 32` (scripts/run.sh generates one)"
            ),
            (true, None) => {
                // Only a service says so: a tool's stdout may be a token someone captures.
                if !listening.is_empty() {
                    tracing::warn!(setting = name, "development secrets in use (loopback only)");
                }
                Ok(())
            }
            (true, Some(addr)) => anyhow::bail!(
                "{name} is a development default, shorter than {MIN_SECRET_BYTES} bytes or a \
                 pattern, and development secrets are allowed on loopback only (this listens on {addr}): \
                 set {name} to a random value, e.g. `openssl rand -hex 32`"
            ),
            (false, _) => anyhow::bail!(
                "{name} is a development default, shorter than {MIN_SECRET_BYTES} bytes or a \
                 pattern: set it to a random value, e.g. `openssl rand -hex 32` (scripts/run.sh \
                 generates one), or for local development on 127.0.0.1 only set \
                 REFERRAL_AUTH__ALLOW_DEV_SECRETS=true"
            ),
        }
    }
}

#[cfg(test)]
#[path = "checks_test.rs"]
mod tests;
