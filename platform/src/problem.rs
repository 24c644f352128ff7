//! RFC 9457 problem details: the one error shape every HTTP boundary returns.
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    /// Stable, machine-readable; clients branch on this, never on `detail`.
    pub code: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

/// The longest `detail` sent: a detail may quote what the caller sent (serde names an
/// unknown field, a time names the text it could not read), and a 60 KB value is not
/// sent back whole.
pub const MAX_DETAIL_CHARS: usize = 300;

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Problem {
            type_uri: format!("urn:referral:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            code: code.to_owned(),
            detail: bounded(detail.into()),
            retry_after_secs: None,
        }
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
    }

    pub fn forbidden() -> Self {
        Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this credential may not access that resource",
        )
    }

    pub fn not_found(what: &str) -> Self {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn invalid(code: &str, detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }

    /// Logs the cause with its chain and answers a bland 500: no internal text leaks.
    /// A Postgres that cannot be reached (down, restarting, connections cut, pool
    /// exhausted) is no bug of ours: that is a retryable 503 `database_unavailable`.
    pub fn internal(error: &anyhow::Error) -> Self {
        if crate::db::is_unavailable(error) {
            tracing::warn!(error = %error, "Postgres unavailable");
            return Problem::database_unavailable();
        }
        tracing::error!(error = ?error, "request failed");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred",
        )
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }

    /// 503 with Retry-After: nothing was stored; the same request may be sent again.
    pub fn database_unavailable() -> Self {
        let mut p = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the database is unavailable; nothing was stored, retry",
        );
        p.retry_after_secs = Some(1);
        p
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry = self.retry_after_secs;
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="referral""#),
            );
        }
        if let Some(secs) = retry {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                headers.insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

/// Turns axum's JSON and path rejections into problems with stable codes.
pub fn from_json_rejection(r: axum::extract::rejection::JsonRejection) -> Problem {
    use axum::extract::rejection::JsonRejection as J;
    match r {
        J::MissingJsonContentType(_) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send Content-Type: application/json",
        ),
        // Past the body limit; anything else is a body that could not be read (a
        // connection reset, broken chunked framing), not a large one.
        J::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the request body is too large",
        ),
        J::BytesRejection(_) => Problem::new(
            StatusCode::BAD_REQUEST,
            "unreadable_body",
            "the request body could not be read to its end",
        ),
        J::JsonSyntaxError(e) => Problem::invalid("malformed_json", e.body_text()),
        J::JsonDataError(e) => Problem::invalid("invalid_body", e.body_text()),
        other => Problem::invalid("invalid_body", other.body_text()),
    }
}

/// `detail` cut to `MAX_DETAIL_CHARS` characters, marked with an ellipsis when cut.
fn bounded(mut detail: String) -> String {
    if let Some((cut, _)) = detail.char_indices().nth(MAX_DETAIL_CHARS) {
        detail.truncate(cut);
        detail.push('…');
    }
    detail
}

/// `axum::Json`, with malformed bodies answered as problems (stable codes) instead of text,
/// and a body that is not a JSON object refused as `invalid_body`.
pub struct JsonBody<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Problem> {
        json_content_type(req.headers())?;
        // Read as raw JSON first: serde's derived structs also take an array, matching
        // fields by position, so `["o-1", "<user>", "10"]` would pass for a purchase.
        let axum::Json(raw) =
            axum::Json::<Box<serde_json::value::RawValue>>::from_request(req, state)
                .await
                .map_err(from_json_rejection)?;
        if !is_object(&raw) {
            return Err(Problem::invalid(
                "invalid_body",
                "the body must be a JSON object",
            ));
        }
        match axum::Json::<T>::from_bytes(raw.get().as_bytes()) {
            Ok(axum::Json(v)) => Ok(JsonBody(v)),
            Err(r) => Err(from_json_rejection(r)),
        }
    }
}

