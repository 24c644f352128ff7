//! The downline as nested nodes, each with what its purchases earned the root.
use crate::params::ReadableUser;
use crate::{ApiError, ApiState};
use axum::extract::State;
use axum::Json;
use platform::problem::QueryParams;
use rust_decimal::Decimal;
use schemas::reports::{Tree, TreeNode};
use schemas::{Money, UserId, UserStatus};
use serde::Deserialize;
use std::collections::HashMap;
use uuid::Uuid;

pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new().route("/v1/users/{id}/tree", axum::routing::get(tree))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TreeQuery {
    /// Levels below the user (default `[reports] default_tree_depth`, at most `max_tree_depth`).
    #[param(minimum = 1)]
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
    let depth = crate::params::tree_depth(q.depth, &state.reports)?;
    let limit = state.reports.max_tree_nodes;
    let rows = downline(&state, root, depth, limit).await?;
    let contributed: HashMap<Uuid, Decimal> = sqlx::query!(
        r#"SELECT source_user_id, sum(total) AS "total!" FROM earnings_by_source
           WHERE beneficiary_id = $1 GROUP BY source_user_id"#,
        root.as_uuid()
    )
    .fetch_all(&state.pool)
    .await?
    .into_iter()
    .map(|r| (r.source_user_id, r.total))
    .collect();
    let truncated = rows.len() as i64 > limit;
    let mut nodes: HashMap<Uuid, (Option<Uuid>, TreeNode)> = HashMap::new();
    let mut order = Vec::new();
    for r in rows.into_iter().take(limit as usize) {
        order.push(r.id);
        let total = contributed.get(&r.id).copied().unwrap_or_default();
        nodes.insert(
            r.id,
            (
                r.referrer_id,
                TreeNode {
                    user_id: UserId(r.id),
                    status: r.status,
                    display_name: r.display_name,
                    depth: r.depth,
                    contributed: Money::from_decimal(total)
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

struct Member {
    id: Uuid,
    referrer_id: Option<Uuid>,
    status: UserStatus,
    display_name: Option<String>,
    depth: u8,
}

/// The root and its downline to `depth`, ordered by depth then id, at most `limit + 1`
/// nodes (one more than shown says it was truncated). One indexed read per level, and a
/// level is read only while the node cap is not reached, so the cost follows the cap,
/// never the size of the downline.
async fn downline(
    state: &ApiState,
    root: UserId,
    depth: u8,
    limit: i64,
) -> Result<Vec<Member>, ApiError> {
    let Some(r) = sqlx::query!(
        "SELECT id, referrer_id, status, display_name FROM users WHERE id = $1",
        root.as_uuid()
    )
    .fetch_optional(&state.pool)
    .await?
    else {
        return Err(ApiError::NotFound("user"));
    };
    let (id, referrer_id, status, display_name) = (r.id, r.referrer_id, r.status, r.display_name);
    let mut members = vec![Member {
        id,
        referrer_id,
        status: status.parse()?,
        display_name,
        depth: 0,
    }];
    let mut frontier = vec![root.as_uuid()];
    for level in 1..=depth {
        let room = limit + 1 - members.len() as i64;
        if frontier.is_empty() || room <= 0 {
            break;
        }
        let rows = sqlx::query_file!("sql/tree_level.sql", &frontier, room)
            .fetch_all(&state.pool)
            .await?;
        frontier = rows.iter().map(|r| r.id).collect();
        for r in rows {
            members.push(Member {
                id: r.id,
                referrer_id: r.referrer_id,
                status: r.status.parse()?,
                display_name: r.display_name,
                depth: level,
            });
        }
    }
    Ok(members)
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
