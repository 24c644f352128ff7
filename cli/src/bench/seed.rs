//! `referral bench seed`: a realistic ledger in bulk (COPY), for measuring at scale. A
//! skewed referral tree (at most 8 direct referrals each; the oldest users fill first, so
//! a few legs are large and many small), purchases from buyers skewed toward the top of
//! the tree (so some users have very many entries), entries exactly as the processor
//! would write them (the pure payout rule; `user_seq` and `balance_after` per
//! beneficiary), then balances, totals and report rollups summed from the entries.
//! `referral verify` agrees with the result.
use anyhow::Context;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use platform::Config;
use processor::graph::Ancestor;
use rand::{rngs::StdRng, Rng, SeedableRng};
use schemas::UserId;
use serde::Serialize;
use sqlx::PgConnection;
use std::fmt::Write as _;
use std::time::Instant;
use uuid::Uuid;

#[derive(clap::Args, Debug, Clone)]
pub struct SeedArgs {
    /// Users in the referral tree.
    #[arg(long, default_value_t = 100_000)]
    pub users: usize,
    /// Ledger entries to write (purchases are added until there are this many).
    #[arg(long, default_value_t = 1_000_000)]
    pub entries: usize,
    /// The database to (re)create on the configured Postgres server.
    #[arg(long, default_value = "referral_scale")]
    pub database: String,
    /// Print one JSON document instead of a line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct Seeded {
    pub database: String,
    pub users: usize,
    pub purchases: usize,
    pub entries: usize,
    pub seconds: f64,
}

/// Purchases per COPY round trip.
const CHUNK_PURCHASES: usize = 20_000;
/// Days the purchases are spread over, ending now.
const SPAN_DAYS: i64 = 365;

pub async fn run(config: &Config, args: &SeedArgs) -> anyhow::Result<()> {
    let seeded = seed(config, args).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&seeded)?);
    } else {
        println!(
            "seeded {}: {} users, {} purchases, {} entries in {:.1} s",
            seeded.database, seeded.users, seeded.purchases, seeded.entries, seeded.seconds
        );
    }
    Ok(())
}

