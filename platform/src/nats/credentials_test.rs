//! What the credentials in `nats.url` become, and how the URL is shown.
use super::*;

#[test]
fn credentials_never_show_and_every_server_names_the_same() {
    assert_eq!(
        redacted("nats://svc:s3cr%40t@a:4222, nats://svc:s3cr%40t@b:4222"),
        "nats://***@a:4222, nats://***@b:4222"
    );
    assert_eq!(redacted("tok@a:4222"), "***@a:4222");
    assert_eq!(redacted("nats://a:4222"), "nats://a:4222");
    let addrs = crate::nats::server_addrs("nats://svc:x@a:4222,nats://svc:y@b:4222").unwrap();
    let refused = apply(ConnectOptions::new(), &addrs).err().unwrap();
    assert!(refused.to_string().contains("same credentials"));
}
