//! `referral bench live`: N SSE clients, one entry published for each (in arrays of
//! 1,000 on `ledger.entries`, as the processor announces a batch); how long until every
//! client has its entry, vs one raw NATS subscriber receiving and parsing the same
//! messages. The clients run in a child process (`bench live-load`), so this process's
//! memory growth is the server's own per connection.
use anyhow::Context;
use futures::StreamExt;
use platform::auth::{Authenticator, Principal};
use platform::Config;
use schemas::UserId;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

#[derive(clap::Args, Debug)]
pub struct LiveArgs {
    /// Concurrent SSE clients (the file-descriptor limit is raised to fit, in both
    /// processes).
    #[arg(long, default_value_t = 2_000)]
    pub clients: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub(super) async fn measure(config: &Config, base: &str, args: &LiveArgs) -> anyhow::Result<()> {
    let n = args.clients;
    let pool = platform::db::connect(&config.database).await?;
    let nats = platform::nats::connect(&config.nats).await?;
    let users: Vec<UserId> = (0..n).map(|_| UserId::new()).collect();
    // Streams are opened only for users that exist.
    let ids: Vec<uuid::Uuid> = users.iter().map(|u| u.as_uuid()).collect();
    sqlx::query("INSERT INTO users (id) SELECT * FROM UNNEST($1::uuid[])")
        .bind(&ids)
        .execute(&pool)
        .await?;
    let files = write_tokens(config, &pool, &users)?;
    let baseline = baseline(&nats, config, &users).await?;
    let rss_before = rss_kib();

    let mut loads = files
        .iter()
        .map(|f| Load::spawn(base, f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut connect_ms = 0f64;
    for load in &mut loads {
        let connected = load
            .line()
            .await
            .context("a load process did not connect")?;
        connect_ms = connect_ms.max(connected["connect_ms"].as_f64().unwrap_or(0.0));
    }
    let rss_connected = rss_kib();
    let load_kib = loads.iter().filter_map(Load::rss_kib).sum();
    let published_at = chrono::Utc::now();
    publish_one_each(&nats, config, &users).await?;
    let (mut latencies, mut last) = (Vec::with_capacity(n), published_at);
    for load in &mut loads {
        let delivered = load.line().await.context("a load process did not finish")?;
        let part: Vec<f64> = serde_json::from_value(delivered["latencies_ms"].clone())?;
        latencies.extend(part);
        last = last.max(serde_json::from_value(delivered["last_arrival"].clone())?);
    }
    for f in &files {
        let _ = std::fs::remove_file(f);
    }
    latencies.sort_by(f64::total_cmp);
    let report = Report {
        clients: n,
        processes: loads.len(),
        baseline_ms: ms(baseline),
        fan_out_ms: (last - published_at).num_microseconds().unwrap_or(0) as f64 / 1000.0,
        connect_ms,
        latencies,
        server_kib: rss_before
            .zip(rss_connected)
            .map(|(a, b)| b.saturating_sub(a)),
        load_kib,
    };
    report.print(args.json)
}

/// Clients per load process: under the 20,000 open files a process may have where the
/// hard limit cannot be raised.
const CLIENTS_PER_LOAD: usize = 16_000;

/// `<user> <token>` lines for the load processes, in private temporary files of at most
/// `CLIENTS_PER_LOAD` lines each.
fn write_tokens(
    config: &Config,
    pool: &sqlx::PgPool,
    users: &[UserId],
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let auth = Authenticator::new(&config.auth, pool.clone());
    let mut files = Vec::new();
    for (i, part) in users.chunks(CLIENTS_PER_LOAD).enumerate() {
        let mut lines = String::with_capacity(part.len() * 200);
        for u in part {
            lines.push_str(&format!("{u} {}\n", auth.issue(Principal::User(*u))?));
        }
        let name = format!("referral-bench-live-{}-{i}.tokens", config.nats.prefix);
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, lines)?;
        files.push(path);
    }
    Ok(files)
}

/// A child process holding clients; killed if this process stops first.
struct Load {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Load {
    fn spawn(base: &str, tokens: &std::path::Path) -> anyhow::Result<Load> {
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .args(["bench", "live-load", "--base", base, "--tokens"])
            .arg(tokens)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting a load process")?;
        let stdout = child.stdout.take().context("a load process's stdout")?;
        Ok(Load {
            child,
            lines: BufReader::new(stdout).lines(),
        })
    }

    /// The next JSON line the load process prints.
    async fn line(&mut self) -> anyhow::Result<serde_json::Value> {
        let line = self
            .lines
            .next_line()
            .await?
            .context("a load process ended early (its error is above)")?;
        Ok(serde_json::from_str(&line)?)
    }

    fn rss_kib(&self) -> Option<u64> {
        let pid = self.child.id()?;
        rss_of(&format!("/proc/{pid}/status"))
    }
}

struct Report {
    clients: usize,
    processes: usize,
    baseline_ms: f64,
    fan_out_ms: f64,
    connect_ms: f64,
    /// Delivery latencies in ms, sorted.
    latencies: Vec<f64>,
    server_kib: Option<u64>,
    load_kib: u64,
}

impl Report {
    fn pct(&self, p: f64) -> f64 {
        let i = (self.latencies.len().saturating_sub(1) as f64 * p) as usize;
        self.latencies.get(i).copied().unwrap_or_default()
    }

    fn print(&self, json: bool) -> anyhow::Result<()> {
        let n = self.clients;
        let per_connection = self.server_kib.map(|k| k as f64 / n.max(1) as f64);
        let ratio = self.fan_out_ms / self.baseline_ms.max(1e-9);
        if json {
            let report = serde_json::json!({
                "clients": n,
                "load_processes": self.processes,
                "baseline_ms": self.baseline_ms,
                "fan_out_ms": self.fan_out_ms,
                "ratio": ratio,
                "connect_ms": self.connect_ms,
                "received": self.latencies.len(),
                "delivery_p50_ms": self.pct(0.5),
                "delivery_p99_ms": self.pct(0.99),
                "delivery_max_ms": self.pct(1.0),
                "server_kib_per_connection": per_connection,
                "load_processes_kib": self.load_kib,
            });
            println!("{}", serde_json::to_string_pretty(&report)?);
            return Ok(());
        }
        println!(
            "referral bench live: {n} SSE clients in {} load processes, one entry each",
            self.processes
        );
        println!(
            "  baseline  raw NATS subscriber, {n} messages   {:>8.1} ms   1.00",
            self.baseline_ms
        );
        println!(
            "  live      every client has its entry          {:>8.1} ms   {ratio:.2}",
            self.fan_out_ms
        );
        println!(
            "  delivery latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; all {} open after {:.0} ms",
            self.pct(0.5),
            self.pct(0.99),
            self.pct(1.0),
            self.latencies.len(),
            self.connect_ms
        );
        if let (Some(kib), Some(each)) = (self.server_kib, per_connection) {
            println!("  server memory: {kib} KiB for {n} connections, {each:.1} KiB each");
        }
        Ok(())
    }
}

/// One core subscriber receiving the arrays and parsing every entry: the baseline.
async fn baseline(
    nats: &async_nats::Client,
    config: &Config,
    users: &[UserId],
) -> anyhow::Result<Duration> {
    let n = users.len();
    let mut sub = nats
        .subscribe(format!("{}.ledger.entries", config.nats.prefix))
        .await?;
    let started = Instant::now();
    publish_one_each(nats, config, users).await?;
    let mut received = 0;
    while received < n {
        let m = tokio::time::timeout(Duration::from_secs(60), sub.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("the baseline subscription ended"))?;
        received += serde_json::from_slice::<Vec<schemas::EarningEvent>>(&m.payload)?.len();
    }
    Ok(started.elapsed())
}

async fn publish_one_each(
    nats: &async_nats::Client,
    config: &Config,
    users: &[UserId],
) -> anyhow::Result<()> {
    for chunk in users.chunks(1_000) {
        // Stamped per array just before it is sent: the load measures delivery from it.
        let now = chrono::Utc::now();
        let entries: Vec<schemas::EarningEvent> = chunk
            .iter()
            .map(|u| super::announced_entry(*u, 1, now))
            .collect();
        let subject = format!("{}.ledger.entries", config.nats.prefix);
        nats.publish(subject, serde_json::to_vec(&entries)?.into())
            .await?;
    }
    nats.flush().await?;
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// This process's resident memory, from /proc (Linux).
pub(super) fn rss_kib() -> Option<u64> {
    rss_of("/proc/self/status")
}

fn rss_of(status: &str) -> Option<u64> {
    let status = std::fs::read_to_string(status).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