/// (Re)creates `args.database` and fills it; returns what it wrote.
pub async fn seed(config: &Config, args: &SeedArgs) -> anyhow::Result<Seeded> {
    anyhow::ensure!(args.users >= 2, "--users must be at least 2");
    let started = Instant::now();
    let url = super::database_url(config, &args.database)?;
    super::drop_database(config, &args.database).await?;
    let db = platform::config::DatabaseConfig {
        url,
        ..config.database.clone()
    };
    let pool = platform::db::create_and_migrate(&db).await?;
    processor::plans::register(&pool, &config.plan).await?;
    let mut conn = pool.acquire().await?;
    let mut rng = StdRng::seed_from_u64(13);
    let tree = Tree::generate(args.users, &mut rng);
    tree.copy(&mut conn).await?;
    let mut ledger = Ledger::new(&tree, &config.plan, args.entries);
    while ledger.entries < args.entries {
        ledger.copy_chunk(&mut conn, &mut rng).await?;
    }
    summarize(&mut conn).await?;
    Ok(Seeded {
        database: args.database.clone(),
        users: args.users,
        purchases: ledger.purchases,
        entries: ledger.entries,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn random_uuid(rng: &mut StdRng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.gen()).into_uuid()
}

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

async fn copy(conn: &mut PgConnection, statement: &str, rows: String) -> anyhow::Result<()> {
    let mut copy = conn.copy_in_raw(statement).await?;
    copy.send(rows.into_bytes()).await?;
    copy.finish().await.with_context(|| statement.to_owned())?;
    Ok(())
}

/// The referral tree: user 0 is the root; `parent[i] < i`.
struct Tree {
    ids: Vec<Uuid>,
    parent: Vec<u32>,
    children: Vec<u8>,
    created: DateTime<Utc>,
}

impl Tree {
    fn generate(n: usize, rng: &mut StdRng) -> Tree {
        let mut tree = Tree {
            ids: (0..n).map(|_| random_uuid(rng)).collect(),
            parent: vec![0; n],
            children: vec![0; n],
            created: Utc::now() - Duration::days(SPAN_DAYS + 1),
        };
        // Users who may still refer someone; picks lean toward the oldest.
        let mut open: Vec<u32> = vec![0];
        for i in 1..n {
            let k = ((open.len() as f64) * rng.gen::<f64>().powi(2)) as usize;
            let k = k.min(open.len() - 1);
            let p = open[k];
            tree.parent[i] = p;
            tree.children[p as usize] += 1;
            if tree.children[p as usize] == 8 {
                open.swap_remove(k);
            }
            open.push(i as u32);
        }
        tree
    }

    async fn copy(&self, conn: &mut PgConnection) -> anyhow::Result<()> {
        let at = at(self.created);
        for start in (0..self.ids.len()).step_by(200_000) {
            let end = (start + 200_000).min(self.ids.len());
            let (mut users, mut events) = (String::new(), String::new());
            for i in start..end {
                let referrer = match i {
                    0 => "\\N".to_owned(),
                    _ => self.ids[self.parent[i] as usize].to_string(),
                };
                let (id, n) = (self.ids[i], self.children[i]);
                writeln!(users, "{id}\t{referrer}\t{n}\t{at}")?;
                writeln!(events, "{}\t{id}\tcreated\t{referrer}\tactive\t{at}", i + 1)?;
            }
            copy(
                conn,
                "COPY users (id, referrer_id, direct_referrals, created_at) FROM STDIN",
                users,
            )
            .await?;
            copy(
                conn,
                "COPY user_events (seq, user_id, kind, referrer_id, status, at) FROM STDIN",
                events,
            )
            .await?;
        }
        sqlx::query("SELECT setval('user_events_seq_seq', $1)")
            .bind(self.ids.len() as i64)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Ancestors nearest first, at most `levels`, all active.
    fn ancestors(&self, buyer: usize, levels: usize) -> Vec<(usize, Ancestor)> {
        let mut out = Vec::with_capacity(levels);
        let mut at = buyer;
        while at != 0 && out.len() < levels {
            at = self.parent[at] as usize;
            let a = Ancestor {
                user_id: UserId(self.ids[at]),
                active: true,
            };
            out.push((at, a));
        }
        out
    }
}

mod ledger;
use ledger::Ledger;

/// Balances, totals and the report rollups, summed from the entries as migrations 0004 and 0008 do.
async fn summarize(conn: &mut PgConnection) -> anyhow::Result<()> {
    sqlx::raw_sql(
        "INSERT INTO balances (user_id, level, total, entries)
         SELECT beneficiary_id, level, sum(amount), count(*) FROM earnings GROUP BY 1, 2;
         INSERT INTO account_totals (user_id, total, entries)
         SELECT beneficiary_id, sum(amount), count(*) FROM earnings GROUP BY 1;
         INSERT INTO earnings_by_source (beneficiary_id, source_user_id, level, leg_user_id, total, entries)
         SELECT beneficiary_id, source_user_id, level, leg_user_id, sum(amount), count(*)
         FROM earnings GROUP BY 1, 2, 3, 4;
         INSERT INTO earnings_daily (beneficiary_id, day, total, entries, first_seq, last_seq)
         SELECT beneficiary_id, (created_at AT TIME ZONE 'UTC')::date, sum(amount), count(*),
                min(user_seq), max(user_seq)
         FROM earnings GROUP BY 1, 2;
         ANALYZE;",
    )
    .execute(&mut *conn)
    .await
    .context("summing the seeded entries")?;
    // As autovacuum does on a live database: the visibility map set, so the tree's level
    // reads are index-only scans (migration 0011). Apart: VACUUM runs outside a transaction.
    sqlx::raw_sql("VACUUM (ANALYZE) users")
        .execute(&mut *conn)
        .await
        .context("vacuuming the seeded users")?;
    Ok(())
}
