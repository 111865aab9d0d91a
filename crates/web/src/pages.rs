//! The page frame, the login and set-up pages, logout and the home page.

use std::net::SocketAddr;
use std::sync::Arc;

use askama::Template;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use crate::assets;
use crate::auth::{
    check_new_password, constant_time_eq, cookie, random_token, sha256_hex, verify_password,
    CurrentSession, LOGIN_CSRF_COOKIE, SESSION_COOKIE,
};
use crate::error::ApiError;
use crate::server::AppState;
use crate::ADMIN_USER;

/// What every page's frame shows: the user, the CSRF token for its forms, the asset URLs.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub title: String,
    pub user: Option<String>,
    pub csrf: String,
    pub css: &'static str,
    pub js: &'static str,
    /// The nav entry to highlight.
    pub nav: &'static str,
}

impl Chrome {
    /// The frame of a logged-in page.
    pub fn new(title: impl Into<String>, nav: &'static str, s: &CurrentSession) -> Chrome {
        Chrome {
            title: title.into(),
            user: Some(s.username.clone()),
            csrf: s.csrf_token.clone(),
            css: assets::app_css_url(),
            js: assets::app_js_url(),
            nav,
        }
    }

    /// The frame of a page shown without a session.
    pub(crate) fn public(title: &str, csrf: String) -> Chrome {
        Chrome {
            title: title.to_string(),
            user: None,
            csrf,
            css: assets::app_css_url(),
            js: assets::app_js_url(),
            nav: "",
        }
    }
}

/// Renders a template as a page (a template cannot fail on our own data; if it does, the reply
/// says so without internals).
pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("rendering the page failed: {e}"),
        )
        .into_response(),
    }
}

/// Percent-encodes a query value.
pub fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A `next` target that stays on this site: a path starting with one `/` (no `//host`, no
/// backslash tricks); anything else goes home.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control)
                && n.len() < 2048 =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

fn set_cookie(state: &AppState, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(a) = max_age {
        c.push_str(&format!("; Max-Age={a}"));
    }
    if state.config.secure_cookies {
        c.push_str("; Secure");
    }
    // Tokens are base64url: always a valid header value.
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The login form's CSRF token from its cookie, or a new one (then also set as the cookie).
fn login_csrf(headers: &HeaderMap) -> (String, bool) {
    match headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| cookie(h, LOGIN_CSRF_COOKIE))
        .filter(|t| t.len() == 43)
    {
        Some(t) => (t.to_string(), false),
        None => (random_token(), true),
    }
}

fn login_csrf_ok(headers: &HeaderMap, field: &str) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| cookie(h, LOGIN_CSRF_COOKIE))
        .is_some_and(|c| !c.is_empty() && constant_time_eq(c, field))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    next: String,
    username: String,
    error: Option<String>,
    setup_open: bool,
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    chrome: Chrome,
    error: Option<String>,
    field: String,
    done: bool,
}

/// `?next=` of the login page.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    pub next: Option<String>,
}

fn with_login_cookie(state: &AppState, mut res: Response, token: &str, new: bool) -> Response {
    if new {
        res.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(state, LOGIN_CSRF_COOKIE, token, Some(3600)),
        );
    }
    res
}

/// `GET /login`.
pub async fn login_form(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<NextQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let next = safe_next(q.as_ref().ok().and_then(|q| q.next.as_deref()));
    if let Ok(Some(_)) = crate::security::session_of(&state, &headers).await {
        return Redirect::to(&next).into_response();
    }
    let (token, new) = login_csrf(&headers);
    let page = LoginPage {
        chrome: Chrome::public("Log in", token.clone()),
        next,
        username: ADMIN_USER.to_string(),
        error: None,
        setup_open: state.setup_token().is_some(),
    };
    with_login_cookie(&state, render(&page), &token, new)
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub csrf: String,
    pub next: Option<String>,
}

