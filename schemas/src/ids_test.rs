use super::*;

#[test]
fn order_ids_are_restricted() {
    assert!(OrderId::parse("A-1:2.x_y").is_ok());
    assert!(OrderId::parse("").is_err());
    assert!(OrderId::parse("has space").is_err());
    assert!(OrderId::parse(&"x".repeat(129)).is_err());
    assert!(OrderId::parse("a.b>c").is_err());
}
