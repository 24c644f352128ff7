//! Ports for the servers a test starts as child processes (nats-server, clickhouse-server,
//! postgres). A port taken with `bind :0` and released can be handed by the kernel to
//! anyone's next `bind :0` or outgoing connection before the child binds it. These come
//! from below the kernel's ephemeral range (32768–60999 by default), which it never hands
//! out by itself, and each is claimed with a lock file naming the test process, so
//! parallel test processes never pick the same one; a claim whose process has ended is
//! taken over.
use std::fs::OpenOptions;
use std::io::Write;
use std::net::TcpListener;
use std::path::Path;

const FIRST: u16 = 20_000;
const COUNT: u16 = 12_000;

/// A port no other test process holds and nothing listens on now.
pub fn free_port() -> u16 {
    let dir = std::env::temp_dir().join("referral-test-ports");
    std::fs::create_dir_all(&dir).unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let start = (std::process::id().wrapping_mul(7_919) ^ nanos) % u32::from(COUNT);
    for i in 0..u32::from(COUNT) {
        let port = FIRST + ((start + i) % u32::from(COUNT)) as u16;
        if claim(&dir, port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {FIRST}..{}", FIRST + COUNT);
}

fn claim(dir: &Path, port: u16) -> bool {
    let path = dir.join(port.to_string());
    if create(&path) {
        return true;
    }
    let owner = std::fs::read_to_string(&path).unwrap_or_default();
    let owner = owner.trim();
    if owner.is_empty() || Path::new("/proc").join(owner).exists() {
        return false; // being written, or held by a live process (this one included)
    }
    // The holder has ended. Renaming is atomic: of several takers, one moves it away.
    let stale = dir.join(format!("{port}.stale.{}", std::process::id()));
    if std::fs::rename(&path, &stale).is_err() {
        return false;
    }
    let _ = std::fs::remove_file(stale);
    create(&path)
}

fn create(path: &Path) -> bool {
    match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(mut f) => f
            .write_all(std::process::id().to_string().as_bytes())
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimed_ports_are_distinct_outside_the_ephemeral_range_and_stale_claims_are_taken_over() {
        let ports: Vec<u16> = (0..20).map(|_| free_port()).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            ports.len(),
            "a port handed out twice: {ports:?}"
        );
        assert!(ports.iter().all(|p| (FIRST..FIRST + COUNT).contains(p)));

        let dir = std::env::temp_dir().join(format!("referral-ports-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(claim(&dir, 1));
        assert!(!claim(&dir, 1), "this live process holds it");
        // A pid above the kernel's maximum never names a live process.
        std::fs::write(dir.join("2"), "4194305").unwrap();
        assert!(claim(&dir, 2), "a dead holder's claim is taken over");
        assert_eq!(
            std::fs::read_to_string(dir.join("2")).unwrap(),
            std::process::id().to_string()
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
