use platform::auth::new_shop_key;
use schemas::ShopId;
use sqlx::PgPool;

/// Creates a shop and returns its id and API key (shown once; only its hash is stored).
pub async fn create(pool: &PgPool, name: &str) -> anyhow::Result<(ShopId, String)> {
    anyhow::ensure!(
        !name.trim().is_empty() && name.len() <= 200,
        "a shop name is 1 to 200 characters"
    );
    let (key, hash) = new_shop_key();
    let id = ShopId::new();
    sqlx::query!(
        "INSERT INTO shops (id, name, key_hash) VALUES ($1, $2, $3)",
        id.as_uuid(),
        name,
        hash
    )
    .execute(pool)
    .await?;
    Ok((id, key))
}

pub async fn revoke(pool: &PgPool, id: ShopId) -> anyhow::Result<bool> {
    let r = sqlx::query!(
        "UPDATE shops SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
        id.as_uuid()
    )
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}
