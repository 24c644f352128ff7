//! Reports: by referral, by leg (each direct referral's whole subtree), history pages,
//! the tree with contributions, the daily series; and who may read them.
mod history_range;
mod lanes;
mod rollups;

use e2e::{eventually, TestApp};
use reqwest::StatusCode;
use schemas::UserId;
use serde_json::Value;

/// A with two legs: B (who refers C and D) and E (who refers F).
async fn two_legs(app: &TestApp) -> [UserId; 6] {
    let a = app.signup(None).await;
    let b = app.signup(Some(a)).await;
    let e = app.signup(Some(a)).await;
    let c = app.signup(Some(b)).await;
    let d = app.signup(Some(b)).await;
    let f = app.signup(Some(e)).await;
    [a, b, c, d, e, f]
}

#[tokio::test]
async fn legs_referrals_history_tree_and_daily_agree_with_the_ledger() {
    let app = TestApp::spawn().await;
    let [a, b, c, d, e, f] = two_legs(&app).await;
    // Each settled before the next is sent: history is newest-settled first, and
    // concurrent processor workers may settle purchases sent together in either order.
    let purchases = [
        ("p-b", b, "1000.00", Some("1000.00")), // A: L1 50.00 via leg B
        ("p-c", c, "2000.00", Some("500.00")),  // A: L2 5.00 via leg B
        ("p-d", d, "3000.00", Some("1000.00")), // A: L2 10.00 via leg B
        ("p-f", f, "1500.00", Some("300.00")),  // A: L2 3.00 via leg E
        ("p-small", f, "999.99", None),         // pays nothing
    ];
    for (n, (order, buyer, amount, profit)) in purchases.into_iter().enumerate() {
        app.purchase(order, buyer, amount, profit).await;
        eventually(|| app.settled(), |s| *s == n as i64 + 1).await;
    }
    let admin = app.admin.clone();

    let legs = app
        .get_json(&format!("/v1/users/{a}/earnings/by-leg"), &admin)
        .await;
    let leg_total = |id: UserId| {
        legs["legs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["leg_user_id"] == id.to_string())
            .map(|l| l["total"].as_str().unwrap().to_owned())
    };
    assert_eq!(leg_total(b).as_deref(), Some("65.00"));
    assert_eq!(leg_total(e).as_deref(), Some("3.00"));
    assert_eq!(legs["legs"].as_array().unwrap().len(), 2);

    let refs = app
        .get_json(&format!("/v1/users/{a}/earnings/by-referral"), &admin)
        .await;
    let referrals = refs["referrals"].as_array().unwrap();
    assert_eq!(referrals.len(), 4);
    assert_eq!(referrals[0]["user_id"], b.to_string());
    assert_eq!(referrals[0]["level"], 1);
    assert_eq!(referrals[0]["total"], "50.00");

    // History: newest first, two per page, cursor to the end, level filter.
    let mut seen = Vec::new();
    let mut path = format!("/v1/users/{a}/earnings/history?limit=2");
    loop {
        let page = app.get_json(&path, &admin).await;
        for item in page["items"].as_array().unwrap() {
            seen.push(item["amount"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/users/{a}/earnings/history?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, vec!["3.00", "10.00", "5.00", "50.00"]);
    let level1 = app
        .get_json(&format!("/v1/users/{a}/earnings/history?level=1"), &admin)
        .await;
    assert_eq!(level1["items"].as_array().unwrap().len(), 1);

    let tree = app
        .get_json(&format!("/v1/users/{a}/tree?depth=2"), &admin)
        .await;
    let root = &tree["root"];
    assert_eq!(root["user_id"], a.to_string());
    let kids = root["children"].as_array().unwrap();
    assert_eq!(kids.len(), 2);
    assert_eq!(kids[0]["user_id"], b.to_string(), "ordered by contribution");
    assert_eq!(kids[0]["contributed"], "50.00");
    assert_eq!(kids[0]["children"].as_array().unwrap().len(), 2);
    assert_eq!(kids[1]["children"][0]["user_id"], f.to_string());
    assert_eq!(kids[1]["children"][0]["contributed"], "3.00");
    let shallow = app
        .get_json(&format!("/v1/users/{a}/tree?depth=1"), &admin)
        .await;
    assert!(shallow["root"]["children"][0]["children"]
        .as_array()
        .unwrap()
        .is_empty());

    let daily = app
        .get_json(&format!("/v1/users/{a}/earnings/daily"), &admin)
        .await;
    let points = daily["points"].as_array().unwrap();
    assert_eq!(points.len(), 1);
    assert_eq!(points[0]["total"], "68.00");
    assert_eq!(points[0]["entries"], 4);
    assert_eq!(app.total(a).await, "68.00");
    let _ = c;
}

#[tokio::test]
async fn every_user_scoped_route_refuses_other_users_and_anonymous_callers() {
    let app = TestApp::spawn().await;
    let (a, b, _) = app.chain3().await;
    let other = app.token_for(b);
    let routes = [
        format!("/v1/users/{a}/earnings"),
        format!("/v1/users/{a}/earnings/by-referral"),
        format!("/v1/users/{a}/earnings/by-leg"),
        format!("/v1/users/{a}/earnings/history"),
        format!("/v1/users/{a}/earnings/daily"),
        format!("/v1/users/{a}/tree"),
        format!("/v1/users/{a}/earnings/stream"),
        format!("/v1/users/{a}/earnings/ws"),
    ];
    for path in &routes {
        let r = app.get(path, Some(&other)).await;
        assert_eq!(
            r.status(),
            StatusCode::FORBIDDEN,
            "{path} with another user's token"
        );
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        assert_eq!(
            app.get(path, None).await.status(),
            StatusCode::UNAUTHORIZED,
            "{path} anonymous"
        );
        assert_eq!(
            app.get(path, Some(&app.shop_key)).await.status(),
            StatusCode::FORBIDDEN,
            "{path} with a shop key"
        );
    }
    for path in ["/v1/admin/plan", "/v1/admin/dead-letters"] {
        assert_eq!(
            app.get(path, Some(&other)).await.status(),
            StatusCode::FORBIDDEN,
            "{path}"
        );
        assert_eq!(
            app.get(path, Some(&app.admin)).await.status(),
            StatusCode::OK,
            "{path}"
        );
    }
    let deactivate = app
        .post(
            &format!("/v1/admin/users/{a}/deactivate"),
            &other,
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(deactivate.status(), StatusCode::FORBIDDEN);
    // Admins read anyone; an unknown user is a 404 for them.
    let unknown = UserId::new();
    let r = app
        .get(&format!("/v1/users/{unknown}/earnings"), Some(&app.admin))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["code"], "not_found");
}

#[tokio::test]
async fn page_sizes_and_ranges_are_bounded() {
    let app = TestApp::spawn_with(|c| {
        c.reports.max_page_size = 10;
        c.reports.default_page_size = 10;
    })
    .await;
    let a = app.signup(None).await;
    for (path, code) in [
        (
            format!("/v1/users/{a}/earnings/history?limit=11"),
            "invalid_limit",
        ),
        (
            format!("/v1/users/{a}/earnings/history?limit=0"),
            "invalid_limit",
        ),
        (
            format!("/v1/users/{a}/earnings/history?cursor=zzz"),
            "invalid_cursor",
        ),
        (format!("/v1/users/{a}/tree?depth=99"), "invalid_depth"),
        (format!("/v1/users/{a}/tree?depth=abc"), "invalid_query"),
        // A `+` (sent as %2B) is no second spelling of a number or a date.
        (format!("/v1/users/{a}/tree?depth=%2B3"), "invalid_query"),
        (
            format!("/v1/users/{a}/earnings/history?limit=%2B5"),
            "invalid_query",
        ),
        (
            format!("/v1/users/{a}/earnings/daily?from=%2B2026-01-01"),
            "invalid_query",
        ),
        (
            format!("/v1/users/{a}/earnings/history?bogus=1"),
            "invalid_query",
        ),
        // Routes that take no parameters refuse a misspelt one too, not ignore it.
        (format!("/v1/users/{a}/earnings?limt=5"), "invalid_query"),
        (
            format!("/v1/users/{a}/earnings/by-referral?x"),
            "invalid_query",
        ),
        (
            format!("/v1/users/{a}/earnings/by-leg?x=1"),
            "invalid_query",
        ),
        (
            format!("/v1/users/{a}/earnings/stream?x=1"),
            "invalid_query",
        ),
        ("/v1/me?x=1".to_owned(), "invalid_query"),
        ("/v1/admin/plan?x=1".to_owned(), "invalid_query"),
        (
            format!("/v1/users/{a}/earnings/daily?from=2020-01-01&to=2026-01-01"),
            "invalid_range",
        ),
        // Years outside RFC 3339's four digits are no instant of the wire at all.
        (
            format!("/v1/users/{a}/earnings/history?from=-4714-01-01T00:00:00Z"),
            "invalid_query",
        ),
        (
            format!("/v1/users/{a}/earnings/history?to=-262143-01-01T00:00:00Z"),
            "invalid_query",
        ),
        // Instants outside the days a series takes.
        (
            format!("/v1/users/{a}/earnings/history?from=1969-12-31T23:59:59Z"),
            "invalid_range",
        ),
        (
            format!("/v1/users/{a}/earnings/history?to=2106-01-01T00:00:00Z"),
            "invalid_range",
        ),
    ] {
        let r = app.get(&path, Some(&app.admin)).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["code"], code, "{path}");
    }
    for path in [
        format!("/v1/users/{a}/earnings/history?limit=10"),
        format!("/v1/users/{a}/earnings/history?from=1970-01-01T00:00:00Z&to=2105-12-31T23:59:59Z"),
    ] {
        let r = app.get(&path, Some(&app.admin)).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn the_tree_shows_a_chosen_pseudonym_and_nothing_personal() {
    let app = TestApp::spawn().await;
    let a = app.signup(None).await;
    let named = app
        .post(
            "/v1/users",
            &app.shop_key,
            &serde_json::json!({ "referrer_id": a, "display_name": "Lucky Otter" }),
        )
        .await;
    assert_eq!(named.status(), StatusCode::CREATED);
    let unnamed = app.signup(Some(a)).await;
    let tree = app
        .get_json(&format!("/v1/users/{a}/tree"), &app.token_for(a))
        .await;
    let kids = tree["root"]["children"].as_array().unwrap();
    let name_of =
        |id: String| kids.iter().find(|k| k["user_id"] == id).unwrap()["display_name"].clone();
    let named: Value = named.json().await.unwrap();
    assert_eq!(
        name_of(named["id"].as_str().unwrap().to_owned()),
        "Lucky Otter"
    );
    assert_eq!(name_of(unnamed.to_string()), Value::Null);
    for field in kids[0].as_object().unwrap().keys() {
        assert!(
            [
                "user_id",
                "status",
                "display_name",
                "depth",
                "contributed",
                "children"
            ]
            .contains(&field.as_str()),
            "unexpected field {field} in the downline"
        );
    }
    // Surrounding spaces, and invisible characters that hide or reorder what is shown
    // (a right-to-left override, a zero-width space, an isolate, a byte-order mark).
    for name in [
        " x",
        "Otter\u{202E}rettO",
        "Ot\u{200B}ter",
        "\u{2066}Otter\u{2069}",
        "\u{FEFF}Otter",
    ] {
        let bad = app
            .post(
                "/v1/users",
                &app.shop_key,
                &serde_json::json!({ "referrer_id": a, "display_name": name }),
            )
            .await;
        assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY, "{name:?}");
        let p: Value = bad.json().await.unwrap();
        assert_eq!(p["code"], "invalid_display_name", "{name:?}");
    }
    let children = app
        .get_json(&format!("/v1/users/{a}/tree"), &app.token_for(a))
        .await;
    assert_eq!(children["root"]["children"].as_array().unwrap().len(), 2);
}
