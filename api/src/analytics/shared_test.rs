#![allow(clippy::unwrap_used)]
use super::*;
use platform::clickhouse::ClickhouseError;
use std::sync::atomic::{AtomicUsize, Ordering};

fn shared(window_ms: u64, max_entries: usize) -> SharedAnswers {
    SharedAnswers::new(&platform::config::ClickhouseConfig {
        analytics_cache_ms: window_ms,
        analytics_cache_max_entries: max_entries,
        ..Default::default()
    })
}

/// An answer that counts how often it was asked for, and says which time it was.
async fn counted(asked: &AtomicUsize) -> Result<Bytes, ClickhouseError> {
    let n = asked.fetch_add(1, Ordering::SeqCst) + 1;
    tokio::task::yield_now().await;
    Ok(Bytes::from(format!("answer {n}")))
}

#[tokio::test]
async fn concurrent_askers_of_one_question_share_one_query() {
    let (answers, asked) = (shared(60_000, 8), AtomicUsize::new(0));
    let all = futures::future::join_all((0..10).map(|_| answers.answer("q", || counted(&asked))));
    for answer in all.await {
        assert_eq!(answer.unwrap(), "answer 1");
    }
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    // Another question is asked of its own.
    assert_eq!(
        answers.answer("r", || counted(&asked)).await.unwrap(),
        "answer 2"
    );
}

#[tokio::test]
async fn an_answer_is_asked_again_after_its_window_and_a_failure_is_not_kept() {
    let (answers, asked) = (shared(20, 8), AtomicUsize::new(0));
    let failed = answers
        .answer("q", || async {
            Err(ClickhouseError::Unexpected("down".into()))
        })
        .await;
    assert!(failed.is_err());
    assert_eq!(
        answers.answer("q", || counted(&asked)).await.unwrap(),
        "answer 1"
    );
    assert_eq!(
        answers.answer("q", || counted(&asked)).await.unwrap(),
        "answer 1"
    );
    // The window is what is under test here: wait past it.
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(
        answers.answer("q", || counted(&asked)).await.unwrap(),
        "answer 2"
    );
}

#[tokio::test]
async fn no_window_or_a_full_table_asks_every_time() {
    let (off, asked) = (shared(0, 8), AtomicUsize::new(0));
    off.answer("q", || counted(&asked)).await.unwrap();
    assert_eq!(
        off.answer("q", || counted(&asked)).await.unwrap(),
        "answer 2"
    );

    let (full, asked) = (shared(60_000, 1), AtomicUsize::new(0));
    full.answer("q", || counted(&asked)).await.unwrap();
    assert_eq!(
        full.answer("r", || counted(&asked)).await.unwrap(),
        "answer 2"
    );
    assert_eq!(
        full.answer("r", || counted(&asked)).await.unwrap(),
        "answer 3"
    );
    assert_eq!(
        full.answer("q", || counted(&asked)).await.unwrap(),
        "answer 1"
    );
}
