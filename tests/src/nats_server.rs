//! A nats-server of the test's own (the project's 2.15 from `NATS_SERVER_BIN`, JetStream
//! with `sync_interval: always`), on a free port and a temp store, that a fault test may
//! kill and restart without touching the shared server.
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct PrivateNats {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

pub(crate) fn binary() -> PathBuf {
    std::env::var("NATS_SERVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.local/venv/bin/nats-server")
        })
}

impl PrivateNats {
    pub async fn start() -> PrivateNats {
        Self::start_with("").await
    }

    /// A server whose config file also holds `extra` (e.g. an `authorization` block).
    pub async fn start_with(extra: &str) -> PrivateNats {
        let dir = std::env::temp_dir().join(format!("referral-nats-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("store")).unwrap();
        let port = crate::ports::free_port();
        let config = format!(
            "listen: 127.0.0.1:{port}\njetstream {{ store_dir: \"{}\", sync_interval: always }}\n{extra}\n",
            dir.join("store").display()
        );
        std::fs::write(dir.join("nats.conf"), config).unwrap();
        let mut server = PrivateNats {
            dir,
            port,
            child: None,
        };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again, on the same store) and waits until it accepts clients.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let bin = binary();
        assert!(
            bin.exists(),
            "{} is missing: run scripts/services.sh up",
            bin.display()
        );
        let child = Command::new(bin)
            .arg("-c")
            .arg(self.dir.join("nats.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "nats-server did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: no shutdown, as a crash of the machine's process would be.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
