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
