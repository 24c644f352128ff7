//! Opening a user's live WebSocket with a bearer token, as a client would.
use schemas::UserId;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The socket, or `None` when the upgrade is refused (a 429 while the user's places are
/// taken, a 401 for a refused token).
pub async fn try_open(base: &str, user: UserId, token: &str) -> Option<Ws> {
    let url = format!(
        "{}/v1/users/{user}/earnings/ws",
        base.replace("http://", "ws://")
    );
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url).ok()?;
    let bearer = format!("Bearer {token}").parse().ok()?;
    request.headers_mut().insert("authorization", bearer);
    tokio_tungstenite::connect_async(request)
        .await
        .ok()
        .map(|(ws, _)| ws)
}
