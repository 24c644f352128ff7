//! `referral demo` as the README's first command runs it: against a running app with the
//! default rate limits, it completes, and every purchase it sent is paid.
use clap::Parser;
use e2e::{eventually, TestApp};
use referral::demo::DemoArgs;

#[derive(Parser)]
struct Demo {
    #[command(flatten)]
    args: DemoArgs,
}

#[tokio::test]
async fn the_demo_completes_within_the_default_rate_limits() {
    let app = TestApp::spawn().await;
    let defaults = platform::config::HttpConfig::default();
    assert_eq!(
        (
            app.config.http.rate_limit_per_sec,
            app.config.http.rate_limit_burst
        ),
        (defaults.rate_limit_per_sec, defaults.rate_limit_burst),
        "the limits a fresh machine runs with"
    );
    let Demo { args } = Demo::parse_from(["demo", "--base-url", app.base.as_str()]);
    let purchases = args.purchases as i64;
    assert!(
        purchases > i64::from(defaults.rate_limit_burst),
        "more purchases than one burst allows"
    );
    referral::demo::run(&app.config, args)
        .await
        .map_err(|e| format!("{e:#}"))
        .unwrap();
    let settled = eventually(|| app.settled(), |n| *n >= purchases).await;
    assert_eq!(settled, purchases);
    app.assert_verified().await;
}

#[tokio::test]
async fn the_demo_waits_out_rate_limits_it_runs_into() {
    let app = TestApp::spawn_with(|c| {
        c.http.rate_limit_per_sec = 20;
        c.http.rate_limit_burst = 10;
    })
    .await;
    let argv = [
        "demo",
        "--base-url",
        app.base.as_str(),
        "--users",
        "30",
        "--purchases",
        "100",
        "--batch-size",
        "10",
    ];
    let Demo { args } = Demo::parse_from(argv);
    referral::demo::run(&app.config, args)
        .await
        .map_err(|e| format!("{e:#}"))
        .unwrap();
    let metrics = app.metrics().await;
    let refused: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix(r#"referral_rate_limited_total{kind="shop"}"#))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(refused >= 1.0, "the demo met 429s and waited them out");
    let settled = eventually(|| app.settled(), |n| *n >= 100).await;
    assert_eq!(settled, 100);
}
