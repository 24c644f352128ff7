//! The built-in value of every setting (a file and the environment override them).
use super::*;

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "postgres://postgres@127.0.0.1:5432/referral".into(),
            max_connections: 16,
            acquire_timeout_ms: 5_000,
            ping_idle_after_ms: 1_000,
        }
    }
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: "nats://127.0.0.1:4222".into(),
            prefix: String::new(),
            duplicate_window_secs: 600,
            max_acks_in_flight: 1_024,
            stream_max_bytes: 1024 * 1024 * 1024,
            num_replicas: 1,
            pull_heartbeat_ms: 1_000,
            pull_expires_ms: 10_000,
            pull_reopen_timeout_ms: 2_000,
            pull_reopen_backoff_first_ms: 50,
            pull_reopen_backoff_max_ms: 2_000,
            connect_timeout_ms: 5_000,
        }
    }
}

impl Default for ClickhouseConfig {
    fn default() -> Self {
        ClickhouseConfig {
            enabled: false,
            url: "http://127.0.0.1:18123".into(),
            database: "referral".into(),
            batch_max_rows: 5_000,
            batch_max_bytes: 8 * 1024 * 1024,
            batch_max_wait_ms: 1_000,
            retry_backoff_first_ms: 100,
            retry_backoff_max_ms: 5_000,
            ack_wait_secs: 30,
            request_timeout_ms: 30_000,
            analytics_cache_ms: 10_000,
            analytics_cache_max_entries: 256,
            analytics_max_concurrent_queries: 4,
            partitions_per_insert: 50,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            api_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            ingest_addr: SocketAddr::from(([127, 0, 0, 1], 8081)),
            body_limit_bytes: 256 * 1024,
            request_timeout_ms: 10_000,
            header_read_timeout_ms: 10_000,
            max_connections: 60_000,
            max_connections_per_address: 1_024,
            reserved_files: 1_024,
            write_stall_timeout_ms: 30_000,
            max_header_bytes: 64 * 1024,
            max_batch_purchases: 500,
            rate_limit_per_sec: 500,
            rate_limit_burst: 1_000,
            auth_failures_per_sec: 5,
            auth_failures_burst: 20,
            max_concurrent_requests: 4_096,
            max_in_flight_per_caller: 256,
            graph_writes_per_caller: 2,
            max_in_flight_per_user: 16,
            readiness_cache_ms: 1_000,
            readiness_probe_timeout_ms: 2_000,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwt_secret: DEV_JWT_SECRET.into(),
            token_ttl_secs: 24 * 3600,
            max_token_lifetime_secs: 24 * 3600,
            issuer: "referral-earnings".into(),
            pseudonym_key: DEV_PSEUDONYM_KEY.into(),
            allow_dev_secrets: false,
            shop_key_cache_size: 10_000,
            shop_key_cache_ttl_ms: 5_000,
            revocations_refresh_ms: 5_000,
            metrics_token: String::new(),
        }
    }
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        ProcessorConfig {
            workers: 2,
            batch_max_messages: 1_000,
            batch_max_bytes: 1024 * 1024,
            // A batch is what has arrived by the time a worker is free: under load the
            // messages pile up while the other batches are applied, so waiting for more
            // only delays an idle purchase (5 ms here cost ~6 ms of the idle purchase →
            // SSE p50 and no measurable throughput; docs/performance.md, stop 37).
            batch_max_wait_ms: 0,
            max_ack_pending: 10_000,
            // A dead processor's batch is redelivered after this; a live one's slow batch
            // is kept in progress (consumer.rs), so it can be short.
            ack_wait_secs: 10,
            retry_backoff_first_ms: 50,
            retry_backoff_max_ms: 5_000,
            isolate_after_failures: 3,
            attempts_alone: 3,
            graph_sync_page: 10_000,
            entries_per_message: 1_000,
            order_lock_buckets: 256,
            crash_after_commit_every: None,
        }
    }
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            keepalive_secs: 15,
            client_buffer: 16,
            max_connections_per_user: 8,
            max_connections_total: 50_000,
            replay_page: 500,
            reopen_delay_ms: 500,
            stall_check_ms: 2_000,
            ws_max_message_bytes: 4 * 1024,
        }
    }
}

impl Default for ReportsConfig {
    fn default() -> Self {
        ReportsConfig {
            default_page_size: 50,
            max_page_size: 500,
            default_tree_depth: 3,
            max_tree_depth: 8,
            max_tree_nodes: 5_000,
            known_users_cache: 100_000,
            max_concurrent_reads: 4,
            max_concurrent_reads_per_user: 2,
            history_max_scan: 10_000,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            filter: "info".into(),
            json: false,
        }
    }
}
