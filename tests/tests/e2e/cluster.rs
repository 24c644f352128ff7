//! A three-node JetStream cluster (nats-server 2.15, `sync_interval: always`, streams R3)
//! loses the node leading PURCHASES under load, then later the node leading the processor's
//! consumer: every purchase answered 202 is paid once, the live feed misses nothing, and
//! verify finds no difference. Also: start-up never lowers an operator's replicas.
use async_nats::jetstream;
use e2e::nats_cluster::NatsCluster;
use e2e::sse::SseClient;
use e2e::{eventually, TestApp};
use futures::StreamExt;
use platform::config::NatsConfig;
use platform::nats::Subjects;
use reqwest::StatusCode;
use schemas::UserId;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Purchases sent in each phase (before the first kill, after it, after the second).
const PER_PHASE: usize = 80;
/// Requests in flight at once while loading.
const IN_FLIGHT: usize = 8;

async fn replicas(js: &jetstream::Context, stream: &str) -> usize {
    let mut s = js.get_stream(stream).await.unwrap();
    s.info().await.unwrap().config.num_replicas
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_takes_every_url_and_never_lowers_an_operators_replicas() {
    let cluster = NatsCluster::start().await;
    let config = NatsConfig {
        url: cluster.url(),
        prefix: format!("r{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
        stream_max_bytes: 16 * 1024 * 1024,
        ..NatsConfig::default()
    };
    let js = jetstream::new(platform::nats::connect(&config).await.unwrap());
    let s = Subjects::new(&config.prefix);
    platform::nats::ensure_streams(&js, &config).await.unwrap();
    assert_eq!(replicas(&js, &s.purchases_stream()).await, 1, "default: R1");

    // An operator scales PURCHASES to R3 by hand; a start-up configured for R1 keeps it.
    let mut purchases = js.get_stream(s.purchases_stream()).await.unwrap();
    let mut scaled = purchases.info().await.unwrap().config.clone();
    scaled.num_replicas = 3;
    js.update_stream(scaled).await.unwrap();
    platform::nats::ensure_streams(&js, &config).await.unwrap();
    assert_eq!(
        replicas(&js, &s.purchases_stream()).await,
        3,
        "never lowered"
    );
    assert_eq!(replicas(&js, &s.earnings_stream()).await, 1);

    // Configured R3: every stream is raised.
    let r3 = NatsConfig {
        num_replicas: 3,
        ..config.clone()
    };
    platform::nats::ensure_streams(&js, &r3).await.unwrap();
    for stream in [s.earnings_stream(), s.deadletter_stream()] {
        assert_eq!(replicas(&js, &stream).await, 3, "{stream} raised");
    }
}

/// Sends one purchase by `user` until it is answered 202 (a 503 while the stream has no
/// leader is retried, as a shop would); returns how many answers were not 202.
async fn purchase_until_accepted(app: &TestApp, order: String, user: UserId) -> usize {
    let refused = std::sync::atomic::AtomicUsize::new(0);
    let status = eventually(
        || async {
            let s = app
                .purchase(&order, user, "1000.00", Some("100.00"))
                .await
                .status();
            if s != StatusCode::ACCEPTED {
                assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{order}: only 503s");
                refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            s
        },
        |s| *s == StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    refused.into_inner()
}

/// Orders `range` sent `IN_FLIGHT` at a time, each until accepted; returns the ids and
/// the number of 503s seen on the way.
async fn load(app: &TestApp, user: UserId, range: std::ops::Range<usize>) -> (Vec<String>, usize) {
    let results: Vec<(String, usize)> = futures::stream::iter(range)
        .map(|i| async move {
            let order = format!("cl-{i}");
            (
                order.clone(),
                purchase_until_accepted(app, order, user).await,
            )
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let refused = results.iter().map(|(_, r)| r).sum();
    (results.into_iter().map(|(o, _)| o).collect(), refused)
}

/// The node leading the stream (or its consumer). A group can be between leaders, as
/// right after a node came back and its groups hold elections: wait until one is reported.
async fn leader_of(js: &jetstream::Context, stream: &str, consumer: Option<&str>) -> String {
    let leader = eventually(
        || async {
            let mut s = js.get_stream(stream).await.ok()?;
            let cluster = match consumer {
                Some(name) => {
                    let mut c: jetstream::consumer::PullConsumer =
                        s.get_consumer(name).await.ok()?;
                    c.info().await.ok()?.cluster.clone()
                }
                None => s.info().await.ok()?.cluster.clone(),
            };
            cluster?.leader
        },
        Option::is_some,
    )
    .await;
    leader.expect("a leader")
}

/// Right after a kill: how long until the stream reports a new leader, a purchase is
/// accepted again, and that purchase is settled (the processor resumed). Each bounded by
/// `EVENTUALLY`: a processor that sat out its pull request's expiry would fail here.
async fn measure_recovery(app: &TestApp, stream: &str, old: &str, user: UserId, tag: &str) {
    let killed_at = Instant::now();
    // Probes give up quickly: while there is no leader, nobody answers.
    let mut probe = jetstream::new(platform::nats::connect(&app.config.nats).await.unwrap());
    probe.set_timeout(Duration::from_millis(250));
    let leader = eventually(
        || async {
            let mut s = probe.get_stream(stream).await.ok()?;
            s.info().await.ok()?.cluster.clone()?.leader
        },
        |l| l.as_deref().is_some_and(|l| l != old),
    )
    .await;
    let elected = killed_at.elapsed();
    let order = format!("probe-{tag}");
    let refused = purchase_until_accepted(app, order.clone(), user).await;
    let accepted = killed_at.elapsed();
    eventually(
        || async {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM purchases WHERE order_id = $1")
                .bind(&order)
                .fetch_one(&app.pool)
                .await
                .unwrap()
        },
        |n| *n == 1,
    )
    .await;
    println!(
        "{tag}: killed {old}; stream leader {leader:?} after {elected:?}; a purchase accepted \
         after {accepted:?} ({refused} 503s first) and settled after {:?}",
        killed_at.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_leaders_loses_no_acknowledged_purchase_and_no_live_entry() {
    let mut cluster = NatsCluster::start().await;
    let url = cluster.url();
    let app = TestApp::spawn_with(|c| {
        c.nats.url = url;
        c.nats.num_replicas = 3;
        c.processor.ack_wait_secs = 2;
    })
    .await;
    let js = jetstream::new(platform::nats::connect(&app.config.nats).await.unwrap());
    let s = Subjects::new(&app.config.nats.prefix);
    let stream = s.purchases_stream();
    assert_eq!(replicas(&js, &stream).await, 3);
    let (a, b, c) = app.chain3().await;
    let mut live = SseClient::new(
        app.http
            .get(format!("{}/v1/users/{b}/earnings/stream", app.base))
            .bearer_auth(app.token_for(b))
            .send()
            .await
            .unwrap(),
    );

    let mut accepted: HashSet<String> = HashSet::new();
    accepted.extend(load(&app, c, 0..PER_PHASE).await.0);
    // Under load: the node leading PURCHASES is killed while purchases are in flight.
    let first = leader_of(&js, &stream, None).await;
    let ((orders, refused), ()) = tokio::join!(load(&app, c, PER_PHASE..2 * PER_PHASE), async {
        cluster.kill(cluster.index_of(&first));
        measure_recovery(&app, &stream, &first, c, "purchases-leader").await;
    });
    accepted.insert("probe-purchases-leader".into());
    accepted.extend(orders);
    println!("first kill: {refused} answers were 503 before a 202");
    // The node comes back and catches up; then the node leading the processor's consumer
    // (whose pull requests die with it) is lost.
    cluster.restart(cluster.index_of(&first)).await;
    eventually(
        || async {
            let mut st = js.get_stream(&stream).await.ok()?;
            let info = st.info().await.ok()?.cluster.clone()?;
            Some(
                info.replicas
                    .iter()
                    .filter(|p| p.current && !p.offline)
                    .count(),
            )
        },
        |n| *n == Some(2),
    )
    .await;
    let second = leader_of(&js, &stream, Some(processor::consumer::DURABLE_NAME)).await;
    let ((orders, refused), ()) =
        tokio::join!(load(&app, c, 2 * PER_PHASE..3 * PER_PHASE), async {
            cluster.kill(cluster.index_of(&second));
            measure_recovery(&app, &stream, &second, c, "consumer-leader").await;
        });
    accepted.insert("probe-consumer-leader".into());
    accepted.extend(orders);
    println!("second kill: {refused} answers were 503 before a 202");

    let total = accepted.len();
    app.assert_settled_once(&accepted).await;
    let paid_b = rust_decimal::Decimal::from(5 * total as i64);
    assert_eq!(app.total(b).await, format!("{paid_b}.00"), "5% of 100 each");
    assert_eq!(app.total(a).await, format!("{total}.00"), "1% of 100 each");

    // The live client saw every one of b's entries, in ledger order, across both kills.
    let mut seqs = Vec::new();
    while seqs.len() < total {
        let frame = live
            .next(Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("live feed stalled after {} entries", seqs.len()));
        seqs.push(frame.id.unwrap().parse::<u64>().unwrap());
    }
    assert_eq!(seqs, (1..=total as u64).collect::<Vec<_>>());
    app.assert_verified().await;
}
