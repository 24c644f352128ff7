//! A full PURCHASES stream refuses new purchases (503, retry) instead of deleting the
//! oldest ones not yet settled; what it refused is accepted on a retry once it drains.
use super::faults::send_purchase;
use e2e::{eventually, TestApp};
use reqwest::StatusCode;
use std::collections::HashSet;

/// The processor is held (every order hashes to one lock, held here), so what was stored
/// stays in the stream until the stream is full; then every purchase is a 503 with
/// `Retry-After`, none a 202. Released, the processor settles what was accepted, the
/// stream drains (interest retention), and the refused orders are accepted on a retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_purchase_stream_answers_503_and_loses_nothing() {
    const MAX_BYTES: i64 = 4096;
    let app = TestApp::spawn_with(|c| {
        c.nats.stream_max_bytes = MAX_BYTES;
        c.ingest.backlog_bytes_per_shop = MAX_BYTES as u64;
        c.processor.order_lock_buckets = 1;
    })
    .await;
    let (_, b, c) = app.chain3().await;
    let held = e2e::order_lock::OrderLock::hold(&app.config.database.url).await;

    let (mut accepted, mut refused) = (HashSet::new(), Vec::new());
    for i in 0..200 {
        let (order, status, code, retry_after) = send_purchase(&app, format!("full-{i}"), c).await;
        match status {
            StatusCode::ACCEPTED => assert!(refused.is_empty(), "{order}: 202 after a 503"),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(code, "unavailable", "{order}");
                assert!(retry_after.is_some(), "{order}: a 503 says when to retry");
            }
            other => panic!("{order}: {other} {code}"),
        }
        if status == StatusCode::ACCEPTED {
            accepted.insert(order);
        } else {
            refused.push(order);
        }
        if refused.len() == 5 {
            break;
        }
    }
    assert!(!accepted.is_empty(), "the stream stored something first");
    assert_eq!(
        refused.len(),
        5,
        "the stream never filled: {}",
        accepted.len()
    );
    let js = async_nats::jetstream::new(async_nats::connect(app.nats_addrs()).await.unwrap());
    let subjects = platform::nats::Subjects::new(&app.config.nats.prefix);
    let name = subjects.purchases_stream();
    let state = || async {
        let mut stream = js.get_stream(&name).await.unwrap();
        stream.info().await.unwrap().state.clone()
    };
    let state = state().await;
    assert_eq!(
        state.messages as usize,
        accepted.len(),
        "one message per 202"
    );
    assert!(state.bytes as i64 <= MAX_BYTES, "{state:?}");

    held.release().await;
    app.assert_settled_once(&accepted).await;
    let drained = || async {
        let mut stream = js.get_stream(&name).await.unwrap();
        stream.info().await.unwrap().state.messages
    };
    eventually(drained, |n| *n == 0).await;
    for order in refused {
        let (order, ..) = eventually(
            || send_purchase(&app, order.clone(), c),
            |(_, s, ..)| *s == StatusCode::ACCEPTED,
        )
        .await;
        accepted.insert(order);
    }
    app.assert_settled_once(&accepted).await;
    let paid = format!("{}.00", accepted.len() * 5);
    assert_eq!(app.total(b).await, paid);
    app.assert_verified().await;
}

/// A PURCHASES stream made by an earlier release (limits retention, discard old) becomes an
/// interest stream that refuses when full at the next start-up on nats-server 2.10 or later;
/// on an older server (the machine's 2.9), which cannot change retention, start-up still
/// succeeds and the stream keeps its policies (a warning says so). Either way the
/// processor's consumer exists before anything is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_moves_an_old_purchase_stream_to_interest_where_the_server_can() {
    use async_nats::jetstream::{self, stream};
    let private = e2e::nats_server::PrivateNats::start().await;
    let machine = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    for url in [private.url(), machine] {
        let config = platform::config::NatsConfig {
            url: url.clone(),
            prefix: format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            stream_max_bytes: 1024 * 1024,
            ..platform::config::NatsConfig::default()
        };
        let js = jetstream::new(platform::nats::connect(&config).await.unwrap());
        let s = platform::nats::Subjects::new(&config.prefix);
        let old = stream::Config {
            name: s.purchases_stream(),
            subjects: s.purchases_all(),
            storage: stream::StorageType::File,
            max_bytes: config.stream_max_bytes,
            ..Default::default()
        };
        js.create_stream(old).await.unwrap();
        let version = js.client().server_info().version;
        // 2.10 and later can change a stream's retention between limits and interest.
        let numbers: Vec<u32> = version.split('.').map_while(|n| n.parse().ok()).collect();
        let can_change = numbers[..2] >= [2, 10][..];
        platform::nats::ensure_streams(&js, &config).await.unwrap();
        let mut purchases = js.get_stream(s.purchases_stream()).await.unwrap();
        let info = purchases.info().await.unwrap().config.clone();
        let moved = (info.retention, info.discard)
            == (
                stream::RetentionPolicy::Interest,
                stream::DiscardPolicy::New,
            );
        assert_eq!(moved, can_change, "server {version}: {info:?}");
        purchases
            .consumer_info(platform::nats::PROCESSOR_CONSUMER)
            .await
            .unwrap();
        platform::nats::delete_streams(&js, &config.prefix).await;
    }
}

