//! Live feed: resume from the stream with Last-Event-ID, isolation between users,
//! WebSocket parity, and clients behind their channel caught up from the ledger.
use e2e::sse::{Frame, SseClient};
use e2e::ws::Ws;
use e2e::{eventually, TestApp};
use futures::StreamExt;
use reqwest::StatusCode;
use schemas::UserId;
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

async fn open(app: &TestApp, user: UserId, last_event_id: Option<&str>) -> SseClient {
    let mut req = app
        .http
        .get(format!("{}/v1/users/{user}/earnings/stream", app.base))
        .bearer_auth(app.token_for(user));
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id);
    }
    SseClient::new(req.send().await.unwrap())
}

fn data(f: &Frame) -> Value {
    serde_json::from_str(&f.data).unwrap()
}

#[tokio::test]
async fn resume_with_last_event_id_replays_exactly_what_was_missed() {
    let app = TestApp::spawn().await;
    let (_, b, c) = app.chain3().await;
    let mut sse = open(&app, b, None).await;
    app.purchase("r-1", c, "1000.00", Some("100.00")).await;
    let first = sse.next(WAIT).await.expect("first earning");
    assert_eq!(data(&first)["amount"], "5.00");
    // Where the downline member shopped is theirs: not in the feed, as not in history.
    assert!(data(&first).get("shop_id").is_none(), "{}", first.data);
    assert_eq!(data(&first)["source_user_id"], c.to_string());
    drop(sse); // disconnect

    // One settled before the next: positions follow settlement, and two processor
    // workers may settle purchases sent together in either order.
    app.purchase("r-2", c, "1000.00", Some("200.00")).await;
    eventually(|| app.total(b), |t| t == "15.00").await;
    app.purchase("r-3", c, "1000.00", Some("300.00")).await;
    eventually(|| app.total(b), |t| t == "30.00").await;

    let mut resumed = open(&app, b, first.id.as_deref()).await;
    let missed_1 = resumed.next(WAIT).await.expect("first missed");
    let missed_2 = resumed.next(WAIT).await.expect("second missed");
    assert_eq!(data(&missed_1)["amount"], "10.00");
    assert_eq!(data(&missed_2)["amount"], "15.00");
    assert_eq!(data(&missed_2)["total"], "30.00");
    // Then live again, with nothing replayed twice.
    app.purchase("r-4", c, "1000.00", Some("400.00")).await;
    let live = resumed.next(WAIT).await.expect("live after replay");
    assert_eq!(data(&live)["amount"], "20.00");
    let ids: Vec<u64> = [&first, &missed_1, &missed_2, &live]
        .iter()
        .map(|f| f.id.as_deref().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
}

/// Two processors may announce one user's entries out of order, or a crash may leave a
/// committed entry unannounced until its batch is replayed: a client that receives
/// position n+2 after n reads n+1 from the ledger first, and never sees anything twice.
#[tokio::test]
async fn a_gap_in_the_feed_is_filled_from_the_ledger_in_order() {
    let app = TestApp::spawn().await;
    let (_, b, c) = app.chain3().await;
    let mut sse = open(&app, b, None).await;
    app.purchase("gap-1", c, "2000.00", Some("500.00")).await;
    let first = sse.next(WAIT).await.expect("the first earning");
    assert_eq!(first.id.as_deref(), Some("1"));
    // Position 2 committed by "another processor" and not announced (yet).
    sqlx::query(
        "INSERT INTO earnings (id, purchase_id, beneficiary_id, level, leg_user_id, source_user_id, base,
                               rate, amount, kind, refund_id, plan_version, balance_after, user_seq)
         SELECT gen_random_uuid(), purchase_id, beneficiary_id, level, leg_user_id, source_user_id, base,
                rate, -amount, 'reversal', 'gap-test', plan_version, 0, 2
         FROM earnings WHERE beneficiary_id = $1 AND user_seq = 1",
    )
    .bind(b.as_uuid())
    .execute(&app.pool)
    .await
    .unwrap();
    // Position 3 is announced first, then 2 and 3 again (a replayed batch).
    let client = async_nats::connect(&app.config.nats.url).await.unwrap();
    let subject = format!("{}.ledger.entries", app.config.nats.prefix);
    let third = serde_json::to_vec(&[fake_entry(b, 3)]).unwrap();
    client.publish(subject.clone(), third.into()).await.unwrap();
    let gap = sse.next(WAIT).await.expect("the gap, from the ledger");
    assert_eq!(gap.id.as_deref(), Some("2"));
    assert_eq!(data(&gap)["kind"], "reversal");
    assert_eq!(data(&gap)["amount"], "-25.00");
    let live = sse.next(WAIT).await.expect("then the live entry");
    assert_eq!(live.id.as_deref(), Some("3"));
    let again = serde_json::to_vec(&[fake_entry(b, 2), fake_entry(b, 3)]).unwrap();
    client.publish(subject.clone(), again.into()).await.unwrap();
    // The replay must add nothing: the next event the client sees is a later position.
    let fourth = serde_json::to_vec(&[fake_entry(b, 4)]).unwrap();
    client.publish(subject, fourth.into()).await.unwrap();
    client.flush().await.unwrap();
    let next = sse.next(WAIT).await.expect("the entry after the replay");
    assert_eq!(next.id.as_deref(), Some("4"));
}

