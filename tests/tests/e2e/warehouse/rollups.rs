//! The rollups equal the Postgres ledger for a seeded workload, before and after their
//! parts merge.
use super::seed::{caught_up, seed, with_warehouse};
use super::{assert_exactly_once, money};
use e2e::{clickhouse, TestApp};
use schemas::Money;
use std::collections::BTreeSet;

#[tokio::test]
async fn rollups_equal_the_postgres_ledger() {
    let app = TestApp::spawn_with(with_warehouse).await;
    seed(&app).await;
    caught_up(&app).await;
    assert_exactly_once(&app).await;
    let (url, db) = (&app.config.clickhouse.url, &app.config.clickhouse.database);
    let threshold = app.config.plan.qualifying_threshold().as_decimal();
    let levels: BTreeSet<String> = sqlx::query!(
        r#"SELECT beneficiary_id, level, (created_at AT TIME ZONE 'UTC')::date AS "day!",
                  sum(amount) AS "total!", count(*) AS "entries!"
           FROM earnings GROUP BY 1, 2, 3"#
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .into_iter()
    .map(|r| {
        format!(
            "{} {} {} {} {}",
            r.beneficiary_id,
            r.level,
            r.day,
            money(r.total),
            r.entries
        )
    })
    .collect();
    let legs: BTreeSet<String> = sqlx::query!(
        r#"SELECT beneficiary_id, leg_user_id, (created_at AT TIME ZONE 'UTC')::date AS "day!",
                  sum(amount) AS "total!", count(*) AS "entries!"
           FROM earnings GROUP BY 1, 2, 3"#
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .into_iter()
    .map(|r| {
        format!(
            "{} {} {} {} {}",
            r.beneficiary_id,
            r.leg_user_id,
            r.day,
            money(r.total),
            r.entries
        )
    })
    .collect();
    let shops: BTreeSet<String> = sqlx::query!(
        r#"SELECT shop_id, (occurred_at AT TIME ZONE 'UTC')::date AS "day!", count(*) AS "purchases!",
                  count(*) FILTER (WHERE amount >= $1) AS "qualifying!", sum(amount) AS "amount!"
           FROM purchases GROUP BY 1, 2"#,
        threshold
    )
    .fetch_all(&app.pool).await.unwrap().into_iter()
    .map(|r| format!("{} {} {} {} {}", r.shop_id, r.day, r.purchases, r.qualifying, money(r.amount)))
    .collect();
    assert!(
        levels.len() > 5 && legs.len() > 5 && shops.len() > 4,
        "the seed is too small"
    );
    // Rows as text, the money column read as Money (ClickHouse's toString of a Decimal
    // keeps trailing zeros on 18.16, drops them on current versions).
    let from_clickhouse = |sql: String, money_column: usize| async move {
        let text = clickhouse::query(url, &format!("{sql} FORMAT TabSeparated")).await;
        text.lines()
            .map(|l| {
                let mut fields: Vec<String> = l.split('\t').map(str::to_owned).collect();
                fields[money_column] = Money::parse(&fields[money_column]).unwrap().to_string();
                fields.join(" ")
            })
            .collect::<BTreeSet<String>>()
    };
    // Before and after the rollups' parts merge, the sums stay exact.
    for merged in [false, true] {
        if merged {
            for t in [
                "earnings_daily_by_level",
                "earnings_daily_by_leg",
                "purchases_daily_by_shop",
            ] {
                clickhouse::query(url, &format!("OPTIMIZE TABLE {db}.{t} FINAL")).await;
            }
        }
        let got = from_clickhouse(
            format!(
                "SELECT toString(beneficiary_id), level, day, toString(sum(amount)), sum(entries)
             FROM {db}.earnings_daily_by_level GROUP BY beneficiary_id, level, day"
            ),
            3,
        )
        .await;
        assert_eq!(
            got, levels,
            "per beneficiary x level x day (merged: {merged})"
        );
        let got = from_clickhouse(format!(
            "SELECT toString(beneficiary_id), toString(leg_user_id), day, toString(sum(amount)), sum(entries)
             FROM {db}.earnings_daily_by_leg GROUP BY beneficiary_id, leg_user_id, day"
        ), 3).await;
        assert_eq!(got, legs, "per beneficiary x leg x day (merged: {merged})");
        let got = from_clickhouse(
            format!(
            "SELECT toString(shop_id), day, sum(purchases), sum(qualifying), toString(sum(amount))
             FROM {db}.purchases_daily_by_shop GROUP BY shop_id, day"
        ),
            4,
        )
        .await;
        assert_eq!(got, shops, "per shop x day (merged: {merged})");
    }
}
