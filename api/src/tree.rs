//! The downline as nested nodes, each with what its purchases earned the root.
use crate::params::ReadableUser;
use crate::{ApiError, ApiState};
use axum::extract::State;
use axum::Json;
use platform::problem::QueryParams;
use schemas::reports::{Tree, TreeNode};
use schemas::{Money, UserId};
use serde::Deserialize;
use std::collections::HashMap;
use uuid::Uuid;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TreeQuery {
    depth: Option<i32>,
}

/// The downline as nested nodes, each with what it contributed to this user.
#[utoipa::path(get, path = "/v1/users/{id}/tree", tag = "reports",
    params(("id" = uuid::Uuid, Path, description = "the user"), TreeQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Tree),
        (status = 401, description = "unauthenticated", body = platform::Problem),
        (status = 403, body = platform::Problem),
        (status = 404, description = "not_found", body = platform::Problem),
        (status = 422, description = "invalid_user_id, invalid_depth, invalid_query", body = platform::Problem),
    ))]
pub async fn tree(
    State(state): State<ApiState>,
    ReadableUser(root): ReadableUser,
    QueryParams(q): QueryParams<TreeQuery>,
) -> Result<Json<Tree>, ApiError> {
    let max_depth = state.reports.max_tree_depth;
    let depth = q.depth.unwrap_or(3);
    if !(1..=max_depth).contains(&depth) {
        return Err(ApiError::Invalid(
            "invalid_depth",
            format!("depth must be between 1 and {max_depth}"),
        ));
    }
    let limit = state.reports.max_tree_nodes;
    let rows = sqlx::query!(
        r#"WITH RECURSIVE down AS (
               SELECT id, referrer_id, status, display_name, 0 AS depth FROM users WHERE id = $1
               UNION ALL
               SELECT u.id, u.referrer_id, u.status, u.display_name, d.depth + 1
               FROM users u JOIN down d ON u.referrer_id = d.id
               WHERE d.depth < $2
           ),
           contributed AS (
               SELECT source_user_id, sum(total) AS total FROM earnings_by_source
               WHERE beneficiary_id = $1 GROUP BY source_user_id
           )
           SELECT d.id AS "id!", d.referrer_id, d.status AS "status!", d.display_name, d.depth AS "depth!",
                  coalesce(c.total, 0) AS "contributed!"
           FROM down d LEFT JOIN contributed c ON c.source_user_id = d.id
           ORDER BY d.depth, d.id LIMIT $3"#,
        root.as_uuid(),
        depth,
        limit + 1
    )
    .fetch_all(&state.pool)
    .await?;
    let truncated = rows.len() as i64 > limit;
    let mut nodes: HashMap<Uuid, (Option<Uuid>, TreeNode)> = HashMap::new();
    let mut order = Vec::new();
    for r in rows.into_iter().take(limit as usize) {
        order.push(r.id);
        nodes.insert(
            r.id,
            (
                r.referrer_id,
                TreeNode {
                    user_id: UserId(r.id),
                    status: r.status,
                    display_name: r.display_name,
                    depth: u8::try_from(r.depth).unwrap_or(u8::MAX),
                    contributed: Money::from_decimal(r.contributed)
                        .map_err(|e| ApiError::Internal(e.into()))?,
                    children: Vec::new(),
                },
            ),
        );
    }
    // Deepest first, so every child is complete before it moves into its parent.
    for id in order.iter().rev() {
        if *id == root.as_uuid() {
            continue;
        }
        let Some((Some(parent), node)) = nodes.remove(id) else {
            continue;
        };
        if let Some((_, p)) = nodes.get_mut(&parent) {
            p.children.push(node);
        }
    }
    let (_, mut root_node) = nodes
        .remove(&root.as_uuid())
        .ok_or(ApiError::NotFound("user"))?;
    sort_children(&mut root_node);
    Ok(Json(Tree {
        root: root_node,
        truncated,
    }))
}

fn sort_children(node: &mut TreeNode) {
    node.children.sort_by(|a, b| {
        b.contributed
            .cmp(&a.contributed)
            .then(a.user_id.cmp(&b.user_id))
    });
    for c in &mut node.children {
        sort_children(c);
    }
}
