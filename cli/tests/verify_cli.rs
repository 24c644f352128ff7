//! `referral verify` as an operator runs it: exit 0 on a consistent ledger, non-zero
//! (with the difference printed) when a balance disagrees with its entries.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::process::Command;

fn verify(database_url: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_referral"))
        .arg("verify")
        .env("DATABASE_URL", database_url)
        .env("REFERRAL_LOG__FILTER", "error")
        .output()
        .unwrap()
}

#[tokio::test]
async fn verify_exits_non_zero_exactly_when_the_ledger_disagrees() {
    let server = std::env::var("TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let name = format!(
        "referral_cli_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let config = platform::config::DatabaseConfig {
        url: format!("{server}/{name}"),
        ..Default::default()
    };
    let pool = platform::db::create_and_migrate(&config).await.unwrap();

    let clean = verify(&config.url);
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    assert!(String::from_utf8_lossy(&clean.stdout).contains("0 differences"));

    let user = uuid::Uuid::now_v7();
    sqlx::query("INSERT INTO users (id) VALUES ($1)")
        .bind(user)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO balances (user_id, level, total, entries) VALUES ($1, 1, 5.00, 1)")
        .bind(user)
        .execute(&pool)
        .await
        .unwrap();
    let tampered = verify(&config.url);
    assert!(
        !tampered.status.success(),
        "a balance without entries must fail verify"
    );
    let out = String::from_utf8_lossy(&tampered.stdout);
    assert!(
        out.contains("DIFF") && out.contains(&user.to_string()),
        "{out}"
    );

    pool.close().await;
    let admin = sqlx::PgPool::connect(&format!("{server}/postgres"))
        .await
        .unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
}