pub(crate) async fn start_session(
    state: &AppState,
    username: &str,
) -> Result<HeaderValue, ApiError> {
    let secret = random_token();
    let now = crate::now_ms();
    let ttl = state.config.session_ttl;
    state
        .store
        .create_session(&vectura_store::WebSession {
            id_hash: sha256_hex(&secret),
            username: username.to_string(),
            csrf_token: random_token(),
            created_at_ms: now,
            expires_at_ms: now.saturating_add(ttl.as_millis() as i64),
        })
        .await?;
    Ok(set_cookie(
        state,
        SESSION_COOKIE,
        &secret,
        Some(ttl.as_secs()),
    ))
}

fn too_many(wait: u64) -> Response {
    let mut r = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many failed attempts: wait {wait} s before trying again"),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// What every credential form passes first, in this order: the login rate limit, a well-formed body,
/// its double-submit CSRF token. The refusal is the response to send.
fn admit<F>(
    state: &AppState,
    ip: std::net::IpAddr,
    headers: &HeaderMap,
    form: Result<Form<F>, axum::extract::rejection::FormRejection>,
    csrf: impl Fn(&F) -> &str,
    bad_body: &'static str,
    bad_csrf: &'static str,
) -> Result<F, Response> {
    if let Err(wait) = state.limiter.check(ip) {
        state.metrics.inc("login_rate_limited_total");
        return Err(too_many(wait));
    }
    let Ok(Form(f)) = form else {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, bad_body).into_response());
    };
    if !login_csrf_ok(headers, csrf(&f)) {
        state.metrics.inc("csrf_refused_total");
        return Err(ApiError::new(StatusCode::FORBIDDEN, bad_csrf).into_response());
    }
    Ok(f)
}

/// `POST /login`: the rate limit first, then the form's CSRF token, then the password.
pub async fn login(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let ip = peer.ip();
    let f = match admit(
        &state,
        ip,
        &headers,
        form,
        |f: &LoginForm| &f.csrf,
        "the login form must be sent as application/x-www-form-urlencoded with username, password and csrf",
        "the login form's CSRF token is missing or wrong: reload the login page and try again",
    ) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let next = safe_next(f.next.as_deref());
    let hash = match state.store.user_password_hash(f.username.trim()).await {
        Ok(h) => h,
        Err(e) => return ApiError::store(e).into_response(),
    };
    let password = f.password.clone();
    // Argon2 is CPU work: off the async workers. A missing user costs a hash too, so the reply
    // time does not tell which user names exist.
    let ok = tokio::task::spawn_blocking(move || match hash {
        Some(h) => verify_password(&password, &h),
        None => {
            let _ = verify_password(&password, dummy_hash());
            false
        }
    })
    .await
    .unwrap_or(false);
    if !ok {
        state.limiter.failed(ip);
        state.metrics.inc("login_failure_total");
        let (token, new) = login_csrf(&headers);
        let page = LoginPage {
            chrome: Chrome::public("Log in", token.clone()),
            next,
            username: f.username,
            error: Some("wrong user name or password".to_string()),
            setup_open: state.setup_token().is_some(),
        };
        let mut res = with_login_cookie(&state, render(&page), &token, new);
        *res.status_mut() = StatusCode::UNAUTHORIZED;
        return res;
    }
    state.limiter.succeeded(ip);
    state.metrics.inc("login_success_total");
    match start_session(&state, f.username.trim()).await {
        Ok(cookie) => {
            let mut res = Redirect::to(&next).into_response();
            res.headers_mut().append(header::SET_COOKIE, cookie);
            res
        }
        Err(e) => e.into_response(),
    }
}

/// The hash of a random password, verified against when the user does not exist.
fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| crate::auth::hash_password(&random_token()).unwrap_or_default())
}

/// `POST /logout`.
pub async fn logout(
    State(state): State<Arc<AppState>>,
    Extension(s): Extension<CurrentSession>,
) -> Response {
    state.sessions.remove(&s.id_hash);
    if let Err(e) = state.store.delete_session(&s.id_hash).await {
        return ApiError::store(e).into_response();
    }
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", Some(0)),
    );
    res
}

