//! Real processes: one `referral ingest`, one `referral processor` and two `referral api`
//! processes on one database and stream prefix. A live client on the first API is
//! SIGKILLed away from it while earnings flow; it reconnects to the second with
//! `Last-Event-ID` and receives every earning exactly once, in order, with no gap.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use futures::StreamExt;
use platform::auth::{Authenticator, Principal};
use std::time::Duration;
use support::{free_port, listening, purchase, signup, until, Roles, JWT_SECRET};

/// Reads SSE frames from one connection: yields each `id:` of an `earning` event, and
/// ends when the connection does (the server was killed) or `wait` passes with nothing.
struct Sse {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl Sse {
    async fn open(http: &reqwest::Client, url: &str, token: &str, last: Option<u64>) -> Sse {
        let mut request = http.get(url).bearer_auth(token);
        if let Some(last) = last {
            request = request.header("Last-Event-ID", last.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        Sse {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    async fn next_id(&mut self, wait: Duration) -> Option<u64> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let id = frame.lines().find_map(|l| l.strip_prefix("id:"));
                if frame.contains("event: earning") || frame.contains("event:earning") {
                    return Some(id.expect("an earning has an id").trim().parse().unwrap());
                }
                assert!(!frame.contains("event:"), "unexpected frame {frame:?}");
                continue; // keep-alive
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_client_of_a_killed_api_resumes_on_the_other_and_misses_nothing() {
    let (roles, pool) = Roles::new("apis").await;
    let (_, key) = referral::shops::create(&pool, "apis").await.unwrap();
    let (port_one, port_two) = (free_port(), free_port());
    let ingest = roles.spawn("ingest", None);
    let processor = roles.spawn("processor", None);
    let mut api_one = roles.spawn("api", Some(port_one));
    let api_two = roles.spawn("api", Some(port_two));
    let http = reqwest::Client::new();
    let base = roles.ingest_base();
    for url in [
        format!("{base}/healthz"),
        format!("http://127.0.0.1:{port_one}/healthz"),
        format!("http://127.0.0.1:{port_two}/healthz"),
    ] {
        listening(&http, &url).await;
    }
    let a = signup(&http, &base, &key, None).await;
    let b = signup(&http, &base, &key, Some(&a)).await;
    let c = signup(&http, &base, &key, Some(&b)).await;
    let auth_config = platform::config::AuthConfig {
        jwt_secret: JWT_SECRET.into(),
        ..Default::default()
    };
    let token = Authenticator::new(&auth_config, pool.clone())
        .issue(Principal::User(b.parse().unwrap()))
        .unwrap();
    let stream = |port: u16| format!("http://127.0.0.1:{port}/v1/users/{b}/earnings/stream");

    // B earns one entry per purchase of C's; purchases keep flowing across the kill.
    const PURCHASES: u64 = 120;
    let mut live = Sse::open(&http, &stream(port_one), &token, None).await;
    let sender = {
        let (http, base, key, c) = (http.clone(), base.clone(), key.clone(), c.clone());
        tokio::spawn(async move {
            for i in 0..PURCHASES {
                let status = purchase(&http, &base, &key, &c, format!("api-{i}")).await;
                assert_eq!(status, reqwest::StatusCode::ACCEPTED);
            }
        })
    };
    let wait = Duration::from_secs(20);
    let mut seen = Vec::new();
    while seen.len() < 30 {
        seen.push(
            live.next_id(wait)
                .await
                .expect("an earning from the first API"),
        );
    }
    api_one.kill(); // SIGKILL, with the client connected
                    // The first connection ends (whatever it still delivered counts), then the client
                    // resumes on the second API after the last id it saw.
    while let Some(id) = live.next_id(Duration::from_secs(5)).await {
        seen.push(id);
    }
    // Earnings are paid while the client is away, so the resume has something to bring.
    let paid = || async {
        sqlx::query_scalar::<_, i64>("SELECT entries FROM account_totals WHERE user_id = $1::uuid")
            .bind(&b)
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let away = seen.len() as i64;
    until(Duration::from_secs(30), || async {
        paid().await > away + 5
    })
    .await;
    let mut live = Sse::open(&http, &stream(port_two), &token, seen.last().copied()).await;
    while (seen.len() as u64) < PURCHASES {
        seen.push(
            live.next_id(wait)
                .await
                .expect("an earning from the second API"),
        );
    }
    sender.await.unwrap();
    let expected: Vec<u64> = (1..=PURCHASES).collect();
    assert_eq!(
        seen, expected,
        "every earning once, in order, across the kill"
    );
    let settled: i64 = sqlx::query_scalar("SELECT count(*) FROM purchases")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(settled, PURCHASES as i64);

    drop((api_two, processor, ingest));
    roles.clean_up(pool, "apis").await;
}
