//! The sink's id lookup asks for a whole batch at once: a query of 25,000 quoted ids is
//! about 1 MB, past ClickHouse's default `max_query_size`, so the lookup must raise it.
use super::seed::with_warehouse;
use chrono::Utc;
use e2e::TestApp;
use platform::clickhouse::Clickhouse;
use schemas::{EarningEvent, EntryKind, Money, ShopId, UserId};
use uuid::Uuid;

fn entry(i: usize) -> EarningEvent {
    EarningEvent {
        earning_id: Uuid::new_v4(),
        seq: i as u64 + 1,
        purchase_id: Uuid::new_v4(),
        shop_id: ShopId(Uuid::nil()),
        beneficiary_id: UserId::new(),
        source_user_id: UserId::new(),
        leg_user_id: UserId::new(),
        level: 1,
        direct: true,
        kind: EntryKind::Earning,
        amount: Money::parse("1.00").unwrap(),
        total: Money::parse("1.00").unwrap(),
        plan_version: 1,
        created_at: Utc::now(),
    }
}

#[tokio::test]
async fn one_lookup_finds_a_whole_batch_of_stored_ids_and_no_others() {
    let app = TestApp::spawn_with(with_warehouse).await;
    warehouse::migrate(&app.config.clickhouse).await.unwrap();
    let ch = Clickhouse::new(&app.config.clickhouse).unwrap();
    let stored: Vec<EarningEvent> = (0..30_000).map(entry).collect();
    let lines: Vec<String> = stored.iter().map(warehouse::rows::earning).collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    ch.insert("earning_events", &lines).await.unwrap();

    // Two lookups: 25,000 ids (the large query), then the rest with ids never stored.
    let unknown: Vec<Uuid> = (0..7).map(|_| Uuid::new_v4()).collect();
    let asked: Vec<Uuid> = stored
        .iter()
        .map(|e| e.earning_id)
        .chain(unknown.iter().copied())
        .collect();
    let found = ch
        .existing_ids("earning_events", "event_id", &asked)
        .await
        .unwrap();
    assert_eq!(found.len(), stored.len());
    assert!(stored.iter().all(|e| found.contains(&e.earning_id)));
    assert!(unknown.iter().all(|id| !found.contains(id)));
}
