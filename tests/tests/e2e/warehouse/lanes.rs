//! Analytics queries take turns past `[clickhouse] analytics_max_concurrent_queries`: a
//! query that would be one too many waits for a place (counted in
//! `analytics_queries_waiting`) without reaching ClickHouse, and runs once one frees.
//! The first query is held on its way to the real ClickHouse by a gate in between.
use super::seed::{caught_up, with_warehouse};
use e2e::{eventually, TestApp};
use reqwest::StatusCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const HOLD_AT_MOST: std::time::Duration = std::time::Duration::from_secs(30);

/// A TCP pass-through to ClickHouse that, while closed, keeps what a client sends until
/// it opens, counting the requests it keeps.
struct Gate {
    url: String,
    open: watch::Sender<bool>,
    held: Arc<AtomicUsize>,
}

impl Gate {
    /// The gate runs on a thread and runtime of its own: the test's runtime is blocked
    /// while `TestApp`'s drop removes the warehouse database, through the gate.
    fn start(upstream: &str) -> Gate {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (open, _) = watch::channel(true);
        let held = Arc::new(AtomicUsize::new(0));
        let (gate, count) = (open.clone(), held.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        std::thread::spawn(move || runtime.block_on(forward(listener, upstream, gate, count)));
        Gate { url, open, held }
    }

    fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }
}

async fn forward(
    listener: std::net::TcpListener,
    upstream: String,
    gate: watch::Sender<bool>,
    held: Arc<AtomicUsize>,
) {
    let listener = TcpListener::from_std(listener).unwrap();
    while let Ok((client, _)) = listener.accept().await {
        let server = TcpStream::connect(&upstream).await.unwrap();
        let (from_client, mut to_client) = client.into_split();
        let (mut from_server, to_server) = server.into_split();
        tokio::spawn(pump(from_client, to_server, gate.subscribe(), held.clone()));
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
        });
    }
}

/// Copies the client's bytes to ClickHouse, each read waiting while the gate is closed.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut open: watch::Receiver<bool>,
    held: Arc<AtomicUsize>,
) {
    let mut buf = vec![0; 64 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buf).await {
        if !*open.borrow() {
            held.fetch_add(1, Ordering::SeqCst);
            // Bounded, so a failed test's clean-up (through the gate) is not held forever.
            let _ = tokio::time::timeout(HOLD_AT_MOST, open.wait_for(|o| *o)).await;
            held.fetch_sub(1, Ordering::SeqCst);
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}

async fn waiting(app: &TestApp) -> String {
    app.metric_line("referral_analytics_queries_waiting").await
}

fn get(app: &TestApp, path: String) -> tokio::task::JoinHandle<StatusCode> {
    let request = app.http.get(format!("{}{path}", app.base));
    let request = request.bearer_auth(&app.admin);
    tokio::spawn(async move { request.send().await.unwrap().status() })
}

#[tokio::test]
async fn an_analytics_query_past_the_bound_waits_its_turn_and_runs_when_a_place_frees() {
    let clickhouse =
        std::env::var("CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:18123".into());
    let gate = Gate::start(&clickhouse);
    let app = TestApp::spawn_with(|c| {
        with_warehouse(c);
        c.clickhouse.url = gate.url.clone();
        c.clickhouse.analytics_max_concurrent_queries = 1;
    })
    .await;
    let user = app.signup(None).await;
    let levels = format!("/v1/users/{user}/analytics/levels");
    // 503 until the sink has made the warehouse's tables.
    let status = || async { app.get(&levels, Some(&app.admin)).await.status() };
    eventually(status, |s| *s == StatusCode::OK).await;
    caught_up(&app).await;

    gate.open.send_replace(false);
    let first = get(&app, levels.clone());
    eventually(|| async { gate.held() }, |n| *n == 1).await;
    let second = get(&app, format!("/v1/users/{user}/analytics/legs"));
    eventually(
        || waiting(&app),
        |l| l == "referral_analytics_queries_waiting 1",
    )
    .await;
    // The second query waits in the API: ClickHouse has only the first.
    assert_eq!(gate.held(), 1);
    assert!(!second.is_finished());

    gate.open.send_replace(true);
    assert_eq!(first.await.unwrap(), StatusCode::OK);
    assert_eq!(second.await.unwrap(), StatusCode::OK);
    assert_eq!(waiting(&app).await, "referral_analytics_queries_waiting 0");
}
