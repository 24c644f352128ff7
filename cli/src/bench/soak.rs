//! `referral bench soak`: the whole system for minutes under a mixed workload (signups,
//! single and batch purchases, shops' retries, partial refunds, deactivations and
//! reactivations, re-parenting), with a fault injected on a schedule: every
//! `--fault-every` seconds every database connection of the instance is ended. At the
//! end it waits for everything accepted to settle and checks: each accepted order paid
//! once, no refund left pending, `verify` 0 differences, no unexpected answer (a 5xx
//! other than a 503); memory (RSS of this process: the instance and the load) is sampled
//! throughout, and the last quarter's mean is compared with the first's.
mod world;

use futures::StreamExt;
use platform::auth::{Authenticator, Principal};
use platform::Config;
use rand::SeedableRng;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use world::{Op, World};

#[derive(clap::Args, Debug)]
pub struct SoakArgs {
    /// How long the load runs (fractions allowed: 0.2 is 12 s).
    #[arg(long, default_value_t = 10.0)]
    pub minutes: f64,
    /// Requests per second (a batch of 20 purchases counts as one).
    #[arg(long, default_value_t = 100)]
    pub rate: u64,
    /// Seconds between faults (every database connection of the instance ended).
    #[arg(long, default_value_t = 20)]
    pub fault_every: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Users signed up before the load starts.
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

const RSS_EVERY: Duration = Duration::from_secs(2);

struct Client {
    http: reqwest::Client,
    base: String,
    shop: String,
    admin: String,
}

pub(super) async fn measure(config: &Config, base: &str, args: &SoakArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.minutes > 0.0
            && args.rate > 0
            && args.fault_every > 0
            && args.connections > 0
            && args.users > 0,
        "--minutes, --rate, --fault-every, --connections and --users must be positive"
    );
    let pool = platform::db::connect(&config.database).await?;
    let (shop_id, shop) = crate::shops::create(&pool, "soak").await?;
    let admin = Authenticator::new(&config.auth, pool.clone()).issue(Principal::Admin)?;
    let client = Arc::new(Client {
        http: reqwest::Client::new(),
        base: base.to_owned(),
        shop,
        admin,
    });
    let users = seed_users(&client, args.users).await?;
    let world = Arc::new(Mutex::new(World::new(
        rand::rngs::StdRng::seed_from_u64(args.seed),
        users,
    )));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.minutes * 60.0);
    let rss = tokio::spawn(sample_rss(deadline));
    let faults = tokio::spawn(faults(
        pool.clone(),
        deadline,
        Duration::from_secs(args.fault_every),
    ));
    drive(&client, &world, deadline, args).await;
    let ended = faults.await??;
    let samples = rss.await?;
    let load_secs = started.elapsed().as_secs_f64();
    let world = Arc::try_unwrap(world).map_err(|_| anyhow::anyhow!("requests still in flight"))?;
    let world = world
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a request panicked"))?;
    let settle = Instant::now();
    settled(&pool, shop_id, &world).await?;
    let report = Report::new(
        &world,
        &samples,
        ended,
        load_secs,
        settle.elapsed().as_secs_f64(),
    );
    let verify = processor::verify::verify(&pool).await?;
    report.print(args.json, verify.differences.len());
    anyhow::ensure!(
        verify.differences.is_empty(),
        "verify: {:#?}",
        verify.differences
    );
    let unexpected: u64 = world.answers.values().map(|a| a.unexpected).sum();
    anyhow::ensure!(
        unexpected == 0,
        "{unexpected} unexpected answers (see the table)"
    );
    Ok(())
}

/// A forest of `n` users: every eighth a root, the others under one of the earlier ones.
async fn seed_users(client: &Client, n: usize) -> anyhow::Result<Vec<schemas::UserId>> {
    let (http, base, shop) = (&client.http, client.base.as_str(), client.shop.as_str());
    let mut users = Vec::with_capacity(n);
    for i in 0..n {
        let referrer = (i % 8 != 0).then(|| users[(i * 7919) % users.len()]);
        match super::signup(http, base, shop, referrer).await {
            Ok(u) => users.push(u),
            Err(_) => users.push(super::signup(http, base, shop, None).await?),
        }
    }
    Ok(users)
}

/// `args.rate` requests a second until `deadline`, `args.connections` at a time.
async fn drive(
    client: &Arc<Client>,
    world: &Arc<Mutex<World>>,
    deadline: Instant,
    args: &SoakArgs,
) {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ops = futures::stream::unfold(tick, move |mut tick| async move {
        tick.tick().await;
        (Instant::now() < deadline).then_some(((), tick))
    });
    ops.for_each_concurrent(args.connections, |()| {
        let (client, world) = (client.clone(), world.clone());
        async move {
            let op = lock(&world).next_op();
            let (status, stored) = send(&client, &op).await;
            lock(&world).record(&op, status, &stored);
        }
    })
    .await;
}

