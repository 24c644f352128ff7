//! Connections themselves: how long a silent or half-sent request head may hold one, how
//! many may be open, and how long a client may leave a response unread.
use e2e::TestApp;

/// A client sending half a request head is cut off after `http.header_read_timeout_ms`,
/// so such connections cannot pile up until the process runs out of files; a whole
/// request on another connection meanwhile is answered.
#[tokio::test]
async fn a_connection_that_sends_half_a_header_or_nothing_is_closed_after_the_header_timeout() {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    let app = TestApp::spawn_with(|c| c.http.header_read_timeout_ms = 300).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let started = Instant::now();
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    let half = b"GET /healthz HTTP/1.1\r\nHost: referral\r\nX-Slow: ";
    slow.write_all(half).await.unwrap();
    // One that sends nothing at all: closed too (no protocol sniffing without a timer).
    let mut silent = TcpStream::connect(&addr).await.unwrap();

    let mut whole = TcpStream::connect(&addr).await.unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nHost: referral\r\nConnection: close\r\n\r\n";
    whole.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    whole.read_to_end(&mut answer).await.unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");

    // The server closes it (a reset counts): reading ends instead of waiting forever.
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut rest)).await;
    assert!(
        ended.is_ok(),
        "the half-sent request's connection is still open"
    );
    let ended = tokio::time::timeout(Duration::from_secs(10), silent.read_to_end(&mut rest)).await;
    assert!(ended.is_ok(), "the silent connection is still open");
    assert!(started.elapsed() >= Duration::from_millis(300));
}

/// Sends a request on `stream` and reads until its answer's status line and head arrived.
async fn ask_head(stream: &mut tokio::net::TcpStream, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(request).await.unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before an answer: {got:?}");
        got.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// At `http.max_connections` a further connection is answered 503 `too_many_connections`
/// and closed at once (so sockets cannot use up the process's files), the connections
/// already open keep being served, and a place frees when one of them closes.
#[tokio::test]
async fn connections_past_the_cap_are_answered_503_and_places_free_as_they_close() {
    use tokio::net::TcpStream;
    let app = TestApp::spawn_with(|c| c.http.max_connections = 3).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let keep_alive = b"GET /healthz HTTP/1.1\r\nHost: referral\r\n\r\n";
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        let head = ask_head(&mut s, keep_alive).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        open.push(s);
    }

    let mut extra = TcpStream::connect(&addr).await.unwrap();
    let (head, body) = refusal_of(&mut extra).await;
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(head.contains("application/problem+json"), "{head}");
    assert_eq!(body["code"], "too_many_connections");

    let head = ask_head(&mut open[1], keep_alive).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    drop(open.remove(0));
    until_served(|| TcpStream::connect(addr.clone()), "503").await;
}

/// Connects until the server has seen a closed connection free its place: each try is
/// served 200 or refused with `refused`, and one is served within 10 s.
async fn until_served<F, C>(connect: F, refused: &str)
where
    F: Fn() -> C,
    C: std::future::Future<Output = std::io::Result<tokio::net::TcpStream>>,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let closing = b"GET /healthz HTTP/1.1\r\nHost: referral\r\nConnection: close\r\n\r\n";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        // A refused connection may be reset under the request it was sent: not yet.
        let mut s = connect().await.unwrap();
        let mut answer = Vec::new();
        let asked = s.write_all(closing).await;
        if asked.is_ok() && s.read_to_end(&mut answer).await.is_ok() {
            if answer.starts_with(b"HTTP/1.1 200") {
                return;
            }
            let refusal = format!("HTTP/1.1 {refused}");
            assert!(answer.starts_with(refusal.as_bytes()), "{answer:?}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no place freed after a close"
        );
        tokio::task::yield_now().await;
    }
}

/// Reads a refused connection's whole answer (the server writes it and closes).
async fn refusal_of(stream: &mut tokio::net::TcpStream) -> (String, serde_json::Value) {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer);
    tokio::time::timeout(std::time::Duration::from_secs(10), read)
        .await
        .expect("the refused connection is answered")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    (head.to_owned(), serde_json::from_str(body).unwrap())
}

