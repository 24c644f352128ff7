//! Real processes, as an operator runs them: one `referral ingest` and two `referral
//! processor` processes on one database and stream prefix. One processor is SIGKILLed while
//! purchases flow (a batch may be half applied, or committed and not yet acknowledged) and
//! started again: every purchase that got a 202 is paid exactly once, and `verify` agrees.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use futures::StreamExt;
use std::time::{Duration, Instant};
use support::{listening, purchase, signup, until, Roles};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processor_killed_under_load_and_restarted_pays_every_accepted_purchase_once() {
    let (roles, pool) = Roles::new("proc").await;
    let (_, key) = referral::shops::create(&pool, "processes").await.unwrap();
    let ingest = roles.spawn("ingest", None);
    let mut first = roles.spawn("processor", None);
    let second = roles.spawn("processor", None);
    let base = roles.ingest_base();
    let http = reqwest::Client::new();
    listening(&http, &format!("{base}/healthz")).await;
    let a = signup(&http, &base, &key, None).await;
    let b = signup(&http, &base, &key, Some(&a)).await;
    let c = signup(&http, &base, &key, Some(&b)).await;

    const PURCHASES: usize = 400;
    let send = |i: usize| purchase(&http, &base, &key, &c, format!("k-{i}"));
    let mut answers = futures::stream::iter(0..PURCHASES).map(send).buffered(16);
    let settled = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM purchases")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let (mut accepted, mut killed_at) = (0, None);
    while let Some(status) = answers.next().await {
        assert_eq!(status, reqwest::StatusCode::ACCEPTED);
        accepted += 1;
        if accepted == 100 {
            // Kill once the processors are paying, so a batch is likely in flight.
            until(Duration::from_secs(30), || async { settled().await > 0 }).await;
            first.kill(); // SIGKILL
            killed_at = Some(Instant::now());
        }
        if accepted == 250 {
            first = roles.spawn("processor", None);
        }
    }
    drop(answers);
    until(Duration::from_secs(60), || async {
        settled().await == PURCHASES as i64
    })
    .await;
    let since_kill = killed_at.map(|t| t.elapsed()).unwrap_or_default();
    println!("all {PURCHASES} settled {since_kill:?} after the SIGKILL");
    let report = processor::verify::verify(&pool).await.unwrap();
    assert!(report.differences.is_empty(), "{:#?}", report.differences);
    let total: rust_decimal::Decimal =
        sqlx::query_scalar("SELECT total FROM account_totals WHERE user_id = $1::uuid")
            .bind(&b)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(total.to_string(), "2000.00", "5.00 for each of 400, once");

    drop((first, second, ingest));
    roles.clean_up(pool, "proc").await;
}
