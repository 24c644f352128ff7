//! The downline as nested nodes, each with what its purchases earned the root.
use crate::params::ReadableUser;
use crate::{ApiError, ApiState};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use platform::problem::QueryParams;
use rust_decimal::Decimal;
use schemas::reports::{Tree, TreeNode};
use schemas::{Money, UserId, UserStatus};
use serde::Deserialize;
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

/// About what one node takes as JSON (an id, a status, a depth, an amount and the
/// brackets around them): the body's buffer is sized once instead of grown by copying.
const JSON_BYTES_PER_NODE: usize = 128;

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
) -> Result<Response, ApiError> {
    let depth = crate::params::tree_depth(q.depth, &state.reports)?;
    let limit = state.reports.max_tree_nodes;
    let _place = state.read_lanes.take_for(root).await?;
    // One connection for the request's reads: under many readers a request waits for the
    // pool once, not once a level (each wait is another place in the queue).
    let mut conn = state.pool.acquire().await?;
    let (mut members, contributed) = root_and_contributions(&mut conn, root).await?;
    read_levels(&mut conn, &mut members, depth, limit).await?;
    drop(conn);
    let truncated = members.len() as i64 > limit;
    members.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let shown = members.len();
    let tree = Tree {
        root: nest(members, &contributed)?,
        truncated,
    };
    let mut body = Vec::with_capacity(shown.saturating_mul(JSON_BYTES_PER_NODE));
    serde_json::to_writer(&mut body, &tree).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

struct Member {
    id: Uuid,
    referrer_id: Option<Uuid>,
    status: UserStatus,
    display_name: Option<String>,
    depth: u8,
}

/// The root (404 if it is gone) and, per source user, what its purchases earned the root.
async fn root_and_contributions(
    conn: &mut PgConnection,
    root: UserId,
) -> Result<(Vec<Member>, HashMap<Uuid, Decimal>), ApiError> {
    let Some(r) = sqlx::query_file!("sql/tree_root.sql", root.as_uuid())
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Err(ApiError::NotFound("user"));
    };
    let contributed = r.sources.into_iter().zip(r.totals).collect();
    let member = Member {
        id: r.id,
        referrer_id: r.referrer_id,
        status: r.status.parse()?,
        display_name: r.display_name,
        depth: 0,
    };
    Ok((vec![member], contributed))
}

/// The downline below the root in `members` to `depth`, ordered by depth then id, at most
/// `limit + 1` nodes in all (one more than shown says it was truncated). One indexed read
/// per level, and a level is read only while the node cap is not reached, so the cost
/// follows the cap, never the size of the downline.
async fn read_levels(
    conn: &mut PgConnection,
    members: &mut Vec<Member>,
    depth: u8,
    limit: i64,
) -> Result<(), ApiError> {
    let mut frontier: Vec<Uuid> = members.iter().map(|m| m.id).collect();
    for level in 1..=depth {
        let room = limit + 1 - members.len() as i64;
        if frontier.is_empty() || room <= 0 {
            break;
        }
        let rows = sqlx::query_file!("sql/tree_level.sql", &frontier, room)
            .fetch_all(&mut *conn)
            .await?;
        frontier.clear();
        members.reserve(rows.len());
        for r in rows {
            frontier.push(r.id);
            members.push(Member {
                id: r.id,
                referrer_id: r.referrer_id,
                status: r.status.parse()?,
                display_name: r.display_name,
                depth: level,
            });
        }
    }
    Ok(())
}

/// Nests the members (the root first, every parent before its children) under the root,
/// each node's children by what they contributed (most first), then by id.
fn nest(members: Vec<Member>, contributed: &HashMap<Uuid, Decimal>) -> Result<TreeNode, ApiError> {
    let mut position: HashMap<Uuid, usize> = HashMap::with_capacity(members.len());
    let mut children: Vec<Vec<usize>> = Vec::with_capacity(members.len());
    let mut nodes: Vec<Option<TreeNode>> = Vec::with_capacity(members.len());
    for (i, m) in members.into_iter().enumerate() {
        // The root's referrer is not among the members, so the root is nobody's child.
        if let Some(&p) = m.referrer_id.and_then(|p| position.get(&p)) {
            children[p].push(i);
        }
        position.insert(m.id, i);
        children.push(Vec::new());
        let total = contributed.get(&m.id).copied().unwrap_or_default();
        nodes.push(Some(TreeNode {
            user_id: UserId(m.id),
            status: m.status,
            display_name: m.display_name,
            depth: m.depth,
            contributed: Money::from_decimal(total).map_err(|e| ApiError::Internal(e.into()))?,
            children: Vec::new(),
        }));
    }
    // Deepest first, so every child is complete before it moves into its parent.
    for i in (0..nodes.len()).rev() {
        let mut kids: Vec<TreeNode> = children[i]
            .iter()
            .filter_map(|&c| nodes[c].take())
            .collect();
        kids.sort_by(|a, b| {
            b.contributed
                .cmp(&a.contributed)
                .then(a.user_id.cmp(&b.user_id))
        });
        if let Some(node) = nodes[i].as_mut() {
            node.children = kids;
        }
    }
    nodes
        .first_mut()
        .and_then(Option::take)
        .ok_or(ApiError::NotFound("user"))
}
