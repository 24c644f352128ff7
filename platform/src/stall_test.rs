use super::StallGuard;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_write_the_peer_does_not_read_fails_after_the_limit() {
    let (ours, mut theirs) = tokio::io::duplex(1024);
    let mut guarded = StallGuard::new(ours, Duration::from_millis(100));
    let started = std::time::Instant::now();
    let err = guarded.write_all(&[7u8; 64 * 1024]).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert!(started.elapsed() >= Duration::from_millis(100));
    let mut got = vec![0u8; 1024];
    theirs.read_exact(&mut got).await.unwrap();
}

#[tokio::test]
async fn a_slow_reader_that_keeps_reading_is_not_cut_off() {
    let (ours, mut theirs) = tokio::io::duplex(1024);
    let mut guarded = StallGuard::new(ours, Duration::from_millis(200));
    let reader = tokio::spawn(async move {
        let mut total = 0;
        let mut chunk = [0u8; 512];
        while total < 64 * 1024 {
            tokio::time::sleep(Duration::from_millis(1)).await;
            total += theirs.read(&mut chunk).await.unwrap();
        }
        total
    });
    guarded.write_all(&[7u8; 64 * 1024]).await.unwrap();
    assert_eq!(reader.await.unwrap(), 64 * 1024);
}
