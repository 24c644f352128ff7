use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use platform::Problem;

/// Everything ingest refuses, each with its stable code; mapped to HTTP once, here.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{1}")]
    Invalid(&'static str, String),
    #[error(transparent)]
    Referrer(platform::graph_writes::ReferrerRefusal),
    #[error("external_ref is already used by another signup")]
    ExternalRefConflict,
    #[error("user not found")]
    UnknownUser,
    #[error("the user is inactive; their purchases are not accepted")]
    UserInactive,
    #[error("the user was signed up by another shop; a shop sends purchases only for users it signed up")]
    ForeignUser,
    #[error("order {0} was already sent with a different body")]
    OrderConflict(String),
    #[error("refund {0} was already sent with a different body")]
    RefundConflict(String),
    #[error("order {0} is not known")]
    OrderNotFound(String),
    #[error("refund of {asked} exceeds the {remaining} that remains refundable")]
    RefundExceedsRemaining { asked: String, remaining: String },
    #[error("batch holds {0} purchases; the limit is {1}")]
    BatchTooLarge(usize, usize),
    #[error("this shop sends more purchases a second than it may; wait Retry-After seconds")]
    PurchaseRate(u64),
    #[error("this shop's purchases waiting to be settled have reached its share of the stream; wait Retry-After seconds")]
    BacklogFull(u64),
    #[error("the stream did not store the message; retry")]
    StreamUnavailable(#[source] anyhow::Error),
    #[error("the database is unavailable; retry")]
    DatabaseUnavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<schemas::UnknownValue> for IngestError {
    fn from(e: schemas::UnknownValue) -> Self {
        IngestError::Internal(e.into())
    }
}

impl From<sqlx::Error> for IngestError {
    fn from(e: sqlx::Error) -> Self {
        IngestError::Internal(e.into())
    }
}

impl IngestError {
    pub fn problem(&self) -> Problem {
        use IngestError::*;
        let (status, code) = match self {
            Invalid(code, _) => (StatusCode::UNPROCESSABLE_ENTITY, *code),
            Referrer(r) => return r.problem(),
            ExternalRefConflict => (StatusCode::CONFLICT, "external_ref_conflict"),
            UnknownUser => (StatusCode::UNPROCESSABLE_ENTITY, "unknown_user"),
            UserInactive => (StatusCode::UNPROCESSABLE_ENTITY, "user_inactive"),
            ForeignUser => (StatusCode::FORBIDDEN, "foreign_user"),
            OrderConflict(_) => (StatusCode::CONFLICT, "order_conflict"),
            RefundConflict(_) => (StatusCode::CONFLICT, "refund_conflict"),
            OrderNotFound(_) => (StatusCode::NOT_FOUND, "order_not_found"),
            RefundExceedsRemaining { .. } => (StatusCode::CONFLICT, "refund_exceeds_remaining"),
            BatchTooLarge(..) => (StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large"),
            PurchaseRate(wait) => return self.wait("purchases", "rate_limited", *wait),
            BacklogFull(wait) => return self.wait("backlog", "backlog_full", *wait),
            StreamUnavailable(e) => {
                tracing::warn!(error = ?e, "stream publish failed");
                let mut p = Problem::unavailable(self.to_string());
                p.retry_after_secs = Some(1);
                return p;
            }
            DatabaseUnavailable(detail) => {
                tracing::warn!(error = %detail, "Postgres unavailable");
                return Problem::database_unavailable();
            }
            Internal(e) => return Problem::internal(e),
        };
        Problem::new(status, code, self.to_string())
    }
}

impl IngestError {
    /// A 429 that says when to retry, counted under `kind`.
    fn wait(&self, kind: &str, code: &str, secs: u64) -> Problem {
        platform::metrics::metrics()
            .rate_limited
            .with_label_values(&[kind])
            .inc();
        let mut p = Problem::new(StatusCode::TOO_MANY_REQUESTS, code, self.to_string());
        p.retry_after_secs = Some(secs);
        p
    }
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        self.problem().into_response()
    }
}