#[tokio::test]
async fn a_second_users_events_never_arrive() {
    let app = TestApp::spawn().await;
    let (a, b, c) = app.chain3().await;
    let d = app.signup(None).await;
    let e = app.signup(Some(d)).await;
    let mut sse_a = open(&app, a, None).await;
    let mut sse_d = open(&app, d, None).await;
    app.purchase("iso-1", c, "2000.00", Some("500.00")).await; // pays B and A
    app.purchase("iso-2", e, "2000.00", Some("100.00")).await; // pays D only
    let to_a = sse_a.next(WAIT).await.expect("A's earning");
    assert_eq!(data(&to_a)["beneficiary_id"], a.to_string());
    assert_eq!(data(&to_a)["level"], 2);
    assert_eq!(data(&to_a)["direct"], false);
    assert_eq!(data(&to_a)["leg_user_id"], b.to_string());
    let to_d = sse_d.next(WAIT).await.expect("D's earning");
    assert_eq!(data(&to_d)["beneficiary_id"], d.to_string());
    assert_eq!(data(&to_d)["amount"], "5.00");
    // Both purchases are settled; the next event each client sees is its own next
    // earning, never the other user's (which was announced before it).
    eventually(|| app.settled(), |n| *n == 2).await;
    app.purchase("iso-3", c, "2000.00", Some("1000.00")).await; // A earns 10.00
    app.purchase("iso-4", e, "2000.00", Some("300.00")).await; // D earns 15.00
    let next_a = sse_a.next(WAIT).await.expect("A's next earning");
    assert_eq!(data(&next_a)["beneficiary_id"], a.to_string());
    assert_eq!(data(&next_a)["amount"], "10.00");
    let next_d = sse_d.next(WAIT).await.expect("D's next earning");
    assert_eq!(data(&next_d)["beneficiary_id"], d.to_string());
    assert_eq!(data(&next_d)["amount"], "15.00");
}

async fn open_ws(app: &TestApp, user: UserId) -> Ws {
    e2e::ws::try_open(&app.base, user, &app.token_for(user))
        .await
        .expect("the WebSocket was refused")
}

#[tokio::test]
async fn websocket_delivers_the_same_events_and_refund_reversals() {
    let app = TestApp::spawn().await;
    let (_, b, c) = app.chain3().await;
    let mut ws = open_ws(&app, b).await;
    app.purchase("ws-1", c, "2000.00", Some("500.00")).await;
    let msg = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let earning: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
    assert_eq!(earning["event"], "earning");
    assert_eq!(earning["data"]["amount"], "25.00");
    assert_eq!(earning["data"]["kind"], "earning");
    assert!(earning["id"].as_u64().unwrap() > 0);
    assert_eq!(
        app.refund("ws-r1", "ws-1", "500.00").await.status(),
        StatusCode::ACCEPTED
    );
    let msg = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let reversal: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
    assert_eq!(reversal["data"]["kind"], "reversal");
    assert_eq!(reversal["data"]["amount"], "-6.25");
    assert_eq!(reversal["data"]["total"], "18.75");
}

