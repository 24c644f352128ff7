#[test]
fn the_refusal_is_a_whole_problem_answer() {
    let bytes = super::refusal();
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(text.starts_with("HTTP/1.1 503 "), "{text}");
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.contains(&format!("content-length: {}", body.len())));
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["code"], "too_many_connections");
    assert_eq!(body["status"], 503);
}

#[test]
fn the_cap_leaves_the_reserved_files_free_under_the_open_file_limit() {
    let cap = super::ConnectionCap::new(usize::MAX, 1_024);
    let (soft, _) = rlimit::Resource::NOFILE.get().unwrap();
    assert_eq!(cap.limit() as u64, soft - 1_024);
    assert_eq!(super::ConnectionCap::new(7, 1_024).limit(), 7);
}
