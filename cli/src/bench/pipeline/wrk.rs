//! Single-purchase requests from wrk (`--generator wrk`): a load generator in its own
//! process, written in C, so that what the bench measures is the server rather than the
//! bench's own HTTP client sharing its runtime and allocator (the issue's measurement
//! method). Accepted purchases are read from the edge's own counter while wrk runs.
use anyhow::Context;
use schemas::UserId;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// wrk's answer: requests completed, how many were not 2xx, latency percentiles in ms.
#[derive(Debug, PartialEq)]
pub struct WrkSummary {
    pub requests: u64,
    pub not_2xx: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The Lua script that makes each request: a unique order id, buyers in turn from
/// `users`, the shop's key from the environment (never on wrk's command line).
pub fn script(users: &[UserId], run: &str) -> String {
    let mut list = String::new();
    for u in users {
        let _ = write!(list, "\"{u}\",");
    }
    format!(
        r#"local users = {{{list}}}
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("REFERRAL_BENCH_SHOP_KEY")
request = function()
  n = n + 1
  local body = string.format('{{"order_id":"wrk-{run}-%d","user_id":"%s","amount":"1500.00","profit":"300.00"}}',
    n, users[(n % #users) + 1])
  return wrk.format(nil, "/v1/purchases", nil, body)
end
done = function(summary, latency, requests)
  io.write(string.format("referral-wrk requests=%d not_2xx=%d p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.errors.status, latency:percentile(50), latency:percentile(99), latency.max))
end
"#
    )
}

/// Reads the line `script`'s `done` prints.
pub fn parse(output: &str) -> anyhow::Result<WrkSummary> {
    let line = output
        .lines()
        .find_map(|l| l.strip_prefix("referral-wrk "))
        .context("wrk printed no summary")?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let value = line
            .split(' ')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .with_context(|| format!("wrk's summary has no {name}"))?;
        value
            .parse()
            .with_context(|| format!("wrk's {name}: {value}"))
    };
    let ms = |us: u64| us as f64 / 1000.0;
    Ok(WrkSummary {
        requests: field("requests")?,
        not_2xx: field("not_2xx")?,
        p50_ms: ms(field("p50_us")?),
        p99_ms: ms(field("p99_us")?),
        max_ms: ms(field("max_us")?),
    })
}

/// Runs wrk on one thread against `base` for `duration`, keeping `accepted` at the
/// edge's count of single purchases stored since the start.
pub async fn send(
    base: &str,
    key: &str,
    script_path: &Path,
    connections: usize,
    duration: Duration,
    accepted: &Arc<AtomicUsize>,
) -> anyhow::Result<WrkSummary> {
    let before = accepted_now();
    let child = tokio::process::Command::new("wrk")
        .args(["-t1", &format!("-c{connections}")])
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .arg("-s")
        .arg(script_path)
        .arg(base)
        .env("REFERRAL_BENCH_SHOP_KEY", key)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting wrk (on Debian: apt-get install wrk)")?;
    let mut output = Box::pin(child.wait_with_output());
    let out = loop {
        tokio::select! {
            out = &mut output => break out?,
            () = tokio::time::sleep(Duration::from_millis(5)) => {
                accepted.store(accepted_now().saturating_sub(before), Ordering::Release);
            }
        }
    };
    accepted.store(accepted_now().saturating_sub(before), Ordering::Release);
    anyhow::ensure!(out.status.success(), "wrk exited with {}", out.status);
    let summary = parse(&String::from_utf8_lossy(&out.stdout))?;
    anyhow::ensure!(
        summary.not_2xx == 0,
        "{} of wrk's requests were not accepted",
        summary.not_2xx
    );
    Ok(summary)
}

/// Where the script goes: the system's temporary folder, one file per bench process.
pub fn script_path() -> PathBuf {
    std::env::temp_dir().join(format!("referral-bench-wrk-{}.lua", std::process::id()))
}

fn accepted_now() -> usize {
    let m = platform::metrics::metrics();
    let stored = m
        .purchases_accepted
        .with_label_values(&["purchase", "single"]);
    usize::try_from(stored.get()).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line_is_read_among_wrks_own_output() {
        let out = "Running 1s test @ http://127.0.0.1:1\n  1 threads and 2 connections\n\
                   referral-wrk requests=1200 not_2xx=3 p50_us=7840 p99_us=15550 max_us=40001\n\
                   Requests/sec: 1200.00\n";
        let s = parse(out).unwrap();
        assert_eq!(
            s,
            WrkSummary {
                requests: 1200,
                not_2xx: 3,
                p50_ms: 7.84,
                p99_ms: 15.55,
                max_ms: 40.001
            }
        );
        assert!(parse("Requests/sec: 5\n").is_err());
        assert!(parse("referral-wrk requests=x not_2xx=0 p50_us=1 p99_us=1 max_us=1").is_err());
    }

    #[test]
    fn the_script_names_every_buyer_and_keeps_the_key_out_of_it() {
        let users = [UserId(uuid::Uuid::now_v7()), UserId(uuid::Uuid::now_v7())];
        let s = script(&users, "r1");
        for u in users {
            assert!(s.contains(&format!("\"{u}\"")), "{s}");
        }
        assert!(s.contains("wrk-r1-%d"), "{s}");
        assert!(s.contains("os.getenv(\"REFERRAL_BENCH_SHOP_KEY\")"), "{s}");
    }
}