/// `GET /setup`: set the admin password with the one-time token printed at start.
pub async fn setup_form(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let (token, new) = login_csrf(&headers);
    let page = SetupPage {
        chrome: Chrome::public("Set the password", token.clone()),
        error: None,
        field: String::new(),
        done: state.setup_token().is_none(),
    };
    with_login_cookie(&state, render(&page), &token, new)
}

/// The set-up form's fields.
#[derive(Debug, Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub password2: String,
    #[serde(default)]
    pub csrf: String,
}

/// `POST /setup`.
pub async fn setup(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<SetupForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let ip = peer.ip();
    let f = match admit(
        &state,
        ip,
        &headers,
        form,
        |f: &SetupForm| &f.csrf,
        "the set-up form must be sent as application/x-www-form-urlencoded with token, password, password2 and csrf",
        "the set-up form's CSRF token is missing or wrong: reload the page and try again",
    ) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let fail = |status: StatusCode, field: &str, msg: String| {
        let (token, new) = login_csrf(&headers);
        let page = SetupPage {
            chrome: Chrome::public("Set the password", token.clone()),
            error: Some(msg),
            field: field.to_string(),
            done: state.setup_token().is_none(),
        };
        let mut res = with_login_cookie(&state, render(&page), &token, new);
        *res.status_mut() = status;
        res
    };
    // A password set meanwhile (`vectura user set-password` while the server ran) closes the
    // set-up: the token must not replace it.
    match state.store.user_count().await {
        Ok(0) => {}
        Ok(_) => {
            *state.setup_token.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
        Err(e) => return ApiError::store(e).into_response(),
    }
    let Some(expected) = state.setup_token() else {
        return fail(
            StatusCode::CONFLICT,
            "token",
            "a password is already set: log in, or change it with `vectura user set-password`"
                .to_string(),
        );
    };
    if !constant_time_eq(f.token.trim(), &expected) {
        state.limiter.failed(ip);
        state.metrics.inc("login_failure_total");
        return fail(
            StatusCode::UNAUTHORIZED,
            "token",
            "the token is wrong: copy the one `vectura serve` printed at start".to_string(),
        );
    }
    if let Err(m) = check_new_password(&f.password) {
        return fail(StatusCode::UNPROCESSABLE_ENTITY, "password", m);
    }
    if f.password != f.password2 {
        return fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "password2",
            "the two passwords differ: type the same password twice".to_string(),
        );
    }
    let pw = f.password.clone();
    let hash = match tokio::task::spawn_blocking(move || crate::auth::hash_password(&pw)).await {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => return fail(StatusCode::UNPROCESSABLE_ENTITY, "password", e.to_string()),
        Err(e) => {
            return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()
        }
    };
    // Consume the token first: a second form racing this one finds it gone.
    {
        let mut t = state.setup_token.lock().unwrap_or_else(|p| p.into_inner());
        if t.as_deref() != Some(expected.as_str()) {
            drop(t);
            return fail(
                StatusCode::CONFLICT,
                "token",
                "the token was used meanwhile: log in".to_string(),
            );
        }
        *t = None;
    }
    if let Err(e) = state
        .store
        .set_user_password(ADMIN_USER, &hash, crate::now_ms())
        .await
    {
        // Nothing was stored: the token stays valid for another try.
        *state.setup_token.lock().unwrap_or_else(|p| p.into_inner()) = Some(expected);
        return ApiError::store(e).into_response();
    }
    state.limiter.succeeded(ip);
    match start_session(&state, ADMIN_USER).await {
        Ok(cookie) => {
            let mut res = Redirect::to("/").into_response();
            res.headers_mut().append(header::SET_COOKIE, cookie);
            res
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    symbols: usize,
    sweeps: usize,
    backtests: usize,
}

/// `GET /`.
pub async fn home(
    State(state): State<Arc<AppState>>,
    Extension(s): Extension<CurrentSession>,
) -> Result<Response, ApiError> {
    let symbols = state.store.ranges().await?.len();
    let sweeps = state.store.sweep_runs().await?.len();
    let backtests = state.store.jobs("backtest", 1000).await?.len();
    Ok(render(&HomePage {
        chrome: Chrome::new("Vectura", "home", &s),
        symbols,
        sweeps,
        backtests,
    }))
}