/// One shop sending faster than the processor settles fills only its own share of the
/// stream (`ingest.backlog_bytes_per_shop`): then it is told to wait (429 `backlog_full`,
/// `Retry-After`), while another shop's purchases are still stored. The processor held
/// until then, released it settles every 202 once, and once the first shop's share has
/// drained it is admitted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_past_its_share_of_the_stream_waits_and_other_shops_do_not() {
    const SHARE: u64 = 2048;
    let app = TestApp::spawn_with(|c| {
        c.ingest.backlog_bytes_per_shop = SHARE;
        c.processor.order_lock_buckets = 1;
    })
    .await;
    let (_, b, c) = app.chain3().await;
    let (_, other_key) = referral::shops::create(&app.pool, "another shop")
        .await
        .unwrap();
    let other_parent = app.signup_by(&other_key, None).await;
    let other_buyer = app.signup_by(&other_key, Some(other_parent)).await;
    let held = e2e::order_lock::OrderLock::hold(&app.config.database.url).await;

    let mut accepted = HashSet::new();
    let mut waited = None;
    for i in 0..100 {
        let (order, status, code, retry_after) =
            send_purchase(&app, format!("greedy-{i}"), c).await;
        if status == StatusCode::ACCEPTED {
            accepted.insert(order);
            continue;
        }
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::TOO_MANY_REQUESTS, "backlog_full"),
            "{order}"
        );
        assert!(retry_after.is_some(), "{order}: says when to retry");
        waited = Some(order);
        break;
    }
    let waited = waited.expect("the shop never reached its share");
    assert!(
        accepted.len() >= 2,
        "a share holds several purchases: {accepted:?}"
    );
    let stream = stream_state(&app).await;
    assert_eq!(
        stream.messages as usize,
        accepted.len(),
        "one message per 202"
    );
    assert!(
        stream.bytes >= SHARE,
        "refused before its share was full: {stream:?}"
    );

    let other = |order: &'static str| {
        let body = serde_json::json!({
            "order_id": order, "user_id": other_buyer, "amount": "1000.00", "profit": "100.00"
        });
        let (app, key) = (&app, &other_key);
        async move { app.post("/v1/purchases", key, &body).await.status() }
    };
    assert_eq!(
        other("other-1").await,
        StatusCode::ACCEPTED,
        "another shop is not held back"
    );
    let (.., code, _) = send_purchase(&app, waited.clone(), c).await;
    assert_eq!(
        code, "backlog_full",
        "nothing settled yet: the shop still waits"
    );

    held.release().await;
    let (order, ..) = eventually(
        || send_purchase(&app, waited.clone(), c),
        |(_, s, ..)| *s == StatusCode::ACCEPTED,
    )
    .await;
    accepted.insert(order);
    accepted.insert("other-1".to_owned());
    app.assert_settled_once(&accepted).await;
    assert_eq!(
        app.total(b).await,
        format!("{}.00", (accepted.len() - 1) * 5)
    );
    assert_eq!(app.total(other_parent).await, "5.00");
    app.assert_verified().await;
}

async fn stream_state(app: &TestApp) -> async_nats::jetstream::stream::State {
    let js = async_nats::jetstream::new(async_nats::connect(app.nats_addrs()).await.unwrap());
    let name = platform::nats::Subjects::new(&app.config.nats.prefix).purchases_stream();
    let mut stream = js.get_stream(&name).await.unwrap();
    stream.info().await.unwrap().state.clone()
}
