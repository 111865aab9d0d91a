//! The OpenAPI document of `/api/v1`, derived from the handlers' annotations.

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The API's document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Vectura API", description = "The dashboard's JSON API. Every call needs a login session (the vectura_session cookie from POST /login); every mutating call also needs the session's CSRF token in the X-CSRF-Token header (GET /api/v1/session gives it)."),
    paths(
        crate::api::session,
        crate::data::api_ranges,
        crate::data::api_range,
        crate::data::api_delete,
        crate::data::api_import,
        crate::data_fetch::api_start,
        crate::sweeps::api_runs,
        crate::sweeps::api_run,
        crate::sweep_form::api_start,
        crate::job_pages::api_get,
        crate::job_pages::api_events,
        crate::job_pages::api_cancel,
        crate::backtests::api_list,
        crate::backtests::api_start,
        crate::backtests::api_get,
        crate::backtests::api_events,
        crate::backtests::api_cancel,
        crate::backtests::api_result,
        crate::live::api_overview,
        crate::live::api_overview_events,
        crate::live_pages::api_trades,
        crate::performance::api_performance,
        crate::performance::api_performance_events,
        crate::live_pages::api_algo,
        crate::live_pages::api_algo_save,
        crate::live_pages::api_halt,
        crate::live_pages::api_resume,
    ),
    modifiers(&Security, &Uniform),
    security(("session" = [])),
    tags((name = "data", description = "Stored market data"), (name = "sweeps", description = "Stored parameter sweeps"), (name = "session", description = "The login session"), (name = "backtests", description = "Backtests run as server jobs"), (name = "live", description = "The live account, trades and per-symbol settings"), (name = "jobs", description = "Any server job: a sweep, a data fetch, a backtest"))
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let c = api.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::auth::SESSION_COOKIE,
            ))),
        );
        c.add_security_scheme(
            "csrf",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-CSRF-Token"))),
        );
    }
}

/// What every operation shares, said once here rather than on each handler: the refusals the
/// session and CSRF layers and the JSON body extractor answer with, and what a symbol in a path may be.
struct Uniform;

/// A ticker as `vectura_core::Symbol` accepts it (upper-cased by the server), starting with a
/// letter or digit so that it is one path segment.
const SYMBOL_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9./-]{0,9}$";

impl Modify for Uniform {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        use utoipa::openapi::{ObjectBuilder, Type};
        for item in api.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in ops.into_iter().flatten() {
                let csrf = op
                    .security
                    .iter()
                    .flatten()
                    .any(|s| serde_json::to_value(s).is_ok_and(|v| v.get("csrf").is_some()));
                let mut add = |code: &str, why: &str| {
                    op.responses
                        .responses
                        .entry(code.to_string())
                        .or_insert_with(|| error_response(why));
                };
                add(
                    "401",
                    "No session: log in (POST /login) and send the vectura_session cookie",
                );
                if csrf {
                    add("403", "The X-CSRF-Token header is missing or wrong (GET /api/v1/session gives it)");
                }
                let json_body = op
                    .request_body
                    .as_ref()
                    .is_some_and(|b| b.content.contains_key("application/json"));
                if json_body {
                    add("400", "The body is not valid JSON");
                    add(
                        "415",
                        "The body was not sent with Content-Type: application/json",
                    );
                }
                for p in op.parameters.iter_mut().flatten() {
                    if p.name == "symbol" && p.parameter_in == ParameterIn::Path {
                        p.schema = Some(
                            ObjectBuilder::new()
                                .schema_type(Type::String)
                                .pattern(Some(SYMBOL_PATTERN))
                                .into(),
                        );
                    }
                }
            }
        }
    }
}

/// A refusal with the API's error body.
fn error_response(why: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(why)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

/// `GET /api/v1/openapi.json`.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
