//! History with a time range: the window of positions read from the daily rollup
//! (migration 0010) narrows the walk and never drops an entry the range holds.
use chrono::{DateTime, Duration, Utc};
use e2e::{eventually, TestApp};
use serde_json::Value;

/// Every page of `path` (which has a query already), as (amount, created_at) newest first.
async fn all_pages(app: &TestApp, path: &str) -> Vec<(String, DateTime<Utc>)> {
    let mut seen = Vec::new();
    let mut next = format!("{path}&limit=2");
    loop {
        let page: Value = app.get_json(&next, &app.admin).await;
        for item in page["items"].as_array().unwrap() {
            let at = item["created_at"].as_str().unwrap().parse().unwrap();
            seen.push((item["amount"].as_str().unwrap().to_owned(), at));
        }
        match page["next_cursor"].as_str() {
            Some(c) => next = format!("{path}&limit=2&cursor={c}"),
            None => return seen,
        }
    }
}

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        .replace('+', "%2B")
}

#[tokio::test]
async fn a_time_range_returns_exactly_the_entries_in_it() {
    let app = TestApp::spawn().await;
    let a = app.signup(None).await;
    let b = app.signup(Some(a)).await;
    // Settled one by one, so each entry has its own commit time.
    for (n, profit) in ["100.00", "200.00", "300.00", "400.00", "500.00"]
        .into_iter()
        .enumerate()
    {
        app.purchase(&format!("r-{n}"), b, "1000.00", Some(profit))
            .await;
        eventually(|| app.settled(), |s| *s == n as i64 + 1).await;
    }
    let base = format!("/v1/users/{a}/earnings/history?level=1");
    let all = all_pages(&app, &base).await;
    let amounts: Vec<&str> = all.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(amounts, ["25.00", "20.00", "15.00", "10.00", "5.00"]);

    // Every range bounded by entries' own times: exactly the entries in [from, to).
    let times: Vec<DateTime<Utc>> = all.iter().map(|(_, t)| *t).collect();
    for &from in &times {
        for &to in &times {
            if from > to {
                continue;
            }
            let path = format!("{base}&from={}&to={}", at(from), at(to));
            let want: Vec<_> = all
                .iter()
                .filter(|(_, t)| from <= *t && *t < to)
                .cloned()
                .collect();
            assert_eq!(all_pages(&app, &path).await, want, "{path}");
        }
    }

    // Ranges on days with no entries: empty, not an error.
    let now = Utc::now();
    let day = Duration::days(1);
    for (from, to) in [
        (now - day * 400, now - day * 2),
        (now + day * 2, now + day * 3),
    ] {
        let path = format!("{base}&from={}&to={}", at(from), at(to));
        assert!(all_pages(&app, &path).await.is_empty(), "{path}");
    }
    // Open on one side, far from today: everything.
    let path = format!("{base}&from={}", at(now - day * 400));
    assert_eq!(all_pages(&app, &path).await, all);
    let path = format!("{base}&to={}", at(now + day * 400));
    assert_eq!(all_pages(&app, &path).await, all);
}
