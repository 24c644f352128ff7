//! The `clickhouse` crate's typed RowBinary insert beside the sink's JSONEachRow lines over
//! `reqwest`: the same earning rows, the same batch size, each timed from the decoded
//! `EarningEvent`s to ClickHouse's answer (row building included), each into a database of
//! its own. Issue 14 asked for this measurement before choosing a client.
use chrono::{DateTime, Utc};
use platform::clickhouse::Clickhouse;
use platform::config::ClickhouseConfig;
use schemas::EarningEvent;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// One `earning_events` row in RowBinary: the table's columns in order, `Decimal(18, 2)` as
/// its Int64 of paise, `DateTime` as seconds.
#[derive(clickhouse::Row, serde::Serialize)]
struct EarningRow {
    #[serde(with = "clickhouse::serde::uuid")]
    event_id: Uuid,
    #[serde(with = "clickhouse::serde::uuid")]
    purchase_id: Uuid,
    #[serde(with = "clickhouse::serde::uuid")]
    shop_id: Uuid,
    #[serde(with = "clickhouse::serde::uuid")]
    beneficiary_id: Uuid,
    #[serde(with = "clickhouse::serde::uuid")]
    source_user_id: Uuid,
    #[serde(with = "clickhouse::serde::uuid")]
    leg_user_id: Uuid,
    level: u8,
    kind: &'static str,
    amount: i64,
    plan_version: u32,
    #[serde(with = "clickhouse::serde::chrono::datetime")]
    created_at: DateTime<Utc>,
}

impl EarningRow {
    fn of(e: &EarningEvent) -> anyhow::Result<Self> {
        let paise = e.amount.as_decimal();
        anyhow::ensure!(paise.scale() == 2, "an amount not at scale 2: {paise}");
        Ok(EarningRow {
            event_id: e.earning_id,
            purchase_id: e.purchase_id,
            shop_id: e.shop_id.as_uuid(),
            beneficiary_id: e.beneficiary_id.as_uuid(),
            source_user_id: e.source_user_id.as_uuid(),
            leg_user_id: e.leg_user_id.as_uuid(),
            level: e.level,
            kind: e.kind.as_str(),
            amount: i64::try_from(paise.mantissa())?,
            plan_version: e.plan_version,
            created_at: e.created_at,
        })
    }
}

/// JSONEachRow lines (`warehouse::rows::earning`) posted with `platform::clickhouse`.
pub(super) async fn json_each_row(
    config: &ClickhouseConfig,
    events: &[EarningEvent],
    batch: usize,
) -> anyhow::Result<Duration> {
    let ch = Clickhouse::new(config)?;
    warehouse::migrate(config).await?;
    let started = Instant::now();
    for chunk in events.chunks(batch.max(1)) {
        let lines: Vec<String> = chunk.iter().map(warehouse::rows::earning).collect();
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        ch.insert("earning_events", &lines).await?;
    }
    Ok(started.elapsed())
}

/// The same rows through `clickhouse::Client::insert` (RowBinary, LZ4 or not, no schema
/// lookup: ClickHouse 18.16 has no `RowBinaryWithNamesAndTypes` for the crate's validation).
pub(super) async fn row_binary(
    config: &ClickhouseConfig,
    events: &[EarningEvent],
    batch: usize,
    lz4: bool,
) -> anyhow::Result<Duration> {
    warehouse::migrate(config).await?;
    let compression = if lz4 {
        clickhouse::Compression::Lz4
    } else {
        clickhouse::Compression::None
    };
    let client = clickhouse::Client::default()
        .with_url(config.url.trim_end_matches('/'))
        .with_database(&config.database)
        .with_compression(compression)
        .with_validation(false);
    let started = Instant::now();
    for chunk in events.chunks(batch.max(1)) {
        let mut insert = client.insert::<EarningRow>("earning_events").await?;
        for e in chunk {
            insert.write(&EarningRow::of(e)?).await?;
        }
        insert.end().await?;
    }
    Ok(started.elapsed())
}

/// The distinct rows of `earning_events` in `config`'s database: their count and a hash of
/// every column of each (`FINAL`: rounds insert the same ids again, which the
/// ReplacingMergeTree folds). Both clients must have stored the same rows.
pub(super) async fn stored(config: &ClickhouseConfig) -> anyhow::Result<String> {
    let ch = Clickhouse::new(config)?;
    let sql = format!(
        "SELECT count(), sum(abs(amount)), groupBitXor(cityHash64(toString(event_id), toString(purchase_id), \
         toString(shop_id), toString(beneficiary_id), toString(source_user_id), toString(leg_user_id), \
         level, kind, toString(amount), plan_version, toString(created_at))) FROM {} FINAL",
        ch.table("earning_events")
    );
    Ok(ch.lines(&sql).await?.join("\n"))
}
