//! `referral demo`: a demo referral tree and a stream of purchases sent over HTTP to a
//! running instance, with progress, then the dashboard URL and tokens to open it.
use anyhow::Context;
use futures::StreamExt;
use platform::auth::{Authenticator, Principal};
use platform::Config;
use rand::Rng;
use schemas::UserId;
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
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
}

pub async fn run(config: &Config, args: DemoArgs) -> anyhow::Result<()> {
    let base = args
        .base_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.http.api_addr));
    let pool = platform::db::connect(&config.database).await?;
    let (shop, key) = crate::shops::create(&pool, "demo shop").await?;
    eprintln!("demo: shop {shop} created");
    let http = reqwest::Client::new();

    // A tree grown breadth-first: each user refers up to 8 others (the plan's limit).
    let started = Instant::now();
    let mut users: Vec<UserId> = Vec::with_capacity(args.users);
    let mut rng = rand::thread_rng();
    for i in 0..args.users {
        let referrer = if users.is_empty() {
            None
        } else {
            Some(users[(i - 1) / 4])
        };
        let body = json!({ "referrer_id": referrer });
        let created: Value = post(&http, &format!("{base}/v1/users"), &key, &body).await?;
        let id: UserId = created["id"]
            .as_str()
            .context("signup answered no id")?
            .parse()?;
        users.push(id);
        if (i + 1).is_multiple_of(50) || i + 1 == args.users {
            eprintln!("demo: {} / {} users signed up", i + 1, args.users);
        }
    }

    let orders: Vec<(String, UserId, String, String)> = (0..args.purchases)
        .map(|i| {
            let buyer = users[rng.gen_range(1..users.len().max(2)).min(users.len() - 1)];
            let amount_paise: i64 = rng.gen_range(50_000..500_000);
            let profit_paise = amount_paise * rng.gen_range(10..40) / 100;
            let order = format!("demo-{}-{i}", shop.as_uuid().simple());
            (order, buyer, paise(amount_paise), paise(profit_paise))
        })
        .collect();
    let mut done = 0usize;
    let mut sends = futures::stream::iter(orders.into_iter().map(|(order, buyer, amount, profit)| {
        let (http, base, key) = (http.clone(), base.clone(), key.clone());
        async move {
            let body = json!({ "order_id": order, "user_id": buyer, "amount": amount, "profit": profit });
            post(&http, &format!("{base}/v1/purchases"), &key, &body).await
        }
    }))
    .buffer_unordered(args.concurrency.max(1));
    while let Some(result) = sends.next().await {
        result?;
        done += 1;
        if done.is_multiple_of(250) || done == args.purchases {
            eprintln!("demo: {done} / {} purchases accepted", args.purchases);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!("demo: done in {secs:.1}s");

    let auth = Authenticator::new(&config.auth, pool);
    let root = users.first().copied().context("no users")?;
    println!("dashboard:   {base}/");
    println!("root user:   {root}");
    println!("user token:  {}", auth.issue(Principal::User(root))?);
    println!("admin token: {}", auth.issue(Principal::Admin)?);
    println!("shop key:    {key}");
    Ok(())
}

fn paise(p: i64) -> String {
    format!("{}.{:02}", p / 100, p % 100)
}

async fn post(http: &reqwest::Client, url: &str, key: &str, body: &Value) -> anyhow::Result<Value> {
    let response = http.post(url).bearer_auth(key).json(body).send().await?;
    let status = response.status();
    let value: Value = response.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "{url} answered {status}: {value}");
    Ok(value)
}
