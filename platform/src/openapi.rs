//! What every route may answer besides its own results, added to each operation of an
//! OpenAPI document in one place (the handlers' annotations list only their own outcomes):
//! problems as `application/problem+json`; 401 and 429 where a credential is needed; 413,
//! 415 and 422 where a JSON body is read; 503 everywhere (Postgres or the stream away, or
//! the request deadline passed).
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::{OpenApi, Ref, RefOr};
use utoipa::Modify;

const PROBLEM_TYPE: &str = "application/problem+json";
const PROBLEM_REF: &str = "#/components/schemas/Problem";

pub struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, doc: &mut OpenApi) {
        for item in doc.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in operations.into_iter().flatten() {
                add_common(op);
            }
        }
    }
}

fn add_common(op: &mut Operation) {
    for response in op.responses.responses.values_mut() {
        if let RefOr::T(r) = response {
            let problem = r.content.get("application/json").is_some_and(
                |c| matches!(&c.schema, Some(RefOr::Ref(at)) if at.ref_location == PROBLEM_REF),
            );
            if problem {
                if let Some(c) = r.content.shift_remove("application/json") {
                    r.content.insert(PROBLEM_TYPE.into(), c);
                }
            }
        }
    }
    let mut common = vec![(
        "503",
        "database_unavailable, unavailable, request_timeout: nothing was stored; retry after `Retry-After`",
    )];
    if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
        common.push(("401", "unauthenticated: no or an invalid credential"));
        common.push((
            "429",
            "rate_limited: too many requests for this credential; backlog_full (purchases and refunds): this shop's purchases waiting to be settled fill its share of the stream; retry after `Retry-After`",
        ));
    }
    if op.request_body.is_some() {
        common.push((
            "400",
            "unreadable_body: the body could not be read to its end",
        ));
        common.push(("413", "body_too_large"));
        common.push((
            "415",
            "unsupported_media_type: send Content-Type: application/json",
        ));
        common.push(("422", "invalid_body, malformed_json"));
    }
    for (status, description) in common {
        op.responses
            .responses
            .entry(status.into())
            .or_insert_with(|| RefOr::T(problem(description)));
    }
}

fn problem(description: &str) -> utoipa::openapi::response::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_TYPE,
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(Ref::new(PROBLEM_REF))))
                .build(),
        )
        .build()
}
