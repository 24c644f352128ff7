use super::*;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// 32 bytes of 16 distinct values, as `openssl rand -hex 16` gives.
fn random_looking(seed: u8) -> String {
    (0..MIN_SECRET_BYTES as u8)
        .map(|i| {
            char::from(b"0123456789abcdef"[usize::from(i.wrapping_mul(7).wrapping_add(seed) % 16)])
        })
        .collect()
}

fn strong() -> AuthConfig {
    AuthConfig {
        jwt_secret: random_looking(1),
        pseudonym_key: random_looking(2),
        ..AuthConfig::default()
    }
}

#[test]
fn built_in_or_short_secrets_are_refused_with_what_to_set() {
    let defaults = AuthConfig::default();
    let e = defaults
        .check_secrets(&[addr("127.0.0.1:8080")])
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("REFERRAL_AUTH__JWT_SECRET"), "{msg}");
    assert!(msg.contains("ALLOW_DEV_SECRETS"), "{msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");

    let short_key = AuthConfig {
        pseudonym_key: "b".repeat(MIN_SECRET_BYTES - 1),
        ..strong()
    };
    let msg = short_key.check_secrets(&[]).unwrap_err().to_string();
    assert!(msg.contains("REFERRAL_AUTH__PSEUDONYM_KEY"), "{msg}");

    assert!(strong().check_secrets(&[addr("0.0.0.0:8080")]).is_ok());
}

#[test]
fn a_metrics_token_is_optional_but_never_short() {
    let dev = AuthConfig {
        allow_dev_secrets: true,
        metrics_token: "m".repeat(MIN_SECRET_BYTES - 1),
        ..AuthConfig::default()
    };
    let msg = dev.check_secrets(&[]).unwrap_err().to_string();
    assert!(msg.contains("REFERRAL_AUTH__METRICS_TOKEN"), "{msg}");
    let long = AuthConfig {
        metrics_token: random_looking(3),
        ..strong()
    };
    assert!(long.check_secrets(&[addr("0.0.0.0:8080")]).is_ok());
    assert!(strong().metrics_token.is_empty(), "no default token");
}

#[test]
fn the_development_flag_allows_built_in_secrets_on_loopback_only() {
    let dev = AuthConfig {
        allow_dev_secrets: true,
        ..AuthConfig::default()
    };
    assert!(dev
        .check_secrets(&[addr("127.0.0.1:8080"), addr("[::1]:8081")])
        .is_ok());
    assert!(
        dev.check_secrets(&[]).is_ok(),
        "signing tools listen nowhere"
    );
    let msg = dev
        .check_secrets(&[addr("127.0.0.1:8080"), addr("0.0.0.0:8081")])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("loopback only") && msg.contains("0.0.0.0:8081"),
        "{msg}"
    );
}

/// Long enough but a pattern (`aaaa…`, `abab…`): as guessable as a short one.
#[test]
fn patterned_secrets_are_refused_like_short_ones() {
    for pattern in ["a".repeat(64), "ab".repeat(32), "abcdefg".repeat(8)] {
        let key = AuthConfig {
            pseudonym_key: pattern.clone(),
            ..strong()
        };
        let msg = key.check_secrets(&[]).unwrap_err().to_string();
        assert!(
            msg.contains("REFERRAL_AUTH__PSEUDONYM_KEY"),
            "{pattern}: {msg}"
        );
        let token = AuthConfig {
            metrics_token: pattern.clone(),
            ..strong()
        };
        let msg = token.check_secrets(&[]).unwrap_err().to_string();
        assert!(
            msg.contains("REFERRAL_AUTH__METRICS_TOKEN"),
            "{pattern}: {msg}"
        );
    }
    let eight = AuthConfig {
        jwt_secret: "abcdefgh".repeat(4),
        ..strong()
    };
    assert!(
        eight.check_secrets(&[]).is_ok(),
        "eight distinct bytes pass"
    );
}

/// The development flag is for a debug build on a developer's machine: a release build
/// refuses the built-in secrets with it set, even on loopback.
#[test]
fn a_release_build_refuses_built_in_secrets_whatever_the_flag() {
    let dev = AuthConfig {
        allow_dev_secrets: true,
        ..AuthConfig::default()
    };
    let loopback = [addr("127.0.0.1:8080")];
    assert!(dev.check_secrets_of_build(&loopback, true).is_ok());
    let msg = dev
        .check_secrets_of_build(&loopback, false)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("release build"), "{msg}");
    assert!(msg.contains("REFERRAL_AUTH__JWT_SECRET"), "{msg}");
    assert!(strong().check_secrets_of_build(&loopback, false).is_ok());
}

#[test]
fn a_shops_share_of_the_purchase_stream_is_no_more_than_the_stream() {
    let mut config = Config::default();
    assert_eq!(config.shop_share_bytes(), 128 * 1024 * 1024);
    // A stream smaller than the share (valid before shares existed) still starts.
    config.nats.stream_max_bytes = 4096;
    config.validate().unwrap();
    assert_eq!(config.shop_share_bytes(), 4096);
}

