//! The dashboard in headless Chromium (Debian's, driven by playwright-core): sign in,
//! post a purchase through the API, see the total and ticker update without reload; then
//! sign in as an admin and view that user.
use e2e::TestApp;
use std::path::PathBuf;
use std::process::Command;

#[tokio::test]
async fn dashboard_shows_a_new_earning_live_without_reload() {
    let app = TestApp::spawn().await;
    let (_, b, c) = app.chain3().await;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let artifacts = root.join("test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join("dashboard.png");
    let script = root.join("tests/browser/dashboard.mjs");
    let mut cmd = Command::new("node");
    cmd.arg(&script)
        .env("BASE_URL", &app.base)
        .env("USER_TOKEN", app.token_for(b))
        .env("ADMIN_TOKEN", &app.admin)
        .env("VIEW_USER_ID", b.to_string())
        .env("SHOP_KEY", &app.shop_key)
        .env("BUYER_ID", c.to_string())
        .env("ORDER_ID", "browser-1")
        .env("EXPECTED_TOTAL", "₹25.00")
        .env("SCREENSHOT", &screenshot);
    if let Ok(chromium) = std::env::var("CHROMIUM_BIN") {
        cmd.env("CHROMIUM", chromium);
    }
    // The browser runs in its own process; wait for it off the runtime that serves the app.
    let output = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser test failed:\n{stdout}\n{stderr}"
    );
    assert!(screenshot.exists(), "screenshot saved");
    assert_eq!(app.total(b).await, "25.00");
}
