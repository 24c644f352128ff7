use super::*;

#[test]
fn order_ids_are_restricted() {
    assert!(OrderId::parse("A-1:2.x_y").is_ok());
    assert!(OrderId::parse("").is_err());
    assert!(OrderId::parse("has space").is_err());
    assert!(OrderId::parse(&"x".repeat(129)).is_err());
    assert!(OrderId::parse("a.b>c").is_err());
}

#[test]
fn ids_have_one_spelling() {
    let id = "0192f3a4-5b6c-7d8e-9fa0-b1c2d3e4f5a6";
    let user: UserId = id.parse().unwrap();
    assert_eq!(user.to_string(), id);
    assert_eq!(id.to_uppercase().parse::<UserId>().unwrap(), user);
    for other in [
        "{0192f3a4-5b6c-7d8e-9fa0-b1c2d3e4f5a6}",
        "urn:uuid:0192f3a4-5b6c-7d8e-9fa0-b1c2d3e4f5a6",
        "0192f3a45b6c7d8e9fa0b1c2d3e4f5a6",
        " 0192f3a4-5b6c-7d8e-9fa0-b1c2d3e4f5a6",
        "0192f3a4-5b6c-7d8e-9fa0-b1c2d3e4f5a",
        "0192f3a4-5b6c-7d8e-9fa0b-1c2d3e4f5a6",
        "0192f3a4-5b6c-7d8e-9fa0-b1c2d3e4f5ag",
    ] {
        assert!(other.parse::<UserId>().is_err(), "{other}");
        assert!(other.parse::<ShopId>().is_err(), "{other}");
        let json = format!("\"{other}\"");
        assert!(serde_json::from_str::<UserId>(&json).is_err(), "{other}");
    }
    assert_eq!(
        serde_json::from_str::<UserId>(&format!("\"{id}\"")).unwrap(),
        user
    );
}
