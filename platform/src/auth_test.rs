//! A token's remaining life as a live stream reads it after the gate accepted the token.
use super::*;

fn authenticator() -> Authenticator {
    let config = AuthConfig {
        jwt_secret: random_secret(),
        ..AuthConfig::default()
    };
    let pool = sqlx::postgres::PgPoolOptions::new()
        .connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .unwrap();
    Authenticator::new(&config, pool)
}

/// A user token signed with `auth`'s key that expired `ago` seconds ago.
fn expired(auth: &Authenticator, ago: u64) -> String {
    let now = chrono::Utc::now().timestamp() as u64;
    let claims = Claims {
        sub: UserId::new().to_string(),
        role: "user".to_owned(),
        iss: auth.inner.issuer.clone(),
        iat: now - 3600,
        nbf: now - 3600,
        exp: now - ago,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &auth.inner.encoding,
    )
    .unwrap()
}

#[tokio::test]
async fn a_token_that_expired_after_the_gate_has_no_life_left() {
    let auth = authenticator();
    // Past its leeway: the gate would now refuse it, so a stream it opened a moment
    // before must end at once rather than never.
    let token = expired(&auth, LEEWAY_SECS + 2);
    assert!(auth.authenticate_offline(&token).unwrap().is_err());
    assert_eq!(auth.remaining_life(&token), Some(Duration::ZERO));
    assert_eq!(auth.remaining_life("not.a.token"), Some(Duration::ZERO));
}

#[tokio::test]
async fn a_live_token_lives_until_its_expiry_and_leeway() {
    let auth = authenticator();
    let fresh = auth.issue(Principal::User(UserId::new())).unwrap();
    let life = auth.remaining_life(&fresh).unwrap();
    let most = Duration::from_secs(auth.inner.ttl_secs + LEEWAY_SECS + 1);
    assert!(
        life > most - Duration::from_secs(2) && life <= most,
        "{life:?}"
    );
    // Expired but inside the leeway: still accepted, for at most the leeway.
    let late = expired(&auth, 1);
    assert!(auth.authenticate_offline(&late).unwrap().is_ok());
    let life = auth.remaining_life(&late).unwrap();
    assert!(life <= Duration::from_secs(LEEWAY_SECS), "{life:?}");
}