/// `Content-Type: application/json`, with no parameter but `charset=utf-8`. axum takes
/// any `…+json` type and ignores the charset, so a body declared UTF-16 (or
/// `application/vnd.anything+json`) would be read as UTF-8 JSON: a second way to send the
/// same request, which a proxy or a log may read differently.
fn json_content_type(headers: &axum::http::HeaderMap) -> Result<(), Problem> {
    let refused = || {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send Content-Type: application/json (UTF-8, the only charset accepted)",
        )
    };
    let mut values = headers.get_all(axum::http::header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(refused());
    };
    let value = value.to_str().map_err(|_| refused())?;
    let mut parts = value.split(';').map(str::trim);
    if !parts
        .next()
        .is_some_and(|t| t.eq_ignore_ascii_case("application/json"))
    {
        return Err(refused());
    }
    for parameter in parts {
        let (name, val) = parameter.split_once('=').ok_or_else(refused)?;
        let val = val.trim().trim_matches('"');
        if !(name.trim().eq_ignore_ascii_case("charset") && val.eq_ignore_ascii_case("utf-8")) {
            return Err(refused());
        }
    }
    Ok(())
}

/// Whether a JSON value (already known to be valid JSON) is an object.
pub fn is_object(raw: &serde_json::value::RawValue) -> bool {
    raw.get().trim_start().starts_with('{')
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl std::error::Error for Problem {}

/// A route that takes no parameters: any query string is `invalid_query`, so a misspelt
/// parameter (`?limt=5`) is refused as it is on routes that take some, not ignored.
pub struct NoQuery;

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for NoQuery {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Problem> {
        match parts.uri.query() {
            None | Some("") => Ok(NoQuery),
            Some(_) => Err(Problem::invalid(
                "invalid_query",
                "this route takes no query parameters",
            )),
        }
    }
}

/// `axum::extract::Query`, with unparsable or unknown parameters answered as a problem,
/// and no value that starts with `+` (`%2B5` would otherwise read as the number 5, a
/// second spelling of it; no parameter of ours takes one; negatives get their own code),
/// nor a number with leading zeros (`05`, `-07`: the same kind of second spelling).
pub struct QueryParams<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for QueryParams<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Problem> {
        let raw = parts.uri.query().unwrap_or_default();
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw)
            .map_err(|e| Problem::invalid("invalid_query", e.to_string()))?;
        if let Some((name, _)) = pairs.iter().find(|(_, v)| v.starts_with('+')) {
            let detail = format!("`{name}` must not start with `+`");
            return Err(Problem::invalid("invalid_query", detail));
        }
        let zero = |(name, v): &&(String, String)| {
            leading_zero(v) && !OWN_SPELLING_RULES.contains(&name.as_str())
        };
        if let Some((name, _)) = pairs.iter().find(zero) {
            let detail = format!("`{name}` must be written without leading zeros");
            return Err(Problem::invalid("invalid_query", detail));
        }
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(QueryParams(v)),
            Err(r) => Err(Problem::invalid("invalid_query", r.body_text())),
        }
    }
}

/// Parameters read by their own canonical parsers, with their own codes
/// (`invalid_cursor`, `invalid_last_event_id`), leading zeros included.
const OWN_SPELLING_RULES: [&str; 2] = ["cursor", "last_event_id"];

/// An integer written with a leading zero (`05`, `-00`); `0` itself is one spelling.
fn leading_zero(value: &str) -> bool {
    let digits = value.strip_prefix('-').unwrap_or(value);
    digits.len() > 1 && digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_detail_is_cut_at_a_character_boundary() {
        let quoted = format!("`{}` is not an RFC 3339 instant", "é".repeat(60_000));
        let p = Problem::invalid("invalid_query", quoted);
        assert_eq!(p.detail.chars().count(), MAX_DETAIL_CHARS + 1);
        assert!(p.detail.ends_with('…'));
        let short = Problem::invalid("invalid_query", "limit must be 1 to 500");
        assert_eq!(short.detail, "limit must be 1 to 500");
    }
}
