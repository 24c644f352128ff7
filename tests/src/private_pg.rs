//! A Postgres of the test's own (initdb into a temp dir, a free loopback port, trust
//! auth), that a fault test may stop with `-m immediate` and start again without touching
//! the machine's server. As root the tools run as the `postgres` user (initdb refuses root).
use std::path::PathBuf;
use std::process::Command;

pub struct PrivatePostgres {
    dir: PathBuf,
    pub port: u16,
}

fn bin_dir() -> PathBuf {
    let root = PathBuf::from("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("Postgres server binaries under /usr/lib/postgresql")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("an initdb under /usr/lib/postgresql/*/bin")
}

fn command(tool: &str) -> Command {
    let bin = bin_dir().join(tool);
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if is_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&bin);
        c
    } else {
        Command::new(&bin)
    }
}

fn run(tool: &str, args: &[&str]) {
    let out = command(tool).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PrivatePostgres {
    pub fn start() -> PrivatePostgres {
        let dir = std::env::temp_dir().join(format!("referral-pg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = Command::new("chown").arg("postgres:").arg(&dir).status();
        let port = crate::ports::free_port();
        let data = dir.join("data");
        let data = data.to_str().unwrap();
        run(
            "initdb",
            &["-D", data, "-U", "postgres", "--auth=trust", "--no-sync"],
        );
        let pg = PrivatePostgres { dir, port };
        pg.restart();
        pg
    }

    /// `postgres://postgres@127.0.0.1:<port>` (append `/<database>`).
    pub fn server_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// Starts the server on its data dir and waits until it accepts connections.
    pub fn restart(&self) {
        let data = self.dir.join("data");
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("pg.log");
        run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &opts,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
    }

    /// `pg_ctl stop -m immediate`: no checkpoint, every connection cut, as a crash.
    pub fn stop_immediate(&self) {
        let data = self.dir.join("data");
        run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = command("pg_ctl")
            .args([
                "-D",
                data.to_str().unwrap_or_default(),
                "-m",
                "immediate",
                "stop",
            ])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
