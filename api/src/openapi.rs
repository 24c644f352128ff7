//! The OpenAPI 3 document, generated from the handlers' annotations.
use platform::openapi::CommonResponses;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "referral-earnings", description = "Multi-level referral earnings: ingest, reports, live feed, admin."),
    paths(
        crate::reports::me,
        crate::reports::summary,
        crate::reports::by_referral,
        crate::reports::by_leg,
        crate::reports::history::history,
        crate::reports::daily,
        crate::tree::tree,
        crate::live::sse::stream,
        crate::live::ws::upgrade,
        crate::admin::deactivate,
        crate::admin::reactivate,
        crate::admin::move_user,
        crate::admin::revoke_tokens,
        crate::admin::plan,
        crate::admin::dead_letters,
        crate::analytics::top_earners,
        crate::analytics::purchases_per_shop,
        crate::analytics::conversion,
        crate::analytics::earnings_over_time,
        crate::analytics::levels,
        crate::analytics::legs,
    ),
    components(schemas(platform::Problem, schemas::Money, schemas::LiveEarning)),
    modifiers(&Bearer, &CommonResponses)
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = doc.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some("a JWT (users, admins) or a shop API key (rk_…)"))
                        .build(),
                ),
            );
        }
    }
}

/// This role's document, merged with `others` (e.g. ingest's when run in one process).
pub fn document(others: Vec<utoipa::openapi::OpenApi>) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    for other in others {
        doc.merge(other);
    }
    doc
}

/// A route serving the document at `/openapi.json`.
pub fn route<S: Clone + Send + Sync + 'static>(doc: utoipa::openapi::OpenApi) -> axum::Router<S> {
    let json = std::sync::Arc::new(doc.to_json().unwrap_or_else(|_| "{}".into()));
    axum::Router::new().route(
        "/openapi.json",
        axum::routing::get(move || {
            let json = json.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    (*json).clone(),
                )
            }
        }),
    )
}
