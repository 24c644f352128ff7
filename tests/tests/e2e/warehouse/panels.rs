//! Every Grafana panel's SQL, taken from the dashboard JSON, run on ClickHouse with
//! Grafana's own macro expansion, against numbers computed from the Postgres ledger.
use super::seed::{caught_up, seed, with_warehouse};
use chrono::{DateTime, Duration, NaiveDate, SubsecRound, Utc};
use e2e::{clickhouse, TestApp};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../dashboards/grafana/dashboards/referral-earnings.json"
);

struct Entry {
    beneficiary: Uuid,
    leg: Uuid,
    level: i16,
    amount: Decimal,
    created_at: DateTime<Utc>,
}

struct Purchase {
    shop: Uuid,
    amount: Decimal,
    occurred_at: DateTime<Utc>,
}

/// A dashboard time range, in whole seconds as `$__fromTime`/`$__toTime` expand.
struct Window {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

impl Window {
    /// The grafana-clickhouse-datasource expansion: `toDateTime(intDiv(<ms>,1000))`.
    fn expand(&self, sql: &str, db: &str) -> String {
        let sql = sql
            .replace(
                "$__fromTime",
                &format!("toDateTime(intDiv({},1000))", self.from.timestamp_millis()),
            )
            .replace(
                "$__toTime",
                &format!("toDateTime(intDiv({},1000))", self.to.timestamp_millis()),
            )
            .replace("referral.", &format!("{db}."));
        assert!(
            !sql.contains('$'),
            "a macro or variable the test does not expand: {sql}"
        );
        sql
    }
    /// Raw rows: ClickHouse stores times in whole seconds.
    fn has_time(&self, t: DateTime<Utc>) -> bool {
        (self.from..=self.to).contains(&t.trunc_subsecs(0))
    }
    /// Rollups: whole UTC days from the day of `from` to the day of `to`.
    fn has_day(&self, d: NaiveDate) -> bool {
        (self.from.date_naive()..=self.to.date_naive()).contains(&d)
    }
}

fn f(d: Decimal) -> Value {
    json!(d.to_f64().unwrap())
}

fn time(d: NaiveDate) -> String {
    format!("{d} 00:00:00")
}

fn suffix(id: Uuid) -> String {
    id.to_string()[24..].to_owned()
}

/// What panel `title` must show for `w`, and the columns (with direction) its rows are
/// sorted by. Every panel of the dashboard needs an arm here.
fn expected(
    title: &str,
    es: &[Entry],
    ps: &[Purchase],
    w: &Window,
    threshold: Decimal,
) -> (Vec<Value>, Vec<(&'static str, bool)>) {
    let days: Vec<&Entry> = es
        .iter()
        .filter(|e| w.has_day(e.created_at.date_naive()))
        .collect();
    let shop_days: Vec<&Purchase> = ps
        .iter()
        .filter(|p| w.has_day(p.occurred_at.date_naive()))
        .collect();
    let mut sums: BTreeMap<Vec<String>, (Decimal, u64, Vec<i16>)> = BTreeMap::new();
    let mut add = |key: Vec<String>, amount: Decimal, level: i16| {
        let s = sums.entry(key).or_default();
        s.0 += amount;
        s.1 += 1;
        if !s.2.contains(&level) {
            s.2.push(level);
        }
    };
    let rows = match title {
        "Net earnings paid" => {
            let net: Decimal = es
                .iter()
                .filter(|e| w.has_time(e.created_at))
                .map(|e| e.amount)
                .sum();
            return (vec![json!({ "net_earnings": f(net) })], vec![]);
        }
        "Purchases" => {
            let inside: Vec<&Purchase> = ps.iter().filter(|p| w.has_time(p.occurred_at)).collect();
            let qualifying = inside.iter().filter(|p| p.amount >= threshold).count();
            return (
                vec![json!({ "purchases": inside.len(), "qualifying": qualifying })],
                vec![],
            );
        }
        "Earnings by referral level" => {
            days.iter()
                .for_each(|e| add(vec![e.level.to_string()], e.amount, e.level));
            let rows = sums.iter().map(
                |(k, s)| json!({ "level_name": format!("Level {}", k[0]), "earnings": f(s.0) }),
            );
            return (rows.collect(), vec![("level_name", true)]);
        }
        "Earnings over time by level" => {
            days.iter().for_each(|e| {
                add(
                    vec![time(e.created_at.date_naive()), e.level.to_string()],
                    e.amount,
                    e.level,
                )
            });
            let rows = sums.iter().map(|(k, s)| json!({ "time": k[0], "level_name": format!("Level {}", k[1]), "earnings": f(s.0) }));
            return (rows.collect(), vec![("time", true), ("level_name", true)]);
        }
        "Earnings by leg (top 25)" => {
            days.iter().for_each(|e| {
                add(
                    vec![suffix(e.beneficiary), suffix(e.leg)],
                    e.amount,
                    e.level,
                )
            });
            let rows = sums.iter().map(|(k, s)| json!({ "leg": format!("{} / leg {}", k[0], k[1]), "earnings": f(s.0), "entries": s.1 }));
            (rows.collect::<Vec<_>>(), vec![("earnings", false)], 25)
        }
        "Top earners" => {
            days.iter()
                .for_each(|e| add(vec![e.beneficiary.to_string()], e.amount, e.level));
            let rows = sums.iter().map(|(k, s)| json!({ "beneficiary": k[0], "earnings": f(s.0), "entries": s.1, "levels_paid": s.2.len() }));
            (rows.collect::<Vec<_>>(), vec![("earnings", false)], 20)
        }
        "Purchases per shop per day" => {
            shop_days.iter().for_each(|p| {
                add(
                    vec![time(p.occurred_at.date_naive()), suffix(p.shop)],
                    p.amount,
                    0,
                )
            });
            let rows = sums
                .iter()
                .map(|(k, s)| json!({ "time": k[0], "shop": k[1], "purchases": s.1 }));
            return (rows.collect(), vec![("time", true), ("shop", true)]);
        }
        "Shop days" => {
            let mut qualifying: BTreeMap<Vec<String>, u64> = BTreeMap::new();
            for p in &shop_days {
                let key = vec![p.occurred_at.date_naive().to_string(), p.shop.to_string()];
                *qualifying.entry(key.clone()).or_default() += u64::from(p.amount >= threshold);
                add(key, p.amount, 0);
            }
            let rows = sums.iter().map(|(k, s)| json!({ "day": k[0], "shop": k[1], "purchases": s.1, "qualifying": qualifying[k], "amount": f(s.0) }));
            (
                rows.collect::<Vec<_>>(),
                vec![("day", false), ("purchases", false)],
                200,
            )
        }
        other => panic!("panel {other:?} has no expectation in this test; add one"),
    };
    let (rows, order, limit) = rows;
    assert!(
        rows.len() <= limit,
        "the seed exceeds the panel's LIMIT {limit}; ties would make it ambiguous"
    );
    (rows, order)
}

/// Rows as sorted canonical strings (numbers at two places), so order does not matter.
fn canonical(rows: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = rows
        .iter()
        .map(|r| {
            let fields: BTreeMap<&String, String> = r
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| {
                    (
                        k,
                        v.as_f64()
                            .map_or_else(|| v.to_string(), |n| format!("{n:.2}")),
                    )
                })
                .collect();
            format!("{fields:?}")
        })
        .collect();
    out.sort();
    out
}

fn assert_sorted(title: &str, rows: &[Value], order: &[(&str, bool)]) {
    let key = |r: &Value| -> Vec<(Option<f64>, String)> {
        order
            .iter()
            .map(|(c, _)| {
                (
                    r[*c].as_f64(),
                    r[*c].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    for pair in rows.windows(2) {
        let (a, b) = (key(&pair[0]), key(&pair[1]));
        for (i, (_, ascending)) in order.iter().enumerate() {
            let ord = a[i].partial_cmp(&b[i]).unwrap();
            let ord = if *ascending { ord } else { ord.reverse() };
            assert!(ord.is_le(), "panel {title:?}: rows out of order: {pair:?}");
            if ord.is_lt() {
                break;
            }
        }
    }
}

#[tokio::test]
async fn every_grafana_panel_shows_what_the_ledger_says() {
    let app = TestApp::spawn_with(with_warehouse).await;
    seed(&app).await;
    caught_up(&app).await;
    let es = sqlx::query_as!(Entry, "SELECT beneficiary_id AS beneficiary, leg_user_id AS leg, level, amount, created_at FROM earnings")
        .fetch_all(&app.pool).await.unwrap();
    let ps = sqlx::query_as!(
        Purchase,
        "SELECT shop_id AS shop, amount, occurred_at FROM purchases"
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let threshold = app.config.plan.qualifying_threshold().as_decimal();
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(DASHBOARD).unwrap()).unwrap();
    let today = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let windows = [
        // Cuts through the day two days ago: raw filters and day filters differ there.
        Window {
            from: today - Duration::days(2) + Duration::hours(12),
            to: (Utc::now() + Duration::hours(1)).trunc_subsecs(0),
        },
        // Only the oldest purchases, no earnings.
        Window {
            from: today - Duration::days(30),
            to: today - Duration::days(5),
        },
    ];
    let (url, db) = (&app.config.clickhouse.url, &app.config.clickhouse.database);
    let mut checked = 0;
    for w in &windows {
        for panel in dashboard["panels"].as_array().unwrap() {
            let title = panel["title"].as_str().unwrap();
            let Some(targets) = panel["targets"].as_array() else {
                continue;
            };
            for target in targets {
                let got =
                    clickhouse::rows(url, &w.expand(target["rawSql"].as_str().unwrap(), db)).await;
                let (want, order) = expected(title, &es, &ps, w, threshold);
                assert_eq!(canonical(&got), canonical(&want), "panel {title:?}");
                assert_sorted(title, &got, &order);
                checked += 1;
            }
        }
    }
    let panels_with_sql = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["targets"].is_array())
        .count();
    assert_eq!(checked, 2 * panels_with_sql);
    assert!(panels_with_sql >= 8, "the dashboard lost panels");
    // The seed shows up in both windows, so neither comparison was vacuous.
    let first = clickhouse::rows(
        url,
        &windows[0].expand(
            "SELECT count() AS n FROM referral.earning_events WHERE created_at >= $__fromTime",
            db,
        ),
    )
    .await;
    assert!(first[0]["n"].as_u64().unwrap() > 0);
    assert!(ps.iter().any(|p| windows[1].has_time(p.occurred_at)));
}
