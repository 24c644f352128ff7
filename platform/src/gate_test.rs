use super::address_bucket;
use std::net::IpAddr;

fn bucket(ip: &str) -> String {
    address_bucket(ip.parse::<IpAddr>().unwrap())
}

#[test]
fn one_bucket_per_ipv4_address_and_per_ipv6_64() {
    assert_eq!(bucket("203.0.113.7"), "203.0.113.7");
    assert_ne!(bucket("203.0.113.7"), bucket("203.0.113.8"));
    // An IPv4 client seen through a dual-stack socket is the same IPv4 client.
    assert_eq!(bucket("::ffff:203.0.113.7"), "203.0.113.7");
    // Every address of one /64 is one client; the next /64 is another.
    assert_eq!(bucket("2001:db8:1:2::1"), "2001:db8:1:2::/64");
    assert_eq!(
        bucket("2001:db8:1:2:ffff:ffff:ffff:ffff"),
        bucket("2001:db8:1:2:1234:5678:9abc:def0")
    );
    assert_ne!(bucket("2001:db8:1:2::1"), bucket("2001:db8:1:3::1"));
    assert_eq!(bucket("::1"), "::/64");
}
