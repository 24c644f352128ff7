//! History with a time range: the window of positions read from the daily rollup
//! (migration 0010) narrows the walk and never drops an entry the range holds. With a
//! level: a page walks at most `history_max_scan` positions, and the cursor goes on.
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

/// A level filter returns exactly that level's entries, and a level the user was never
/// paid at is answered at once from the user's balances, empty and without a cursor,
/// instead of a walk along every entry the user has.
#[tokio::test]
async fn a_level_filter_returns_that_levels_entries_and_an_unpaid_level_nothing() {
    let app = TestApp::spawn().await;
    let (a, b, c) = app.chain3().await;
    app.purchase("lv-1", c, "1000.00", Some("100.00")).await;
    eventually(|| app.total(a), |t| t == "1.00").await;
    app.purchase("lv-2", b, "1000.00", Some("100.00")).await;
    eventually(|| app.total(a), |t| t == "6.00").await;
    let history = format!("/v1/users/{a}/earnings/history");
    let levels = |page: &Value| -> Vec<(u64, String)> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["level"].as_u64().unwrap(),
                    i["amount"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let one: Value = app
        .get_json(&format!("{history}?level=1"), &app.admin)
        .await;
    assert_eq!(levels(&one), vec![(1, "5.00".to_owned())]);
    let two: Value = app
        .get_json(&format!("{history}?level=2"), &app.admin)
        .await;
    assert_eq!(levels(&two), vec![(2, "1.00".to_owned())]);
    for level in [3, 16] {
        let page: Value = app
            .get_json(&format!("{history}?level={level}"), &app.admin)
            .await;
        assert!(levels(&page).is_empty(), "level {level}: {page}");
        assert!(page["next_cursor"].is_null(), "level {level}: {page}");
    }
}

/// A filtered page walks at most `reports.history_max_scan` positions: one whose matches
/// are rare comes back short (even empty) with a cursor, and following the cursors still
/// returns every match exactly once, newest first, with no cursor after the last.
#[tokio::test]
async fn a_filtered_page_walks_a_bounded_stretch_and_its_cursor_goes_on() {
    let app = TestApp::spawn_with(|c| c.reports.history_max_scan = 3).await;
    let (a, b, c) = app.chain3().await;
    // a's ledger: level 1 at position 1, level 2 at 2..=9, level 1 at 10.
    let buyers = std::iter::once((b, "100.00"))
        .chain(std::iter::repeat_n((c, "100.00"), 8))
        .chain(std::iter::once((b, "200.00")));
    for (n, (buyer, profit)) in buyers.enumerate() {
        app.purchase(&format!("sc-{n}"), buyer, "1000.00", Some(profit))
            .await;
        eventually(|| app.settled(), |s| *s == n as i64 + 1).await;
    }
    let base = format!("/v1/users/{a}/earnings/history?level=1");
    let first: Value = app.get_json(&format!("{base}&limit=2"), &app.admin).await;
    // Positions 8..=10 walked: one match, and a cursor below the stretch.
    assert_eq!(first["items"].as_array().unwrap().len(), 1, "{first}");
    assert_eq!(first["next_cursor"], "8", "{first}");
    let empty: Value = app
        .get_json(&format!("{base}&limit=2&cursor=8"), &app.admin)
        .await;
    assert!(empty["items"].as_array().unwrap().is_empty(), "{empty}");
    assert_eq!(empty["next_cursor"], "5", "{empty}");
    // A cursor far above the newest position walks from the newest one, not from there.
    let far: Value = app
        .get_json(&format!("{base}&limit=2&cursor=1000000"), &app.admin)
        .await;
    assert_eq!(far["items"].as_array().unwrap().len(), 1, "{far}");
    assert_eq!(far["next_cursor"], "8", "{far}");
    let amounts: Vec<String> = all_pages(&app, &base)
        .await
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(amounts, ["10.00", "5.00"]);
    // An unfiltered page is not bounded that way: every entry of the ten in one page.
    let all: Value = app
        .get_json(
            &format!("/v1/users/{a}/earnings/history?limit=50"),
            &app.admin,
        )
        .await;
    assert_eq!(all["items"].as_array().unwrap().len(), 10, "{all}");
    assert!(all["next_cursor"].is_null(), "{all}");
}