#[test]
fn nonsense_bounds_are_refused_by_name() {
    let mut config = Config::default();
    config.validate().unwrap();
    config.auth.token_ttl_secs = config.auth.max_token_lifetime_secs + 1;
    let msg = config.validate().unwrap_err().to_string();
    assert!(msg.contains("auth.token_ttl_secs"), "{msg}");
    let mut config = Config::default();
    config.http.auth_failures_burst = 0;
    let msg = config.validate().unwrap_err().to_string();
    assert!(msg.contains("http.auth_failures_burst"), "{msg}");
    let mut config = Config::default();
    config.http.header_read_timeout_ms = 0;
    let msg = config.validate().unwrap_err().to_string();
    assert!(msg.contains("http.header_read_timeout_ms"), "{msg}");
    // Below hyper's floor its builder would panic at start: refused at load instead.
    let mut config = Config::default();
    config.http.max_header_bytes = 8_191;
    let msg = config.validate().unwrap_err().to_string();
    assert!(msg.contains("http.max_header_bytes"), "{msg}");
}

/// A zero queue, group, batch or connection bound would stall or refuse everything (a
/// channel of no slots, a sink that never takes a row, every batch a 413): refused by name.
#[test]
fn zero_queues_groups_batches_and_connections_are_refused_by_name() {
    type Set = fn(&mut Config);
    let cases: [(&str, Set); 14] = [
        ("ingest.refund_turns", |c| c.ingest.refund_turns = 0),
        ("ingest.group_commit_queue", |c| {
            c.ingest.group_commit_queue = 0
        }),
        ("ingest.reserve_max_group", |c| {
            c.ingest.reserve_max_group = 0
        }),
        ("ingest.group_commit_in_flight", |c| {
            c.ingest.group_commit_in_flight = 0
        }),
        ("clickhouse.batch_max_rows", |c| {
            c.clickhouse.batch_max_rows = 0
        }),
        ("clickhouse.batch_max_bytes", |c| {
            c.clickhouse.batch_max_bytes = 0
        }),
        ("http.max_batch_purchases", |c| {
            c.http.max_batch_purchases = 0
        }),
        ("http.max_concurrent_requests", |c| {
            c.http.max_concurrent_requests = 0
        }),
        ("database.max_connections", |c| {
            c.database.max_connections = 0
        }),
        ("nats.max_acks_in_flight", |c| c.nats.max_acks_in_flight = 0),
        ("processor.workers", |c| c.processor.workers = 0),
        // No places would leave every report waiting forever.
        ("reports.max_concurrent_reads", |c| {
            c.reports.max_concurrent_reads = 0
        }),
        ("clickhouse.analytics_max_concurrent_queries", |c| {
            c.clickhouse.analytics_max_concurrent_queries = 0
        }),
        ("processor.entries_per_message", |c| {
            c.processor.entries_per_message = 0
        }),
    ];
    for (name, set) in cases {
        let mut config = Config::default();
        set(&mut config);
        let msg = config.validate().unwrap_err().to_string();
        assert!(msg.contains(name), "{name}: {msg}");
    }
}

#[test]
fn nats_replicas_urls_and_pull_timing_are_checked() {
    let mut config = Config::default();
    config.nats.url = "nats://127.0.0.1:4222,nats://127.0.0.1:4223".into();
    config.nats.num_replicas = 3;
    config.validate().unwrap();
    config.nats.num_replicas = 0;
    let msg = config.validate().unwrap_err().to_string();
    assert!(msg.contains("nats.num_replicas"), "{msg}");
    config.nats.num_replicas = MAX_REPLICAS + 1;
    assert!(config.validate().is_err());
    let mut config = Config::default();
    config.nats.url = "nats://127.0.0.1:4222,not a url".into();
    let msg = format!("{:#}", config.validate().unwrap_err());
    assert!(msg.contains("nats.url"), "{msg}");
    let mut config = Config::default();
    config.nats.pull_heartbeat_ms = config.nats.pull_expires_ms;
    let msg = config.validate().unwrap_err().to_string();
    assert!(msg.contains("nats.pull_heartbeat_ms"), "{msg}");
}

#[test]
fn processor_bounds_are_checked() {
    let mut config = Config::default();
    config.processor.workers = 0;
    let msg = config.validate().unwrap_err().to_string();
    assert!(msg.contains("processor.workers"), "{msg}");
    let mut config = Config::default();
    config.processor.order_lock_buckets = 0;
    let msg = config.validate().unwrap_err().to_string();
    assert!(msg.contains("processor.order_lock_buckets"), "{msg}");
    config.processor.order_lock_buckets = MAX_ORDER_LOCK_BUCKETS + 1;
    assert!(config.validate().is_err());
    config.processor.order_lock_buckets = 1;
    config.validate().unwrap();
    config.processor.ack_wait_secs = 0;
    let msg = config.validate().unwrap_err().to_string();
    assert!(msg.contains("processor.ack_wait_secs"), "{msg}");
}

#[test]
fn live_and_report_bounds_are_checked_where_they_are_loaded() {
    let mut config = Config::default();
    config.live.client_buffer = 0;
    let msg = config.validate().unwrap_err().to_string();
    assert!(msg.contains("live.client_buffer"), "{msg}");
    let mut config = Config::default();
    config.live.ws_max_message_bytes = 0;
    let msg = config.validate().unwrap_err().to_string();
    assert!(msg.contains("live.ws_max_message_bytes"), "{msg}");
    let mut config = Config::default();
    config.reports.default_page_size = config.reports.max_page_size + 1;
    let msg = config.validate().unwrap_err().to_string();
    assert!(msg.contains("reports.default_page_size"), "{msg}");
    let mut config = Config::default();
    config.reports.default_tree_depth = config.reports.max_tree_depth + 1;
    let msg = config.validate().unwrap_err().to_string();
    assert!(msg.contains("reports.default_tree_depth"), "{msg}");
    config.reports.default_tree_depth = 0;
    assert!(config.validate().is_err());
}
