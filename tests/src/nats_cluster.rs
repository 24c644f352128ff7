//! A three-node nats-server 2.15 JetStream cluster of the test's own (`NATS_SERVER_BIN`),
//! on free loopback ports, each node with its own store and `sync_interval: always`, so a
//! fault test may SIGKILL and restart nodes without touching the shared servers.
use crate::nats_server::binary;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const NODES: usize = 3;

pub struct Node {
    pub name: String,
    pub port: u16,
    config: PathBuf,
    child: Option<Child>,
}

pub struct NatsCluster {
    dir: PathBuf,
    pub nodes: Vec<Node>,
}

use crate::ports::free_port;

impl NatsCluster {
    /// Starts three nodes and waits until JetStream answers through the cluster (a meta
    /// leader is elected).
    pub async fn start() -> NatsCluster {
        let dir = std::env::temp_dir().join(format!("referral-cluster-{}", uuid::Uuid::new_v4()));
        let ports: Vec<(u16, u16)> = (0..NODES).map(|_| (free_port(), free_port())).collect();
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, route)| format!("nats-route://127.0.0.1:{route}"))
            .collect();
        let mut nodes = Vec::new();
        for (i, (port, route)) in ports.iter().enumerate() {
            let name = format!("n{}", i + 1);
            let store = dir.join(&name);
            std::fs::create_dir_all(&store).unwrap();
            let config = dir.join(format!("{name}.conf"));
            let text = format!(
                "server_name: {name}\nlisten: 127.0.0.1:{port}\n\
                 jetstream {{ store_dir: \"{}\", sync_interval: always }}\n\
                 cluster {{ name: referral, listen: 127.0.0.1:{route}, routes: [{}] }}\n",
                store.display(),
                routes.join(", ")
            );
            std::fs::write(&config, text).unwrap();
            nodes.push(Node {
                name,
                port: *port,
                config,
                child: None,
            });
        }
        let mut cluster = NatsCluster { dir, nodes };
        for i in 0..NODES {
            cluster.start_node(i);
        }
        for i in 0..NODES {
            cluster.wait_listening(i).await;
        }
        cluster.wait_jetstream().await;
        cluster
    }

    /// Every node's client URL, comma-separated (the form `NATS_URL` takes).
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn index_of(&self, server_name: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name == server_name)
            .unwrap_or_else(|| panic!("no node named {server_name}"))
    }

    fn start_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        assert!(node.child.is_none(), "{} already running", node.name);
        let bin = binary();
        assert!(
            bin.exists(),
            "{} is missing: run scripts/services.sh up",
            bin.display()
        );
        let log = std::fs::File::create(self.dir.join(format!("{}.log", node.name))).unwrap();
        let child = Command::new(bin)
            .arg("-c")
            .arg(&node.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        node.child = Some(child);
    }

    async fn wait_listening(&self, i: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let port = self.nodes[i].port;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "node {i} did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_jetstream(&self) {
        let client = async_nats::connect(format!("nats://127.0.0.1:{}", self.nodes[0].port))
            .await
            .unwrap();
        let js = async_nats::jetstream::new(client);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while js.query_account().await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the cluster elected no JetStream meta leader"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts node `i` again on its store and waits until it accepts clients.
    pub async fn restart(&mut self, i: usize) {
        self.start_node(i);
        self.wait_listening(i).await;
    }

    /// SIGKILL: no shutdown, as a crash of the machine would be.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..NODES {
            self.kill(i);
        }
        if std::thread::panicking() {
            eprintln!("nats cluster logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
