//! Two processor batches that each pay one user and reverse the other's earning lock both
//! users' totals in one acquisition, in id order. Locked purchase by purchase and then
//! refund by refund, the first batch held u1 and wanted u2 while the second held u2 and
//! wanted u1: Postgres broke the deadlock by failing one (retried, so no money moved
//! wrongly, but both workers stalled a second each time).
use e2e::{eventually, TestApp};
use processor::ledger::{self, Delivered, Item, Rules};
use schemas::messages::{PurchaseMessage, RefundMessage};
use schemas::{Money, OrderId, RefundId, UserId};
use sqlx::Connection;

fn purchase(app: &TestApp, order: &str, user: UserId, seq: u64) -> Delivered {
    let m = PurchaseMessage {
        purchase_id: uuid::Uuid::now_v7(),
        shop_id: app.shop_id,
        order_id: OrderId::parse(order).unwrap(),
        user_id: user,
        amount: Money::parse("2000.00").unwrap(),
        profit: Money::parse("400.00").unwrap(),
        currency: "INR".into(),
        occurred_at: chrono::Utc::now(),
        body_hash: "0".repeat(64),
    };
    delivered(seq, serde_json::to_vec(&m).unwrap(), Item::Purchase(m))
}

fn refund(app: &TestApp, id: &str, order: &str, seq: u64) -> Delivered {
    let r = RefundMessage {
        shop_id: app.shop_id,
        refund_id: RefundId::parse(id).unwrap(),
        order_id: OrderId::parse(order).unwrap(),
        amount: Money::parse("2000.00").unwrap(),
        received_at: chrono::Utc::now(),
    };
    delivered(seq, serde_json::to_vec(&r).unwrap(), Item::Refund(r))
}

fn delivered(stream_seq: u64, payload: Vec<u8>, item: Item) -> Delivered {
    Delivered {
        subject: "test".into(),
        stream_seq,
        index: 0,
        payload,
        item,
    }
}

#[tokio::test]
async fn batches_paying_and_reversing_crossed_users_do_not_deadlock_on_totals() {
    let app = TestApp::spawn().await;
    let (u1, u2) = (app.signup(None).await, app.signup(None).await);
    let (c1, c2) = (app.signup(Some(u1)).await, app.signup(Some(u2)).await);
    for (order, buyer) in [("paid-u2", c2), ("paid-u1", c1)] {
        let r = app.purchase(order, buyer, "2000.00", Some("400.00")).await;
        assert_eq!(r.status(), reqwest::StatusCode::ACCEPTED);
    }
    eventually(|| app.settled(), |n| *n == 2).await;

    // Another session holds both refunds' ids, so each batch stops at its refund after
    // taking whatever totals it takes first.
    let mut other = sqlx::PgConnection::connect(app.config.database.url.as_str())
        .await
        .unwrap();
    let mut held = other.begin().await.unwrap();
    for (id, order) in [("undo-u2", "paid-u2"), ("undo-u1", "paid-u1")] {
        sqlx::query(
            "INSERT INTO refunds (shop_id, refund_id, order_id, amount, status, received_at)
             VALUES ($1, $2, $3, 1, 'pending', now())",
        )
        .bind(app.shop_id.as_uuid())
        .bind(id)
        .bind(order)
        .execute(&mut *held)
        .await
        .unwrap();
    }
    // Batch a pays u1 (c1 buys) and reverses u2's earning; batch b the other way round.
    let a = vec![
        purchase(&app, "a", c1, 1),
        refund(&app, "undo-u2", "paid-u2", 2),
    ];
    let b = vec![
        purchase(&app, "b", c2, 3),
        refund(&app, "undo-u1", "paid-u1", 4),
    ];
    let (graph, _) = processor::graph_sync::load(&app.pool, 1_000).await.unwrap();
    let rules = Rules {
        plan: &app.config.plan,
        // Enough buckets that the four orders' advisory locks do not serialize the batches.
        order_lock_buckets: 1 << 20,
    };
    let (pool, graph) = (&app.pool, &graph);
    let run_a = ledger::apply(pool, graph, rules, &a, Vec::new());
    let run_b = ledger::apply(pool, graph, rules, &b, Vec::new());
    let both = async {
        // Both batches wait (on the held refunds, or one on the other's totals) before the
        // refunds are let go.
        eventually(|| app.lock_waiters(), |n| *n == 2).await;
        held.rollback().await.unwrap();
    };
    let (a, b, ()) = tokio::join!(run_a, run_b, both);
    let (a, b) = (a.map(|_| ()), b.map(|_| ()));
    assert!(a.is_ok() && b.is_ok(), "a: {a:?}, b: {b:?}");
    // Each paid 20.00 and lost the earlier 20.00.
    assert_eq!(app.total(u1).await, "20.00");
    assert_eq!(app.total(u2).await, "20.00");
    app.assert_verified().await;
}
