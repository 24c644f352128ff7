//! ClickHouse for tests: a query helper, and a private server (its own data dir and
//! free ports) that a fault test may stop and restart without touching the shared one.
//! The server config is Debian's, edited the way `scripts/services.sh` does.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long a private server may take to answer `/ping` or to exit.
const SERVER_WAIT: Duration = Duration::from_secs(60);
const PACKAGED_CONFIG: &str = "/etc/clickhouse-server";

/// Runs `sql` on the server at `url`; panics with ClickHouse's message on an error.
pub async fn query(url: &str, sql: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{}/", url.trim_end_matches('/')))
        .query(&[("output_format_json_quote_64bit_integers", "0")])
        .body(sql.to_owned())
        .send()
        .await
        .unwrap_or_else(|e| panic!("ClickHouse at {url}: {e}"));
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(status.is_success(), "ClickHouse refused {sql}: {body}");
    body
}

/// Runs `sql`; its answer trimmed, or `None` when ClickHouse refused it or did not answer.
pub async fn try_query(url: &str, sql: &str) -> Option<String> {
    let response = reqwest::Client::new()
        .post(format!("{}/", url.trim_end_matches('/')))
        .body(sql.to_owned())
        .send()
        .await
        .ok()?;
    let ok = response.status().is_success();
    let body = response.text().await.ok()?;
    ok.then(|| body.trim().to_owned())
}

/// `sql`'s rows as JSON objects (64-bit integers as numbers).
pub async fn rows(url: &str, sql: &str) -> Vec<serde_json::Value> {
    query(url, &format!("{sql} FORMAT JSONEachRow"))
        .await
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A clickhouse-server process of this test's own; killed and its data removed on drop.
pub struct PrivateClickhouse {
    dir: PathBuf,
    http_port: u16,
    child: Option<Child>,
}

impl PrivateClickhouse {
    pub async fn start() -> PrivateClickhouse {
        let dir = std::env::temp_dir().join(format!("referral-ch-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::create_dir_all(dir.join("log")).unwrap();
        let [http_port, tcp_port, interserver_port] = free_ports();
        write_config(&dir, http_port, tcp_port, interserver_port);
        let mut server = PrivateClickhouse {
            dir,
            http_port,
            child: None,
        };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// Starts the server on the same data dir and ports; returns once it answers.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "the private ClickHouse is running");
        let (program, first_args) = server_command();
        let log = std::fs::File::create(self.dir.join("log/stdout.log")).unwrap();
        let child = Command::new(program)
            .args(first_args)
            .arg(format!(
                "--config-file={}",
                self.dir.join("config.xml").display()
            ))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("clickhouse-server starts");
        self.child = Some(child);
        let ping = format!("{}/ping", self.url());
        let deadline = tokio::time::Instant::now() + SERVER_WAIT;
        loop {
            if let Ok(r) = reqwest::get(&ping).await {
                if r.text().await.is_ok_and(|t| t.starts_with("Ok.")) {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "clickhouse-server exited ({status}); see {}",
                    self.dir.join("log").display()
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "ClickHouse did not answer /ping"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the server the way an operator would (SIGTERM: running queries finish,
    /// new ones are refused) and waits until the process has exited.
    pub async fn stop(&mut self) {
        let mut child = self
            .child
            .take()
            .expect("the private ClickHouse is running");
        let pid = child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        let deadline = tokio::time::Instant::now() + SERVER_WAIT;
        while child.try_wait().unwrap().is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "ClickHouse ignored SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for PrivateClickhouse {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `clickhouse-server`, or the single `clickhouse` binary's `server` mode.
fn server_command() -> (PathBuf, Vec<&'static str>) {
    if let Ok(bin) = std::env::var("CLICKHOUSE_SERVER_BIN") {
        return (bin.into(), vec![]);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/bin"].map(PathBuf::from))
        .collect();
    let find = |name: &str| dirs.iter().map(|d| d.join(name)).find(|p| p.is_file());
    if let Some(server) = find("clickhouse-server") {
        return (server, vec![]);
    }
    let single = find("clickhouse").expect("clickhouse-server or clickhouse is installed");
    (single, vec!["server"])
}

fn free_ports() -> [u16; 3] {
    use crate::ports::free_port;
    [free_port(), free_port(), free_port()]
}

/// Debian's config with data, logs and ports moved to this server's own.
fn write_config(dir: &Path, http: u16, tcp: u16, interserver: u16) {
    let packaged = std::fs::read_to_string(format!("{PACKAGED_CONFIG}/config.xml"))
        .expect("Debian's clickhouse-server config is installed");
    let d = dir.display();
    let config = packaged
        .replace("/var/lib/clickhouse/", &format!("{d}/data/"))
        .replace("/var/log/clickhouse-server/", &format!("{d}/log/"))
        .replace("<http_port>8123<", &format!("<http_port>{http}<"))
        .replace("<tcp_port>9000<", &format!("<tcp_port>{tcp}<"))
        .replace(
            "<interserver_http_port>9009<",
            &format!("<interserver_http_port>{interserver}<"),
        )
        .replace(
            "<max_connections>",
            "<listen_host>127.0.0.1</listen_host>\n    <timezone>UTC</timezone>\n    <max_connections>",
        );
    for want in [
        format!("<http_port>{http}<"),
        format!("<tcp_port>{tcp}<"),
        format!("<path>{d}/data/<"),
        "<timezone>UTC<".to_owned(),
    ] {
        assert!(
            config.contains(&want),
            "could not edit the packaged config: {want} missing"
        );
    }
    std::fs::write(dir.join("config.xml"), config).unwrap();
    // users.xml must sit beside config.xml, or the server exits with code 70.
    std::fs::copy(
        format!("{PACKAGED_CONFIG}/users.xml"),
        dir.join("users.xml"),
    )
    .unwrap();
}