/// Clients have nothing to say over the WebSocket: one message over
/// `live.ws_max_message_bytes`, even sent as small fragments, closes that socket, and the
/// server keeps serving the others.
#[tokio::test]
async fn a_websocket_message_over_the_limit_closes_that_socket_only() {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::Message;
    let app = TestApp::spawn_with(|c| c.live.ws_max_message_bytes = 1024).await;
    let (_, b, c) = app.chain3().await;
    let mut bad = open_ws(&app, b).await;
    let mut good = open_ws(&app, b).await;
    // Within the limit: read and ignored.
    good.send(Message::text("x".repeat(1000))).await.unwrap();
    // Three 600-byte fragments of one unfinished message: each frame is under the limit,
    // the message is not.
    let fragments = [
        OpCode::Data(Data::Text),
        OpCode::Data(Data::Continue),
        OpCode::Data(Data::Continue),
    ];
    for opcode in fragments {
        let frame = Frame::message(vec![b'a'; 600], opcode, false);
        bad.send(Message::Frame(frame)).await.unwrap();
    }
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match bad.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the oversized message closes its socket");

    app.purchase("ws-big-1", c, "2000.00", Some("500.00")).await;
    let msg = tokio::time::timeout(WAIT, good.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let earning: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
    assert_eq!(earning["data"]["amount"], "25.00");
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn live_connections_per_user_are_bounded() {
    let app = TestApp::spawn_with(|c| c.live.max_connections_per_user = 2).await;
    let (_, b, _) = app.chain3().await;
    let _one = open(&app, b, None).await;
    let _two = open(&app, b, None).await;
    let third = app
        .get(
            &format!("/v1/users/{b}/earnings/stream"),
            Some(&app.token_for(b)),
        )
        .await;
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(third.headers().get("retry-after").is_some());
    let p: Value = third.json().await.unwrap();
    assert_eq!(p["code"], "too_many_streams");
}

/// One batch of 100 purchases pays b 100 entries in one announced message, 25 times
/// what b's channel holds: both clients lag at once, the one reading as it goes and the
/// one that reads nothing until the end. Each is caught up from the ledger and gets
/// every position exactly once, in order; nobody is disconnected for being slow.
#[tokio::test]
async fn clients_behind_their_channel_are_caught_up_from_the_ledger_in_order() {
    let app = TestApp::spawn_with(|c| c.live.client_buffer = 4).await;
    let (_, b, c) = app.chain3().await;
    let mut slow = open(&app, b, None).await; // not read until everything is settled
    let mut fast = open(&app, b, None).await;
    let (batches, size) = (3u64, 100u64);
    for batch in 0..batches {
        let items: Vec<Value> = (0..size)
            .map(|i| {
                serde_json::json!({ "order_id": format!("lag-{batch}-{i}"), "user_id": c,
                                         "amount": "1000.00", "profit": "100.00" })
            })
            .collect();
        let r = app
            .post(
                "/v1/purchases/batch",
                &app.shop_key,
                &serde_json::json!({ "purchases": items }),
            )
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        for seq in batch * size + 1..=(batch + 1) * size {
            let f = fast.next(WAIT).await.expect("the reading client keeps up");
            assert_eq!(
                (f.event.as_str(), f.id.as_deref()),
                ("earning", Some(seq.to_string().as_str()))
            );
        }
    }
    let total = format!("{}.00", batches * size * 5);
    eventually(|| app.total(b), |t| *t == total).await;
    for seq in 1..=batches * size {
        let f = slow.next(WAIT).await.expect("the slow client is caught up");
        assert_eq!(
            (f.event.as_str(), f.id.as_deref()),
            ("earning", Some(seq.to_string().as_str()))
        );
        assert_eq!(data(&f)["seq"], seq);
    }
}

/// An entry as the processor announces it, at position `seq` of `user`'s ledger.
fn fake_entry(user: UserId, seq: u64) -> Value {
    let id = uuid::Uuid::now_v7();
    serde_json::json!({
        "earning_id": id, "seq": seq, "purchase_id": id, "shop_id": id,
        "beneficiary_id": user, "source_user_id": id, "leg_user_id": id,
        "level": 1, "direct": true, "kind": "earning", "amount": "1.00",
        "total": format!("{seq}.00"), "plan_version": 1, "created_at": chrono::Utc::now(),
    })
}

#[tokio::test]
async fn live_connections_in_all_are_bounded() {
    let app = TestApp::spawn_with(|c| {
        c.live.max_connections_total = 2;
        c.live.keepalive_secs = 1;
    })
    .await;
    let (a, b, c) = app.chain3().await;
    let _one = open(&app, a, None).await;
    let _two = open(&app, b, None).await;
    let third = app
        .get(
            &format!("/v1/users/{c}/earnings/stream"),
            Some(&app.token_for(c)),
        )
        .await;
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    let p: Value = third.json().await.unwrap();
    assert_eq!(p["code"], "too_many_streams");
    drop(_one);
    // A closed stream frees its place (the server notices the hang-up on its next write or
    // keep-alive; polled with a bound, not slept on).
    eventually(
        || async {
            app.get(
                &format!("/v1/users/{c}/earnings/stream"),
                Some(&app.token_for(c)),
            )
            .await
            .status()
        },
        |s| *s == StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn shutdown_ends_open_streams_and_completes() {
    let mut app = TestApp::spawn().await;
    let (_, b, _) = app.chain3().await;
    let mut sse = open(&app, b, None).await;
    tokio::time::timeout(Duration::from_secs(10), app.stop())
        .await
        .expect("every role stopped although a live client was connected");
    assert!(sse.ended(WAIT).await, "the stream was closed");
}
