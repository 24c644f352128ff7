//! `referral bench pipeline` at a tiny size, as a smoke test only: it runs end to end on
//! real services, reports both rates and both baselines, and leaves a ledger `verify`
//! agrees with. No timing is asserted (speed is read from the bench, not from tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::process::{Command, Output};

/// `referral bench <args>` against the test services, quiet logs.
fn bench(args: &[&str]) -> Output {
    let database = std::env::var("TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let nats = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let out = Command::new(env!("CARGO_BIN_EXE_referral"))
        .arg("bench")
        .args(args)
        .env("DATABASE_URL", format!("{database}/referral"))
        .env("NATS_URL", nats)
        .env("REFERRAL_LOG__FILTER", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn bench_pipeline_runs_and_verifies_at_a_tiny_size() {
    let out = bench(&[
        "pipeline",
        "--purchases",
        "200",
        "--batch",
        "50",
        "--users",
        "100",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verify_differences"], 0);
    assert_eq!(
        report["users"], 100,
        "a tree of 100 users, three levels deep"
    );
    for step in [
        "insert_purchases",
        "insert_entries",
        "lock_totals",
        "commit",
    ] {
        assert!(
            report["batch"]["batch_steps_ms"][step].is_number(),
            "{step} timed: {report}"
        );
    }
    for load in ["single", "batch"] {
        assert_eq!(report[load]["purchases"], 200, "{report}");
        for rate in ["accepted_per_sec", "settled_per_sec"] {
            assert!(report[load][rate].as_f64().unwrap() > 0.0, "{report}");
        }
        let backlog = report[load]["backlog"].as_array().unwrap();
        assert_eq!(
            backlog.last().unwrap()[2],
            200,
            "the last sample has all settled"
        );
    }
    assert_eq!(report["direct"]["purchases"], 200, "{report}");
    assert!(report["direct"]["settled_per_sec"].as_f64().unwrap() > 0.0);
    assert!(report["raw_publish_per_sec"].as_f64().unwrap() > 0.0);
    assert!(report["naive_per_sec"].as_f64().unwrap() > 0.0);
}

/// Single purchases from wrk in its own process (scripts/services.sh installs it): the
/// edge's count of accepted purchases stands for wrk's, and every one is settled.
#[test]
fn bench_pipeline_runs_single_requests_from_wrk() {
    let out = bench(&[
        "pipeline",
        "--loads",
        "single",
        "--generator",
        "wrk",
        "--duration",
        "1",
        "--users",
        "20",
        "--connections",
        "4",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verify_differences"], 0);
    let single = &report["single"];
    let accepted = single["purchases"].as_u64().unwrap();
    assert!(accepted > 0, "{report}");
    assert!(single["http_p99_ms"].as_f64().unwrap() > 0.0, "{report}");
    let backlog = single["backlog"].as_array().unwrap();
    assert!(
        backlog.last().unwrap()[2].as_u64().unwrap() >= accepted,
        "{report}"
    );
}

#[test]
fn bench_pipeline_sustains_each_load_for_a_duration() {
    let out = bench(&[
        "pipeline",
        "--duration",
        "1",
        "--purchases",
        "1000000",
        "--batch",
        "20",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verify_differences"], 0);
    assert_eq!(report["duration_secs"], 1);
    for load in ["single", "batch", "direct"] {
        let sent = report[load]["purchases"].as_u64().unwrap();
        assert!(
            sent > 0 && sent < 1_000_000,
            "{load} stopped at the duration: {report}"
        );
    }
    for load in ["single", "batch"] {
        let last = report[load]["backlog"].as_array().unwrap().last().unwrap();
        assert_eq!(last[1], last[2], "{load}: every accepted purchase settled");
    }
}

#[test]
fn bench_latency_reads_each_probe_from_sse_idle_and_under_load() {
    let out = bench(&["latency", "--probes", "3", "--background-rate", "500"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in [
        "idle: earning on SSE",
        "under load: earning on SSE",
        "background:",
    ] {
        assert!(stdout.contains(line), "{stdout}");
    }
}

#[test]
fn bench_soak_runs_mixed_traffic_through_faults_and_verifies() {
    let out = bench(&[
        "soak",
        "--minutes",
        "0.1",
        "--rate",
        "50",
        "--fault-every",
        "2",
        "--users",
        "40",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verify_differences"], 0, "{report}");
    assert!(report["accepted_orders"].as_u64().unwrap() > 0, "{report}");
    assert!(
        report["connections_ended"].as_u64().unwrap() > 0,
        "{report}"
    );
    let answers = report["answers"].as_object().unwrap();
    for (kind, a) in answers {
        assert_eq!(a["unexpected"], 0, "{kind}: {report}");
    }
    for kind in ["batch", "purchase", "signup"] {
        assert!(
            answers[kind]["ok"].as_u64().unwrap() > 0,
            "{kind}: {report}"
        );
    }
}

#[test]
fn bench_live_delivers_one_entry_to_every_client_of_its_load_process() {
    let out = bench(&["live", "--clients", "20", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["received"], 20, "{report}");
    assert_eq!(report["load_processes"], 1, "{report}");
    assert!(
        report["delivery_p99_ms"].as_f64().unwrap() >= 0.0,
        "{report}"
    );
    assert!(report["baseline_ms"].as_f64().unwrap() > 0.0, "{report}");
}

#[test]
fn bench_warehouse_catches_up_on_its_backlog() {
    let out = bench(&["warehouse", "--rows", "3000", "--stored", "2000", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["rows"], 3000, "{report}");
    assert_eq!(report["stored_before"], 2000, "{report}");
    for rate in [
        "backlog_stored_per_sec",
        "baseline_insert_per_sec",
        "rowbinary_lz4_insert_per_sec",
        "rowbinary_uncompressed_insert_per_sec",
        "sink_caught_up_per_sec",
    ] {
        assert!(report[rate].as_f64().unwrap() > 0.0, "{rate}: {report}");
    }
}

#[test]
fn bench_analytics_reads_every_route_of_the_warehouse_it_fills() {
    let out = bench(&[
        "analytics",
        "--entries",
        "5000",
        "--users",
        "100",
        "--requests",
        "20",
        "--warmup",
        "2",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The bench itself checks the levels route counts the measured user's 100 entries.
    assert_eq!(report["heavy_user_entries"], 100, "{report}");
    let routes = report["reports"].as_array().unwrap();
    assert_eq!(routes.len(), 6, "{report}");
    for r in routes {
        assert_eq!(r["requests"], 20, "{report}");
        assert!(r["p99_ms"].as_f64().unwrap() > 0.0, "{report}");
    }
}
