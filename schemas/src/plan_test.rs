use super::*;

#[test]
fn default_plan_round_trips_and_validates() {
    let p = Plan::default();
    let json = serde_json::to_string(&p).unwrap();
    let back: Plan = serde_json::from_str(&json).unwrap();
    assert_eq!(p, back);
    assert_eq!(p.qualifying_threshold().to_string(), "1000.00");
}

#[test]
fn invalid_plans_are_refused() {
    let bad = r#"{"version":1,"level_rates":["0.7","0.4"],"qualifying_threshold":"1000","max_direct_referrals":8,"inactive_policy":"skip"}"#;
    assert!(serde_json::from_str::<Plan>(bad).is_err());
    let none = r#"{"version":1,"level_rates":[],"qualifying_threshold":"1000","max_direct_referrals":8,"inactive_policy":"skip"}"#;
    assert!(serde_json::from_str::<Plan>(none).is_err());
}
