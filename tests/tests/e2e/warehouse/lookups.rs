//! The sink asks a keys table ordered by `(time, id)` which ids of a batch are stored,
//! bounded by the batch's seconds, the ids sent as external data: one lookup covers up to
//! 25,000 ids, and it reads the granules of those seconds, not the table.
use super::seed::with_warehouse;
use chrono::{DateTime, Duration, Utc};
use e2e::TestApp;
use platform::clickhouse::Clickhouse;
use platform::clickhouse_lookup::Key;
use schemas::{EarningEvent, EntryKind, Money, ShopId, UserId};
use uuid::Uuid;
use warehouse::rows::{EARNING_EVENTS, EARNING_EVENT_KEYS};

pub(super) fn entry(i: usize, at: DateTime<Utc>) -> EarningEvent {
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
        created_at: at,
    }
}

pub(super) async fn store(ch: &Clickhouse, entries: &[EarningEvent]) {
    let lines: Vec<String> = entries.iter().map(warehouse::rows::earning).collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    ch.insert(EARNING_EVENTS, &lines).await.unwrap();
}

fn keys(entries: &[EarningEvent]) -> Vec<Key> {
    entries
        .iter()
        .map(|e| Key::new(e.created_at, e.earning_id))
        .collect()
}

/// An application with a warehouse whose schema is applied, and a client to it.
async fn migrated() -> (TestApp, Clickhouse) {
    let app = TestApp::spawn_with(with_warehouse).await;
    warehouse::migrate(&app.config.clickhouse).await.unwrap();
    let ch = Clickhouse::new(&app.config.clickhouse).unwrap();
    (app, ch)
}

#[tokio::test]
async fn one_lookup_finds_a_whole_batch_of_stored_ids_and_no_others() {
    let (_app, ch) = migrated().await;
    let now = Utc::now();
    let stored: Vec<EarningEvent> = (0..30_000).map(|i| entry(i, now)).collect();
    store(&ch, &stored).await;

    // Two lookups: 25,000 ids (the large query), then the rest with ids never stored.
    let unknown: Vec<Key> = (0..7).map(|_| Key::new(now, Uuid::new_v4())).collect();
    let mut asked = keys(&stored);
    asked.extend(&unknown);
    let found = ch.existing_ids(EARNING_EVENT_KEYS, &asked).await.unwrap();
    assert_eq!(found.len(), stored.len());
    assert!(stored.iter().all(|e| found.contains(&e.earning_id)));
    assert!(unknown.iter().all(|k| !found.contains(&k.id)));
}

#[tokio::test]
async fn a_lookup_reads_the_seconds_of_its_batch_not_the_table() {
    let (_app, ch) = migrated().await;
    let now = Utc::now();
    let old: Vec<EarningEvent> = (0..60_000)
        .map(|i| entry(i, now - Duration::days(1)))
        .collect();
    let batch: Vec<EarningEvent> = (0..1_000).map(|i| entry(i, now)).collect();
    store(&ch, &old).await;
    store(&ch, &batch).await;

    // A batch with one old row redelivered among new ones: every stored id is found.
    let mut asked = keys(&batch);
    asked.push(Key::new(old[5].created_at, old[5].earning_id));
    let found = ch.existing_ids(EARNING_EVENT_KEYS, &asked).await.unwrap();
    assert_eq!(found.len(), batch.len() + 1);

    // The batch's lookup reads under a third of the 61,000 rows; the same ids asked of
    // earning_events (ordered by random ids) touch every granule and pass the bound.
    let bounded = ch.clone().with_setting("max_rows_to_read", "20000");
    let found = bounded
        .existing_ids(EARNING_EVENT_KEYS, &keys(&batch))
        .await
        .unwrap();
    assert_eq!(found.len(), batch.len());
    let list: Vec<String> = batch
        .iter()
        .map(|e| format!("'{}'", e.earning_id))
        .collect();
    let unbounded = format!(
        "SELECT toString(event_id) FROM {} WHERE event_id IN ({})",
        ch.table(EARNING_EVENTS),
        list.join(",")
    );
    let refused = bounded.lines(&unbounded).await.unwrap_err();
    assert_eq!(refused.code(), Some(158), "{refused}"); // TOO_MANY_ROWS
}

#[tokio::test]
async fn an_install_from_before_the_keys_tables_gets_its_stored_ids_once() {
    let (app, ch) = migrated().await;
    let now = Utc::now();
    let stored: Vec<EarningEvent> = (0..500).map(|i| entry(i, now)).collect();
    store(&ch, &stored).await;
    let rollup = format!(
        "SELECT sum(entries) FROM {}",
        ch.table("earnings_daily_by_level")
    );
    assert_eq!(ch.lines(&rollup).await.unwrap(), vec!["500"]);

    // As an install from before 0016 was: rows stored, no view feeding the keys table.
    let keys_table = ch.table(EARNING_EVENT_KEYS.table);
    ch.execute(&format!("DROP TABLE {}", ch.table("earning_event_keys_mv")))
        .await
        .unwrap();
    ch.execute(&format!("TRUNCATE TABLE {keys_table}"))
        .await
        .unwrap();
    let count = format!("SELECT count() FROM {keys_table}");
    assert_eq!(ch.lines(&count).await.unwrap(), vec!["0"]);

    // The next start copies the ids once; the one after copies nothing; rollups unmoved.
    for _ in 0..2 {
        warehouse::migrate(&app.config.clickhouse).await.unwrap();
        assert_eq!(ch.lines(&count).await.unwrap(), vec!["500"]);
    }
    let found = ch
        .existing_ids(EARNING_EVENT_KEYS, &keys(&stored))
        .await
        .unwrap();
    assert_eq!(found.len(), stored.len());
    assert_eq!(ch.lines(&rollup).await.unwrap(), vec!["500"]);

    // And the view is back: a new row's id is in the keys table as it is stored.
    let later = [entry(0, now)];
    store(&ch, &later).await;
    assert_eq!(
        ch.existing_ids(EARNING_EVENT_KEYS, &keys(&later))
            .await
            .unwrap()
            .len(),
        1
    );
}
