//! Real processes, as an operator runs them: one `referral ingest` and two `referral
//! processor` processes on one database and stream prefix. One processor is SIGKILLed while
//! purchases flow (a batch may be half applied, or committed and not yet acknowledged) and
//! started again: every purchase that got a 202 is paid exactly once, and `verify` agrees.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use futures::StreamExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Roles {
    database_url: String,
    nats_url: String,
    prefix: String,
    ingest_addr: String,
}

impl Roles {
    fn spawn(&self, role: &str) -> Child {
        Command::new(env!("CARGO_BIN_EXE_referral"))
            .arg(role)
            .env("DATABASE_URL", &self.database_url)
            .env("NATS_URL", &self.nats_url)
            .env("REFERRAL_NATS__PREFIX", &self.prefix)
            .env("REFERRAL_HTTP__INGEST_ADDR", &self.ingest_addr)
            .env("REFERRAL_HTTP__RATE_LIMIT_PER_SEC", "100000")
            .env("REFERRAL_HTTP__RATE_LIMIT_BURST", "100000")
            .env("REFERRAL_AUTH__JWT_SECRET", "p".repeat(40))
            .env("REFERRAL_AUTH__PSEUDONYM_KEY", "q".repeat(40))
            .env("REFERRAL_PROCESSOR__RETRY_BACKOFF_MAX_MS", "500")
            // What the killed processor had pulled and not acknowledged is redelivered
            // after this (10 s by default), to the other processor or the restarted one.
            .env("REFERRAL_PROCESSOR__ACK_WAIT_SECS", "5")
            .env("REFERRAL_LOG__FILTER", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    }
}

/// Polls `check` every 20 ms until it holds, for at most `limit`.
async fn until<F: std::future::Future<Output = bool>>(limit: Duration, check: impl Fn() -> F) {
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn signup(http: &reqwest::Client, base: &str, key: &str, referrer: Option<&str>) -> String {
    let r = http
        .post(format!("{base}/v1/users"))
        .bearer_auth(key)
        .json(&serde_json::json!({ "referrer_id": referrer }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    let v: serde_json::Value = r.json().await.unwrap();
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processor_killed_under_load_and_restarted_pays_every_accepted_purchase_once() {
    let server = std::env::var("TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let tag = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let config = platform::config::DatabaseConfig {
        url: format!("{server}/referral_proc_{tag}"),
        ..Default::default()
    };
    let pool = platform::db::create_and_migrate(&config).await.unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let roles = Roles {
        database_url: config.url.clone(),
        nats_url: std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
        prefix: format!("proc{tag}"),
        ingest_addr: format!("127.0.0.1:{port}"),
    };
    let (_, key) = referral::shops::create(&pool, "processes").await.unwrap();
    let mut ingest = roles.spawn("ingest");
    let mut first = roles.spawn("processor");
    let mut second = roles.spawn("processor");
    let base = format!("http://{}", roles.ingest_addr);
    let http = reqwest::Client::new();
    let health = format!("{base}/healthz");
    until(Duration::from_secs(30), || async {
        http.get(&health).send().await.is_ok()
    })
    .await;
    let a = signup(&http, &base, &key, None).await;
    let b = signup(&http, &base, &key, Some(&a)).await;
    let c = signup(&http, &base, &key, Some(&b)).await;

    const PURCHASES: usize = 400;
    let send = |i: usize| {
        let (http, base, key, c) = (&http, &base, &key, &c);
        async move {
            let body = serde_json::json!({ "order_id": format!("k-{i}"), "user_id": c,
                                           "amount": "1000.00", "profit": "100.00" });
            let r = http
                .post(format!("{base}/v1/purchases"))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            r.status()
        }
    };
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
            first.kill().unwrap(); // SIGKILL
            first.wait().unwrap();
            killed_at = Some(Instant::now());
        }
        if accepted == 250 {
            first = roles.spawn("processor");
        }
    }
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

    for child in [&mut first, &mut second, &mut ingest] {
        let _ = child.kill();
        let _ = child.wait();
    }
    pool.close().await;
    if let Ok(client) = async_nats::connect(roles.nats_url.as_str()).await {
        platform::nats::delete_streams(&async_nats::jetstream::new(client), &roles.prefix).await;
    }
    let admin = sqlx::PgPool::connect(&format!("{server}/postgres"))
        .await
        .unwrap();
    let drop = format!("DROP DATABASE IF EXISTS \"referral_proc_{tag}\" WITH (FORCE)");
    sqlx::query(&drop).execute(&admin).await.unwrap();
}
