//! `referral bench seed` and `referral bench reports` at a tiny size, as a smoke test only:
//! the seeded ledger is one `referral verify` agrees with (entries, positions, running
//! balances, totals and rollups), and every report answers for the heaviest user. No timing
//! is asserted (speed is read from the bench, not from tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::process::{Command, Output};

fn referral(args: &[&str], database_url: &str) -> Output {
    let nats = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let out = Command::new(env!("CARGO_BIN_EXE_referral"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("NATS_URL", nats)
        .env("REFERRAL_LOG__FILTER", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test]
async fn bench_seed_builds_a_ledger_verify_accepts_and_bench_reports_reads_it() {
    let server = std::env::var("TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let name = format!(
        "referral_seed_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let seeded = referral(
        &[
            "bench",
            "seed",
            "--users",
            "300",
            "--entries",
            "2000",
            "--database",
            &name,
            "--json",
        ],
        &format!("{server}/referral"),
    );
    let seeded: serde_json::Value = serde_json::from_slice(&seeded.stdout).unwrap();
    assert_eq!(seeded["users"], 300);
    assert!(seeded["entries"].as_u64().unwrap() >= 2000, "{seeded}");

    let verified = referral(&["verify"], &format!("{server}/{name}"));
    let verified = String::from_utf8_lossy(&verified.stdout);
    assert!(verified.contains(": 0 differences"), "{verified}");

    // `bench reports` on the seeded database, 4 readers, as JSON, with these options.
    let reports_of = |options: &[&str]| -> serde_json::Value {
        let mut args = vec!["bench", "reports", "--database", &name, "--readers", "4"];
        args.extend_from_slice(options);
        args.push("--json");
        let out = referral(&args, &format!("{server}/referral"));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let report = reports_of(&["--requests", "8"]);
    assert_eq!(report["users"], 300);
    assert!(
        report["heaviest_user_entries"].as_i64().unwrap() > 0,
        "{report}"
    );
    let reports = report["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 9, "{report}");
    for r in reports {
        assert_eq!(r["requests"], 8, "{r}");
        assert!(
            r["p99_ms"].as_f64().unwrap() >= r["p50_ms"].as_f64().unwrap(),
            "{r}"
        );
    }

    // The same reads from wrk in its own process (scripts/services.sh installs it), for
    // a time: the report counts wrk's requests, every one a 2xx.
    let report = reports_of(&["--only", "totals", "--generator", "wrk", "--seconds", "1"]);
    let reports = report["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 1, "{report}");
    assert_eq!(reports[0]["report"], "totals", "{report}");
    assert!(reports[0]["requests"].as_u64().unwrap() > 0, "{report}");
    assert!(reports[0]["p50_ms"].as_f64().unwrap() > 0.0, "{report}");

    let admin = sqlx::PgPool::connect(&format!("{server}/postgres"))
        .await
        .unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
}
