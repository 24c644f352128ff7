use super::{ConnectionCap, Refusal};
use std::net::IpAddr;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn the_refusals_are_whole_problem_answers() {
    for (why, status, code) in [
        (Refusal::Full, 503, "too_many_connections"),
        (Refusal::Address, 429, "too_many_connections_from_address"),
    ] {
        let bytes = super::refusal(why);
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{text}");
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(head.contains("retry-after: 1"), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["code"], code);
        assert_eq!(body["status"], status);
    }
}

#[test]
fn the_cap_leaves_the_reserved_files_free_under_the_open_file_limit() {
    let cap = ConnectionCap::new(usize::MAX, 1_024, 0);
    let (soft, _) = rlimit::Resource::NOFILE.get().unwrap();
    assert_eq!(cap.limit() as u64, soft - 1_024);
    assert_eq!(ConnectionCap::new(7, 1_024, 0).limit(), 7);
}

#[test]
fn one_address_holds_at_most_its_share_and_others_still_get_in() {
    let cap = ConnectionCap::new(10, 0, 2);
    let first = cap.admit(ip("10.0.0.1")).unwrap();
    let _second = cap.admit(ip("10.0.0.1")).unwrap();
    assert_eq!(cap.admit(ip("10.0.0.1")).err(), Some(Refusal::Address));
    // The same host spelled as an IPv4-mapped IPv6 address is the same address.
    assert_eq!(
        cap.admit(ip("::ffff:10.0.0.1")).err(),
        Some(Refusal::Address)
    );
    let _other = cap.admit(ip("10.0.0.2")).unwrap();
    drop(first);
    let _again = cap.admit(ip("10.0.0.1")).unwrap();
    assert_eq!(cap.open.lock().unwrap().len(), 2);
}

#[test]
fn an_ipv6_host_is_its_64_and_the_next_64_is_another_host() {
    let cap = ConnectionCap::new(10, 0, 1);
    let _held = cap.admit(ip("2001:db8:1:2::1")).unwrap();
    assert_eq!(
        cap.admit(ip("2001:db8:1:2:ffff::9")).err(),
        Some(Refusal::Address)
    );
    let _next = cap.admit(ip("2001:db8:1:3::1")).unwrap();
}

#[test]
fn a_full_listener_refuses_and_takes_no_share_of_the_address() {
    let cap = ConnectionCap::new(1, 0, 2);
    let held = cap.admit(ip("10.0.0.1")).unwrap();
    assert_eq!(cap.admit(ip("10.0.0.2")).err(), Some(Refusal::Full));
    assert_eq!(cap.admit(ip("10.0.0.1")).err(), Some(Refusal::Full));
    drop(held);
    // Nothing is left counted: the map is empty once every connection closed.
    assert!(cap.open.lock().unwrap().is_empty());
    let _a = cap.admit(ip("10.0.0.1")).unwrap();
}

#[test]
fn no_bound_per_address_when_it_is_zero() {
    let cap = ConnectionCap::new(100, 0, 0);
    let held: Vec<_> = (0..50)
        .map(|_| cap.admit(ip("127.0.0.1")).unwrap())
        .collect();
    assert_eq!(held.len(), 50);
    assert!(cap.open.lock().unwrap().is_empty());
}
