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
        crate::live_pages::api_algo,
        crate::live_pages::api_algo_save,
        crate::live_pages::api_halt,
        crate::live_pages::api_resume,
    ),
    modifiers(&Security),
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

/// `GET /api/v1/openapi.json`.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
