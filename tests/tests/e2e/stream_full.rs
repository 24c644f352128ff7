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