/// At `http.max_connections_per_address` one host's next connection is answered 429
/// `too_many_connections_from_address` and closed, while another host (another loopback
/// source address) is still served and the first host's place frees as one closes: one
/// host cannot take every place of the listener.
#[tokio::test]
async fn one_address_past_its_share_is_answered_429_while_another_is_served() {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use tokio::net::{TcpSocket, TcpStream};
    let app = TestApp::spawn_with(|c| c.http.max_connections_per_address = 2).await;
    let addr: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let keep_alive = b"GET /healthz HTTP/1.1\r\nHost: referral\r\n\r\n";
    let from = |last: u8| async move {
        let socket = TcpSocket::new_v4().unwrap();
        let source = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)), 0);
        socket.bind(source).unwrap();
        socket.connect(addr).await
    };
    let mut open: Vec<TcpStream> = Vec::new();
    for _ in 0..2 {
        let mut s = from(1).await.unwrap();
        let head = ask_head(&mut s, keep_alive).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        open.push(s);
    }

    let mut third = from(1).await.unwrap();
    let (head, body) = refusal_of(&mut third).await;
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    assert!(head.contains("application/problem+json"), "{head}");
    assert!(head.contains("retry-after: 1"), "{head}");
    assert_eq!(body["code"], "too_many_connections_from_address");

    let mut other = from(2).await.unwrap();
    let head = ask_head(&mut other, keep_alive).await;
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "another host is served: {head}"
    );
    let head = ask_head(&mut open[1], keep_alive).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    // A place of the first host frees once the server has seen one of its connections close.
    drop(open.remove(0));
    until_served(|| from(1), "429").await;
    let metrics = app.metrics().await;
    let refused = metrics
        .lines()
        .find(|l| l.starts_with("referral_http_connections_refused_total{reason=\"address\"}"))
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(!refused.ends_with(" 0"), "{refused}");
}

/// Open HTTP connections as the server's `/metrics` counts them.
async fn open_connections(app: &TestApp) -> i64 {
    let text = app.metrics().await;
    let open = e2e::metric_sample(&text, "referral_http_connections ");
    open.unwrap_or_else(|| panic!("{text}")) as i64
}

/// ~52 KB each: ~21 MB asked, well past what loopback socket buffers hold (tcp_wmem tops
/// out at 4 MB by default).
const ASKED: usize = 400;

/// A client that asks for a response and stops reading it is cut off after
/// `http.write_stall_timeout_ms`, instead of holding the rest of the answer (and a
/// socket) for as long as it likes.
#[tokio::test]
async fn a_client_that_stops_reading_a_response_is_cut_off() {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(|c| {
        c.http.write_stall_timeout_ms = 300;
        c.http.header_read_timeout_ms = 600_000;
    })
    .await;
    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let before = open_connections(&app).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(addr).await.unwrap();
    // Requests pipelined on one connection: their answers are more than the sockets'
    // buffers hold, so the server's writes wait on this client, which reads nothing.
    let ask = b"GET /openapi.json HTTP/1.1\r\nHost: referral\r\n\r\n".repeat(ASKED);
    stalled.write_all(&ask).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen_open = false;
    loop {
        let open = open_connections(&app).await;
        seen_open |= open > before;
        if seen_open && open <= before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stalled connection is still open ({open})"
        );
        // A polling interval (under the per-address rate), not a wait for an event.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // What arrived is less than the whole answer, then the connection ends.
    let mut got = Vec::new();
    let _ = stalled.read_to_end(&mut got).await;
    let whole = app
        .http
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await;
    let whole = whole.unwrap().bytes().await.unwrap().len();
    assert!(
        got.len() < whole * ASKED,
        "{} of {} bytes",
        got.len(),
        whole * ASKED
    );
}

/// A request head past `http.max_header_bytes` is answered 431 before any of it reaches
/// a handler, so a connection cannot make the server buffer hyper's default ~400 KB; one
/// within the bound is served.
#[tokio::test]
async fn a_request_head_past_the_bound_is_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    let app = TestApp::spawn_with(|c| c.http.max_header_bytes = 16 * 1024).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    for (filler, status) in [(8 * 1024, "200"), (100 * 1024, "431")] {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "GET /healthz HTTP/1.1\r\nHost: referral\r\nX-Filler: {}\r\nConnection: close\r\n\r\n",
            "a".repeat(filler)
        );
        // The server may answer and close before it read everything we sent.
        let _ = s.write_all(head.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{filler} bytes: {answer}"
        );
    }
}
