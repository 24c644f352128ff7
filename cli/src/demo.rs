//! `referral demo`: a demo referral tree and purchases sent over HTTP to a running
//! instance (in batches, within its rate limit), with progress bars, then the dashboard
//! URL and tokens to open it.
mod client;

use anyhow::Context;
use client::{describe, ShopClient};
use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use platform::auth::{Authenticator, Principal};
use platform::Config;
use rand::Rng;
use reqwest::StatusCode;
use schemas::{ShopId, UserId};
use serde_json::{json, Value};
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// The running instance (default: the configured api address).
    #[arg(long)]
    pub base_url: Option<String>,
    #[arg(long, default_value_t = 200)]
    pub users: usize,
    #[arg(long, default_value_t = 2000)]
    pub purchases: usize,
    /// Purchases per batch request (at most the server's `[http] max_batch_purchases`).
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
    /// Batch requests in flight at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// How often one request may be answered "later" (429, or 503 with Retry-After).
    #[arg(long, default_value_t = 30)]
    pub max_retries: u32,
}

pub async fn run(config: &Config, args: DemoArgs) -> anyhow::Result<()> {
    // The tokens printed at the end must be ones the server accepts.
    config.auth.check_secrets(&[])?;
    anyhow::ensure!(
        args.users >= 2,
        "--users must be at least 2 (a referrer and a buyer)"
    );
    let base = args
        .base_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.http.api_addr));
    ShopClient::new(&base, "", 0).ensure_reachable().await?;
    let pool = platform::db::connect(&config.database).await?;
    let (shop, key) = crate::shops::create(&pool, "demo shop").await?;
    eprintln!("demo: shop {shop} created");
    let client = ShopClient::new(&base, &key, args.max_retries);

    let started = Instant::now();
    let users = sign_up(&client, args.users).await?;
    send_purchases(&client, shop, &users, &args).await?;
    eprintln!("demo: done in {:.1}s", started.elapsed().as_secs_f64());

    let auth = Authenticator::new(&config.auth, pool);
    let root = users.first().copied().context("no users")?;
    println!("dashboard:   {}/", base.trim_end_matches('/'));
    println!("root user:   {root}");
    println!("user token:  {}", auth.issue(Principal::User(root))?);
    println!("admin token: {}", auth.issue(Principal::Admin)?);
    println!("shop key:    {key}");
    Ok(())
}

fn bar(len: usize, what: &'static str) -> ProgressBar {
    let style =
        ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} {rate:>8} ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key(
                "rate",
                |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0}/s", state.per_sec());
                },
            )
            .progress_chars("=> ");
    ProgressBar::new(len as u64)
        .with_style(style)
        .with_message(what)
}

/// A tree grown breadth-first: each user refers up to four others (within the plan's limit).
async fn sign_up(client: &ShopClient, n: usize) -> anyhow::Result<Vec<UserId>> {
    let progress = bar(n, "users");
    let mut users: Vec<UserId> = Vec::with_capacity(n);
    for i in 0..n {
        let referrer = i.checked_sub(1).map(|parent| users[parent / 4]);
        let created = client
            .post("/v1/users", &json!({ "referrer_id": referrer }))
            .await?;
        let id = created["id"]
            .as_str()
            .context("signup answered no id")?
            .parse()?;
        users.push(id);
        progress.inc(1);
    }
    progress.finish();
    eprintln!("demo: {n} users signed up");
    Ok(users)
}

async fn send_purchases(
    client: &ShopClient,
    shop: ShopId,
    users: &[UserId],
    args: &DemoArgs,
) -> anyhow::Result<()> {
    let mut rng = rand::thread_rng();
    let orders: Vec<Value> = (0..args.purchases)
        .map(|i| {
            let buyer = users[rng.gen_range(1..users.len())];
            let amount_paise: i64 = rng.gen_range(50_000..500_000);
            let profit_paise = amount_paise * rng.gen_range(10..40) / 100;
            json!({
                "order_id": format!("demo-{}-{i}", shop.as_uuid().simple()),
                "user_id": buyer,
                "amount": paise(amount_paise),
                "profit": paise(profit_paise),
            })
        })
        .collect();
    let progress = bar(orders.len(), "purchases");
    let started = Instant::now();
    futures::stream::iter(orders.chunks(args.batch_size.max(1)))
        .map(|chunk| send_batch(client, chunk))
        .buffer_unordered(args.concurrency.max(1))
        .try_for_each(|n| {
            progress.inc(n as u64);
            futures::future::ready(Ok(()))
        })
        .await?;
    progress.finish();
    let secs = started.elapsed().as_secs_f64().max(0.001);
    eprintln!(
        "demo: {} purchases accepted ({:.0}/s)",
        orders.len(),
        orders.len() as f64 / secs
    );
    Ok(())
}

/// One batch request; every item must be accepted. An item refused with a "later" status
/// resends the whole batch (accepted items are idempotent: same order, same body).
async fn send_batch(client: &ShopClient, chunk: &[Value]) -> anyhow::Result<usize> {
    let body = json!({ "purchases": chunk });
    let mut resends = 0;
    loop {
        let answer = client.post("/v1/purchases/batch", &body).await?;
        let results = answer["results"]
            .as_array()
            .context("the batch answer has no results")?;
        let refused = results.iter().find_map(|r| r.get("problem"));
        let Some(problem) = refused else {
            return Ok(results.len());
        };
        let status = problem["status"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let later = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
        resends += 1;
        anyhow::ensure!(
            later && resends <= 3,
            "a demo purchase was refused: {}",
            describe(status, problem)
        );
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

fn paise(p: i64) -> String {
    format!("{}.{:02}", p / 100, p % 100)
}
