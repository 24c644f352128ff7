//! `referral bench live-load` (hidden): the client side of `bench live`, run as its own
//! process so the server's memory and CPU are measured apart from the load's. It opens
//! one SSE stream per line of `--tokens` (`<user id> <token>`), spread over loopback source
//! addresses (one address has about 28,000 ephemeral ports towards one server port),
//! prints one JSON line when every stream is open, then one when every stream has its
//! first entry (`bench live` starts several when one process may not hold them all): delivery latency is the arrival time minus the entry's `created_at`,
//! which `bench live` sets just before it publishes (same machine, same clock).
use anyhow::Context;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct LiveLoadArgs {
    /// The API's base URL.
    #[arg(long)]
    pub base: String,
    /// A file of `<user id> <token>` lines, one stream each.
    #[arg(long)]
    pub tokens: std::path::PathBuf,
    /// Streams being opened at once.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,
    /// How long to wait for every stream's entry once all are open.
    #[arg(long, default_value_t = 120)]
    pub deliver_timeout_secs: u64,
}

/// Streams per loopback source address (127.0.0.1, 127.0.0.2, …): under the ephemeral
/// port range of one address towards one server port.
const STREAMS_PER_SOURCE: usize = 20_000;

type Body = futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>;

pub async fn run(args: &LiveLoadArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.tokens).context("reading the tokens file")?;
    let clients: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once(' ')).collect();
    super::raise_fd_limit(clients.len())?;
    let sources = source_clients(clients.len())?;
    let started = Instant::now();
    let streams: Vec<Body> = futures::stream::iter(clients.iter().enumerate())
        .map(|(i, (user, token))| {
            let http = &sources[i / STREAMS_PER_SOURCE];
            let url = format!("{}/v1/users/{user}/earnings/stream", args.base);
            async move {
                let r = http.get(url).bearer_auth(token).send().await?;
                let body: Body = r.error_for_status()?.bytes_stream().boxed();
                Ok::<_, anyhow::Error>(body)
            }
        })
        .buffer_unordered(args.connect_concurrency.max(1))
        .try_collect()
        .await?;
    let connect_ms = started.elapsed().as_secs_f64() * 1000.0;
    println!(
        "{}",
        serde_json::json!({ "connected": streams.len(), "connect_ms": connect_ms })
    );
    // One task per stream, so both cores read.
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|s| tokio::spawn(first_entry(s)))
        .collect();
    let waiting = futures::future::try_join_all(tasks);
    let arrivals = tokio::time::timeout(Duration::from_secs(args.deliver_timeout_secs), waiting)
        .await
        .context("not every stream received its entry in time")??;
    let arrivals: Vec<(f64, DateTime<Utc>)> = arrivals.into_iter().collect::<Result<_, _>>()?;
    println!("{}", summary(arrivals));
    Ok(())
}

/// One reqwest client per source address, enough for `n` streams. The first leaves the
/// source to the kernel's `connect`: naming one makes every stream `bind` first, which
/// searches the bound ports one by one (15 s of a core for 18,000 streams, most of the
/// open phase) and cannot reuse ports still in TIME_WAIT from a previous run (a second run
/// within a minute failed with "address already in use").
fn source_clients(n: usize) -> anyhow::Result<Vec<reqwest::Client>> {
    (0..n.div_ceil(STREAMS_PER_SOURCE).max(1))
        .map(|i| {
            let last = u8::try_from(i + 1).context("too many streams for 127.0.0.0/24")?;
            let builder = reqwest::Client::builder().pool_max_idle_per_host(0);
            let builder = match i {
                0 => builder,
                _ => builder.local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))),
            };
            Ok(builder.build()?)
        })
        .collect()
}

/// Reads one stream until its first `earning` event: (latency in ms, arrival time).
async fn first_entry(mut body: Body) -> anyhow::Result<(f64, DateTime<Utc>)> {
    let mut buffer = String::new();
    while let Some(chunk) = body.next().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk?));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if let Some(created) = earning_created_at(&event)? {
                let now = Utc::now();
                let ms = (now - created).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0;
                return Ok((ms, now));
            }
        }
    }
    anyhow::bail!("a stream ended before its entry arrived")
}

/// The `created_at` of an `earning` event; None for keep-alives and other events.
fn earning_created_at(event: &str) -> anyhow::Result<Option<DateTime<Utc>>> {
    if !event.lines().any(|l| l == "event: earning") {
        return Ok(None);
    }
    let data = event
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .context("an earning event without data")?;
    let entry: serde_json::Value = serde_json::from_str(data)?;
    let created = entry["created_at"]
        .as_str()
        .context("an entry without created_at")?;
    Ok(Some(created.parse()?))
}

/// Every latency (ms) and the last arrival, as one JSON line (`bench live` merges the
/// lines of its load processes).
fn summary(arrivals: Vec<(f64, DateTime<Utc>)>) -> serde_json::Value {
    let last = arrivals.iter().map(|a| a.1).max();
    let latencies: Vec<f64> = arrivals.iter().map(|a| a.0).collect();
    serde_json::json!({ "latencies_ms": latencies, "last_arrival": last })
}
