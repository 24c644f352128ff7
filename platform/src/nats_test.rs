use super::*;

#[test]
fn one_url_or_a_comma_separated_cluster() {
    assert_eq!(server_addrs("nats://127.0.0.1:4222").unwrap().len(), 1);
    let cluster =
        server_addrs("nats://127.0.0.1:4222, nats://127.0.0.1:4223,nats://127.0.0.1:4224,")
            .unwrap();
    let ports: Vec<u16> = cluster.iter().map(ServerAddr::port).collect();
    assert_eq!(ports, [4222, 4223, 4224]);
}

#[test]
fn a_url_list_with_a_bad_member_or_none_is_refused() {
    let e = server_addrs("nats://127.0.0.1:4222,http://x:1").unwrap_err();
    assert!(format!("{e:#}").contains("http://x:1"), "{e:#}");
    assert!(server_addrs(" , ").is_err());
}

#[test]
fn start_up_raises_replicas_but_never_lowers_them() {
    assert_eq!(replicas_to_apply(1, 1), 1);
    assert_eq!(replicas_to_apply(3, 1), 3, "configured more: raised");
    assert_eq!(replicas_to_apply(1, 3), 3, "an operator's R3 stands");
    assert_eq!(replicas_to_apply(1, 0), 1, "0 (unset) is one copy");
}
