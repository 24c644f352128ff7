//! `referral bench warehouse`: the ClickHouse sink catching up on a backlog. N entries are
//! stored on the EARNINGS stream first (arrays of 1,000 on `ledger.entries`, as the
//! processor announces its batches), then the sink (`warehouse::run`, as `referral all`
//! runs it) is started and timed until ClickHouse holds every row; the baseline is the
//! same rows inserted straight into ClickHouse, in the sink's batch size, in this process,
//! as JSONEachRow (what the sink sends) and as RowBinary through the `clickhouse` crate.
use super::warehouse_rowbinary as rowbinary;
use platform::clickhouse::Clickhouse;
use platform::nats::Subjects;
use platform::Config;
use schemas::UserId;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(clap::Args, Debug)]
pub struct WarehouseArgs {
    /// Entries in the backlog.
    #[arg(long, default_value_t = 200_000)]
    pub rows: usize,
    /// Entries ClickHouse already holds when the sink starts (written by the server
    /// itself, spread over the day before): the sink's cost against a large table.
    #[arg(long, default_value_t = 0)]
    pub stored: usize,
    /// Time only the sink (no straight-insert baselines, so no ratio).
    #[arg(long)]
    pub sink_only: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

const ENTRIES_PER_MESSAGE: usize = 1_000;
/// The backlog's entries are stamped this many a second: the processor at the issue's
/// 20,000 purchases/s, two entries each.
const BACKLOG_ENTRIES_PER_SEC: usize = 40_000;
/// Rows per server-side insert of the already-stored rows (one block each).
const STORED_ROWS_PER_INSERT: usize = 1_000_000;
/// Rounds of each straight insert (JSONEachRow, RowBinary with and without LZ4).
const INSERT_ROUNDS: usize = 3;

/// Runs on scratch state: its own Postgres database, stream prefix and ClickHouse
/// databases, all removed after.
pub(super) async fn run(
    mut config: Config,
    args: &WarehouseArgs,
    interrupt: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let db = format!("referral_bench_{tag}");
    config.database.url = super::database_url(&config, &db)?;
    config.nats.prefix = format!("bench{tag}");
    config.clickhouse.enabled = true;
    config.clickhouse.database = format!("bench_{tag}");
    let mut raw = config.clickhouse.clone();
    raw.database = format!("bench_{tag}_raw");
    let mut binary = config.clickhouse.clone();
    binary.database = format!("bench_{tag}_rowbinary");
    let mut plain = config.clickhouse.clone();
    plain.database = format!("bench_{tag}_rowbinary_plain");
    let measured = measure(&config, [&raw, &binary, &plain], args);
    let result = super::until(interrupt, measured).await;
    for database in [&config.clickhouse, &raw, &binary, &plain] {
        if let Ok(ch) = Clickhouse::new(database) {
            let _ = ch
                .execute(&format!("DROP DATABASE IF EXISTS {}", ch.database()))
                .await;
        }
    }
    super::cleanup(&config, Some(&db)).await;
    result
}

async fn measure(
    config: &Config,
    straight: [&platform::config::ClickhouseConfig; 3],
    args: &WarehouseArgs,
) -> anyhow::Result<()> {
    platform::db::create_and_migrate(&config.database).await?;
    let js = async_nats::jetstream::new(platform::nats::connect(&config.nats).await?);
    platform::nats::ensure_streams(&js, &config.nats).await?;
    let subjects = Subjects::new(&config.nats.prefix);
    let payloads = entry_arrays(args.rows)?;
    let baselines = if args.sink_only {
        None
    } else {
        Some(straight_inserts(config, straight, &payloads).await?)
    };
    let ch = Clickhouse::new(&config.clickhouse)?;
    store_before(config, &ch, args.stored).await?;
    let started = Instant::now();
    for p in &payloads {
        js.publish(subjects.ledger("entries"), p.clone().into())
            .await?
            .await?;
    }
    let backlog = started.elapsed();

    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let sink = tokio::spawn(warehouse::run(config.clone(), shutdown.clone()));
    let caught_up = wait_for_rows(&ch, args.stored + args.rows).await;
    let sink_time = started.elapsed();
    shutdown.cancel();
    let _ = sink.await;
    caught_up?;
    report(config, args, backlog, baselines, sink_time)
}

/// The same rows inserted straight into three databases, interleaved rounds, the median
/// of each (ClickHouse's own pace varies run to run): JSONEachRow, RowBinary + LZ4, and
/// RowBinary uncompressed; then checks all three hold the same rows.
async fn straight_inserts(
    config: &Config,
    [raw, binary, plain]: [&platform::config::ClickhouseConfig; 3],
    payloads: &[Vec<u8>],
) -> anyhow::Result<[Duration; 3]> {
    let events = payloads
        .iter()
        .map(|p| serde_json::from_slice::<Vec<schemas::EarningEvent>>(p))
        .collect::<Result<Vec<_>, _>>()?
        .concat();
    let batch = config.clickhouse.batch_max_rows;
    let mut rounds: [Vec<Duration>; 3] = Default::default();
    for _ in 0..INSERT_ROUNDS {
        rounds[0].push(rowbinary::json_each_row(raw, &events, batch).await?);
        rounds[1].push(rowbinary::row_binary(binary, &events, batch, true).await?);
        rounds[2].push(rowbinary::row_binary(plain, &events, batch, false).await?);
    }
    let json_rows = rowbinary::stored(raw).await?;
    for db in [binary, plain] {
        let binary_rows = rowbinary::stored(db).await?;
        anyhow::ensure!(
            json_rows == binary_rows,
            "RowBinary stored other rows than JSONEachRow: {binary_rows} against {json_rows}"
        );
    }
    Ok(rounds.map(|mut r| {
        r.sort();
        r[r.len() / 2]
    }))
}

/// `rows` entries already in ClickHouse, as if stored over the day before, through the
/// sink's own schema (so every view, the rollups included, is fed as in production).
async fn store_before(config: &Config, ch: &Clickhouse, rows: usize) -> anyhow::Result<()> {
    if rows == 0 {
        return Ok(());
    }
    warehouse::migrate(&config.clickhouse).await?;
    let mut left = rows;
    while left > 0 {
        let n = left.min(STORED_ROWS_PER_INSERT);
        ch.execute(&format!(
            "INSERT INTO {} SELECT generateUUIDv4(), generateUUIDv4(), generateUUIDv4(), \
             generateUUIDv4(), generateUUIDv4(), generateUUIDv4(), 1, 'earning', \
             toDecimal64(1, 2), 1, now() - 86400 + (number % 86400) FROM numbers({n})",
            ch.table("earning_events")
        ))
        .await?;
        left -= n;
    }
    Ok(())
}

fn report(
    config: &Config,
    args: &WarehouseArgs,
    backlog: Duration,
    baselines: Option<[Duration; 3]>,
    sink_time: Duration,
) -> anyhow::Result<()> {
    let rate = |d: Duration| args.rows as f64 / d.as_secs_f64().max(1e-9);
    let ratio = |d: Duration| d.as_secs_f64() / sink_time.as_secs_f64().max(1e-9);
    let report = serde_json::json!({
        "rows": args.rows,
        "stored_before": args.stored,
        "backlog_stored_per_sec": rate(backlog),
        "baseline_insert_per_sec": baselines.map(|b| rate(b[0])),
        "rowbinary_lz4_insert_per_sec": baselines.map(|b| rate(b[1])),
        "rowbinary_uncompressed_insert_per_sec": baselines.map(|b| rate(b[2])),
        "sink_caught_up_per_sec": rate(sink_time),
        "sink_caught_up_secs": sink_time.as_secs_f64(),
        "ratio": baselines.map(|b| ratio(b[0])),
        "batch_max_rows": config.clickhouse.batch_max_rows,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "referral bench warehouse: a backlog of {} entries, {} already stored",
        args.rows, args.stored
    );
    println!(
        "  backlog stored on the stream       {:>10.0} rows/s",
        rate(backlog)
    );
    if let Some([json, lz4, plain]) = baselines {
        println!(
            "  baseline: straight INSERTs          {:>10.0} rows/s   1.00  (JSONEachRow, reqwest)",
            rate(json)
        );
        for (what, took) in [("LZ4 ", lz4), ("none", plain)] {
            println!(
                "  straight INSERTs, RowBinary, {what}  {:>10.0} rows/s   {:.2}  (the clickhouse crate)",
                rate(took),
                json.as_secs_f64() / took.as_secs_f64().max(1e-9)
            );
        }
    }
    println!(
        "  sink from the stream, caught up     {:>10.0} rows/s   {}  ({:.1} s)",
        rate(sink_time),
        baselines.map_or("-".to_owned(), |b| format!("{:.2}", ratio(b[0]))),
        sink_time.as_secs_f64()
    );
    Ok(())
}

/// `rows` entries as JSON arrays, the shape the processor publishes, stamped as a ledger
/// writing `BACKLOG_ENTRIES_PER_SEC` would have over the time the backlog took to build.
fn entry_arrays(rows: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    let beneficiaries: Vec<UserId> = (0..64).map(|_| UserId::new()).collect();
    let per_sec = BACKLOG_ENTRIES_PER_SEC;
    let start = chrono::Utc::now() - chrono::Duration::seconds((rows / per_sec) as i64 + 1);
    let mut out = Vec::new();
    let mut made = 0;
    while made < rows {
        let n = ENTRIES_PER_MESSAGE.min(rows - made);
        let entries: Vec<schemas::EarningEvent> = (made..made + n)
            .map(|i| {
                let user = beneficiaries[i % beneficiaries.len()];
                let at = start + chrono::Duration::seconds((i / per_sec) as i64);
                super::announced_entry(user, (i / beneficiaries.len() + 1) as u64, at)
            })
            .collect();
        out.push(serde_json::to_vec(&entries)?);
        made += n;
    }
    Ok(out)
}

/// Polls until ClickHouse holds `rows` earning rows (bounded: ten minutes).
async fn wait_for_rows(ch: &Clickhouse, rows: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let sql = format!("SELECT count() FROM {}", ch.table("earning_events"));
    loop {
        let count: usize = match ch.lines(&sql).await {
            Ok(lines) => lines.first().and_then(|l| l.parse().ok()).unwrap_or(0),
            Err(_) => 0, // the sink has not created the schema yet
        };
        if count >= rows {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the sink stored {count} of {rows} rows in ten minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
