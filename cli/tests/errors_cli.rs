//! Errors a person can meet are one line that says what to do, not a backtrace
//! (unless they ask for one with RUST_BACKTRACE).
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `referral <args>` with a clean auth environment; fails if it does not exit soon.
fn referral(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_referral"));
    cmd.args(args)
        .env_remove("REFERRAL_AUTH__JWT_SECRET")
        .env_remove("REFERRAL_AUTH__PSEUDONYM_KEY")
        .env_remove("REFERRAL_AUTH__ALLOW_DEV_SECRETS")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .env("REFERRAL_LOG__FILTER", "error")
        // Nothing listens here: a role that got past its checks would fail differently.
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")
        .env("REFERRAL_HTTP__API_ADDR", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("referral {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn one_line(output: &Output) -> String {
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
    stderr
}

#[test]
fn a_role_on_the_built_in_secret_stops_with_what_to_set() {
    for role in ["all", "api", "ingest"] {
        let stderr = one_line(&referral(&[role], &[]));
        assert!(
            stderr.contains("REFERRAL_AUTH__JWT_SECRET"),
            "{role}: {stderr}"
        );
    }
    let stderr = one_line(&referral(&["token", "--admin"], &[]));
    assert!(stderr.contains("openssl rand -hex 32"), "{stderr}");
}

#[test]
fn the_demo_without_a_running_instance_says_to_start_one() {
    let secret = "9c41e07b5a2d836f1e0c7a94b2d5f8e3".to_owned();
    let env = [
        ("REFERRAL_AUTH__JWT_SECRET", secret.as_str()),
        ("REFERRAL_AUTH__PSEUDONYM_KEY", secret.as_str()),
    ];
    let args = ["demo", "--base-url", "http://127.0.0.1:1"];
    let stderr = one_line(&referral(&args, &env));
    assert!(stderr.contains("is `referral all` running"), "{stderr}");

    // Asked for, the backtrace follows the same first line.
    let with_backtrace = [env[0], env[1], ("RUST_BACKTRACE", "1")];
    let output = referral(&args, &with_backtrace);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let first = stderr.lines().next().unwrap_or_default();
    assert!(first.contains("is `referral all` running"), "{stderr}");
    assert!(stderr.contains("backtrace"), "{stderr}");
}

#[test]
fn a_token_is_all_that_referral_token_prints() {
    let env = [
        ("REFERRAL_AUTH__ALLOW_DEV_SECRETS", "true"),
        ("REFERRAL_LOG__FILTER", "info"),
    ];
    let output = referral(&["token", "--admin"], &env);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let token = stdout.trim_end();
    assert_eq!(token.lines().count(), 1, "{stdout}");
    assert_eq!(token.matches('.').count(), 2, "a JWT: {stdout}");
}

fn psql(server_db: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([server_db, "-Atc", sql])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The test Postgres server's URL, without a database.
fn postgres_server() -> String {
    std::env::var("TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A database name of this prefix no other test run uses.
fn scratch_name(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Waits until `child` has created database `name` (it must still be running).
fn wait_for_database(admin: &str, name: &str, child: &mut std::process::Child) {
    let exists = format!("SELECT 1 FROM pg_database WHERE datname = '{name}'");
    let deadline = Instant::now() + Duration::from_secs(60);
    while psql(admin, &exists) != "1" {
        assert!(child.try_wait().unwrap().is_none(), "it ended early");
        assert!(Instant::now() < deadline, "{name} was never created");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Ctrl-C to `child`; whether it ended within `within` (else it is killed).
fn interrupt(child: &mut std::process::Child, within: Duration) -> bool {
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + within;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// A one-shot command (here a long `bench seed`) stops at Ctrl-C with one line saying so:
/// the signal handler the roles need replaced the default that would have ended it.
#[test]
fn a_long_command_stops_at_ctrl_c() {
    let server = postgres_server();
    let name = scratch_name("referral_interrupt");
    let mut child = Command::new(env!("CARGO_BIN_EXE_referral"))
        .args([
            "bench",
            "seed",
            "--users",
            "5000000",
            "--entries",
            "5000000",
        ])
        .args(["--database", &name])
        .env("DATABASE_URL", format!("{server}/postgres"))
        .env("REFERRAL_LOG__FILTER", "error")
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let admin = format!("{server}/postgres");
    wait_for_database(&admin, &name, &mut child);
    let stopped = interrupt(&mut child, Duration::from_secs(30));
    let output = child.wait_with_output().unwrap();
    psql(
        &admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
    assert!(stopped, "Ctrl-C did not stop `referral bench seed`");
    assert!(one_line(&output).contains("interrupted"));
}

/// Logs written to a file or a pipe (run.sh's `.local/referral.log`, a journal) hold no
/// terminal color codes.
#[test]
fn logs_to_a_pipe_are_plain_text() {
    let server = postgres_server();
    let name = scratch_name("referral_plain");
    let output = Command::new(env!("CARGO_BIN_EXE_referral"))
        .arg("migrate")
        .env("DATABASE_URL", format!("{server}/{name}"))
        .env("REFERRAL_CLICKHOUSE__ENABLED", "false")
        .env("REFERRAL_LOG__FILTER", "debug")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    psql(
        &format!("{server}/postgres"),
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DEBUG"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
}

/// A bench stopped with Ctrl-C still removes the scratch database it made.
#[test]
fn a_bench_stopped_by_ctrl_c_removes_its_scratch_database() {
    use std::io::BufRead;
    let server = postgres_server();
    let nats = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let mut child = Command::new(env!("CARGO_BIN_EXE_referral"))
        .args([
            "bench",
            "pipeline",
            "--loads",
            "single",
            "--duration",
            "600",
        ])
        .args(["--purchases", "100000000", "--users", "64"])
        .env("DATABASE_URL", format!("{server}/postgres"))
        .env("NATS_URL", nats)
        .env("REFERRAL_LOG__FILTER", "info")
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Every stderr line, kept; the scratch database's name sent on as soon as it is logged.
    let (named, name) = std::sync::mpsc::channel();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let lines = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in stderr.lines().map_while(Result::ok) {
            if let Some(db) = line.split("database=").nth(1) {
                let _ = named.send(db.split_whitespace().next().unwrap_or("").to_owned());
            }
            all.push(line);
        }
        all
    });
    let name = name.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(name.starts_with("referral_bench_"), "{name}");
    let admin = format!("{server}/postgres");
    wait_for_database(&admin, &name, &mut child);
    let stopped = interrupt(&mut child, Duration::from_secs(60));
    let status = child.wait().unwrap();
    let exists = format!("SELECT 1 FROM pg_database WHERE datname = '{name}'");
    let left = psql(&admin, &exists);
    psql(
        &admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
    assert!(stopped, "Ctrl-C did not stop the bench");
    assert!(!status.success());
    let lines = lines.join().unwrap();
    assert!(lines.iter().any(|l| l.contains("interrupted")), "{lines:?}");
    assert_eq!(left, "", "the bench left {name} behind");
}
