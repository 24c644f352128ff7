//! NATS with users: the roles connect with the credentials in `nats.url` (async-nats does
//! not send a URL's credentials by itself), and a shop's user made from
//! docker/nats-shop-user.conf.example may publish its own purchases and nothing else.
use async_nats::jetstream;
use e2e::nats_server::PrivateNats;
use e2e::{eventually, TestApp};
use schemas::{ShopId, UserId};
use std::time::Duration;

/// The example's shop entry, filled in.
fn shop_user(shop: ShopId, password: &str, prefix: &str) -> String {
    let example = include_str!("../../../docker/nats-shop-user.conf.example");
    let entry: String = example
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    entry
        .replace("{{shop_id}}", &shop.to_string())
        .replace("{{password}}", password)
        .replace("{{prefix}}", &format!("{prefix}."))
}

fn purchase(shop: ShopId, order: &str, user: UserId) -> Vec<u8> {
    let m = e2e::messages::purchase(shop, order, user, "1000.00", "100.00");
    serde_json::to_vec(&m).unwrap()
}

/// Messages the app's PURCHASES stream has stored so far.
async fn stored(js: &jetstream::Context, prefix: &str) -> u64 {
    let name = platform::nats::Subjects::new(prefix).purchases_stream();
    js.get_stream(name)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .last_sequence
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_use_the_urls_credentials_and_a_shop_user_publishes_only_its_own_purchases() {
    let service = platform::auth::random_secret();
    let shop_password = platform::auth::random_secret();
    let shop = ShopId::new();
    let (mut config, db) = e2e::test_config();
    let prefix = config.nats.prefix.clone();
    let users = format!(
        "authorization {{ users: [ {{ user: referral, password: \"{service}\" }}\n{} ] }}",
        shop_user(shop, &shop_password, &prefix)
    );
    let nats = PrivateNats::start_with(&users).await;
    config.nats.url = nats
        .url()
        .replace("nats://", &format!("nats://referral:{service}@"));
    let app = TestApp::start(config, db).await;
    // Through ingest: the roles are connected with the URL's credentials.
    let (_, b, c) = app.chain3().await;
    app.purchase("http-1", c, "1000.00", Some("100.00")).await;
    eventually(|| app.total(b), |t| t == "5.00").await;

    // The shop with a NATS user of its own, and two users no shop signed up.
    sqlx::query("INSERT INTO shops (id, name, key_hash) VALUES ($1, 'direct', $2)")
        .bind(shop.as_uuid())
        .bind(platform::auth::new_shop_key().1)
        .execute(&app.pool)
        .await
        .unwrap();
    let parent = app.signup_by(&app.admin, None).await;
    let buyer = app.signup_by(&app.admin, Some(parent)).await;
    let service_js = jetstream::new(platform::nats::connect(&app.config.nats).await.unwrap());
    let client =
        async_nats::ConnectOptions::with_user_and_password(format!("shop-{shop}"), shop_password)
            .custom_inbox_prefix(format!("_INBOX_{shop}"))
            .connect(nats.url())
            .await
            .unwrap();
    let mut js = jetstream::new(client);
    js.set_timeout(Duration::from_secs(2));

    // Its own subject: stored, and paid like any purchase.
    let own = format!("{prefix}.purchases.{shop}");
    js.publish(own, purchase(shop, "direct-1", buyer).into())
        .await
        .unwrap()
        .await
        .expect("stored");
    eventually(|| app.total(parent), |t| t == "5.00").await;

    // Another shop's subject, and the JetStream API: refused by the server.
    let before = stored(&service_js, &prefix).await;
    let foreign = format!("{prefix}.purchases.{}", app.shop_id);
    let published = match js
        .publish(foreign, purchase(app.shop_id, "forged-1", c).into())
        .await
    {
        Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    assert!(
        published.is_err(),
        "a publish on another shop's subject was acknowledged"
    );
    let streams = platform::nats::Subjects::new(&prefix).purchases_stream();
    assert!(
        js.get_stream(streams).await.is_err(),
        "the shop read a stream's info"
    );
    assert_eq!(
        stored(&service_js, &prefix).await,
        before,
        "nothing more was stored"
    );
    assert_eq!(app.settled().await, 2);
    app.assert_verified().await;
}