fn lock(world: &Mutex<World>) -> std::sync::MutexGuard<'_, World> {
    world
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sends one request; returns its status and the orders it stored (a refused or failed
/// request stores none; a batch names the items it accepted).
async fn send(c: &Client, op: &Op) -> (u16, Vec<String>) {
    let bearer = if op.admin { &c.admin } else { &c.shop };
    let mut request = c
        .http
        .request(op.method.clone(), format!("{}{}", c.base, op.path))
        .bearer_auth(bearer);
    if let Some(body) = &op.body {
        request = request.json(body);
    }
    let Ok(response) = request.send().await else {
        return (599, Vec::new()); // no answer at all: counted as unexpected
    };
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let stored = match op.kind {
        "batch" if status == 202 => body["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r.get("accepted").is_some())
            .filter_map(|r| r["index"].as_u64())
            .filter_map(|i| op.orders.get(i as usize).map(|(o, _)| o.clone()))
            .collect(),
        "purchase" if status == 202 => op.orders.iter().map(|(o, _)| o.clone()).collect(),
        "signup" if status == 201 => body["id"].as_str().map(str::to_owned).into_iter().collect(),
        _ => Vec::new(),
    };
    (status, stored)
}

/// Every `every` until `deadline`, ends every connection to the instance's database.
async fn faults(pool: sqlx::PgPool, deadline: Instant, every: Duration) -> anyhow::Result<u64> {
    let mut ended = 0;
    loop {
        tokio::time::sleep(every).await;
        if Instant::now() >= deadline {
            return Ok(ended);
        }
        let n: i64 = sqlx::query_scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_one(&pool)
        .await?;
        ended += u64::try_from(n).unwrap_or_default();
    }
}

async fn sample_rss(deadline: Instant) -> Vec<u64> {
    let mut samples = Vec::new();
    while Instant::now() < deadline {
        samples.extend(super::live::rss_kib());
        tokio::time::sleep(RSS_EVERY).await;
    }
    samples
}

/// Waits until as many purchases as accepted orders settled and no refund is pending, then
/// checks they are exactly the accepted orders, each once.
async fn settled(pool: &sqlx::PgPool, shop: schemas::ShopId, world: &World) -> anyhow::Result<()> {
    let want = world.accepted_count() as i64;
    let limit = Instant::now() + Duration::from_secs(300);
    loop {
        let (paid, pending): (i64, i64) = sqlx::query_as(
            "SELECT count(*), (SELECT count(*) FROM refunds WHERE status = 'pending')
             FROM purchases WHERE shop_id = $1",
        )
        .bind(shop.as_uuid())
        .fetch_one(pool)
        .await?;
        if paid >= want && pending == 0 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < limit,
            "{paid} of {want} settled, {pending} refunds pending after 300 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let orders: Vec<String> =
        sqlx::query_scalar("SELECT order_id FROM purchases WHERE shop_id = $1")
            .bind(shop.as_uuid())
            .fetch_all(pool)
            .await?;
    let mut seen = std::collections::HashSet::with_capacity(orders.len());
    for order in &orders {
        let number = world::order_number(order);
        anyhow::ensure!(
            number.is_some_and(|n| world.was_accepted(n)),
            "{order} settled but was not accepted"
        );
        anyhow::ensure!(seen.insert(order), "{order} was settled twice");
    }
    anyhow::ensure!(
        orders.len() as i64 == want,
        "{} settled, {want} accepted",
        orders.len()
    );
    Ok(())
}

#[derive(serde::Serialize)]
struct Report {
    load_secs: f64,
    settle_secs: f64,
    accepted_orders: usize,
    users: usize,
    connections_ended: u64,
    answers: std::collections::BTreeMap<&'static str, world::Answers>,
    /// Mean RSS of each quarter of the load, MiB.
    rss_quarters_mib: Vec<f64>,
    /// Last quarter over first.
    rss_growth: f64,
}

impl Report {
    fn new(world: &World, rss: &[u64], ended: u64, load_secs: f64, settle_secs: f64) -> Report {
        let mean = |s: &[u64]| s.iter().sum::<u64>() as f64 / s.len().max(1) as f64 / 1024.0;
        let quarters: Vec<f64> = rss.chunks(rss.len().div_ceil(4).max(1)).map(mean).collect();
        let first = quarters.first().copied().unwrap_or_default();
        let last = quarters.last().copied().unwrap_or_default();
        Report {
            load_secs,
            settle_secs,
            accepted_orders: world.accepted_count(),
            users: world.users.len(),
            connections_ended: ended,
            answers: world.answers.clone(),
            rss_quarters_mib: quarters,
            rss_growth: if first > 0.0 { last / first } else { 0.0 },
        }
    }

    fn print(&self, json: bool, differences: usize) {
        if json {
            let mut v = serde_json::to_value(self).unwrap_or_default();
            v["verify_differences"] = differences.into();
            println!("{v}");
            return;
        }
        println!(
            "referral bench soak: {:.0} s of load, settled {:.1} s after",
            self.load_secs, self.settle_secs
        );
        println!(
            "  {:<10} {:>8} {:>8} {:>12} {:>11}",
            "request", "ok", "refused", "unavailable", "unexpected"
        );
        for (kind, a) in &self.answers {
            println!(
                "  {kind:<10} {:>8} {:>8} {:>12} {:>11}",
                a.ok, a.refused, a.unavailable, a.unexpected
            );
        }
        println!(
            "  accepted orders {}, users {}, database connections ended {}",
            self.accepted_orders, self.users, self.connections_ended
        );
        let quarters: Vec<String> = self
            .rss_quarters_mib
            .iter()
            .map(|q| format!("{q:.1}"))
            .collect();
        println!(
            "  RSS (instance + load) by quarter of the load: {} MiB (last ÷ first {:.2})",
            quarters.join(" → "),
            self.rss_growth
        );
        println!("  verify: {differences} differences");
    }
}
