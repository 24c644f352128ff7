use super::KnownUsers;
use schemas::UserId;

fn user() -> UserId {
    uuid::Uuid::now_v7().to_string().parse().unwrap()
}

#[test]
fn keeps_at_most_its_capacity_and_the_users_read_last() {
    let known = KnownUsers::new(4);
    let users: Vec<UserId> = (0..6).map(|_| user()).collect();
    for u in &users[..2] {
        known.insert(*u);
    }
    assert!(known.contains(users[0]));
    for u in &users[2..] {
        known.insert(*u);
    }
    let kept = users.iter().filter(|u| known.contains(**u)).count();
    assert!(kept <= 4, "{kept}");
    assert!(known.contains(users[5]));
    assert!(!known.contains(user()));
}

#[test]
fn a_capacity_of_zero_keeps_none() {
    let known = KnownUsers::new(0);
    let u = user();
    known.insert(u);
    assert!(!known.contains(u));
}
