//! Login, sessions, CSRF, rate limiting and headers, over plain HTTP.

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use vectura_web::Config;

use crate::support::{hidden_value, minute_csv, start, start_with, Client, PASSWORD};

/// Imports two days of SPY through the API, as the logged-in client.
async fn seed_spy(c: &Client) {
    let r = c
        .with_csrf(Method::POST, "/api/v1/ranges/SPY/import")
        .body(minute_csv(&[4, 5]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_and_api_call_needs_a_login() {
    let s = start().await;
    let mut c = Client::new(&s.base);
    for page in [
        "/data",
        "/backtests",
        "/sweeps",
        "/data/SPY",
        "/sweeps/x",
        "/no-such-page",
    ] {
        let r = c.get(page).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{page}");
        let to = r.headers()[LOCATION].to_str().unwrap().to_string();
        assert!(to.starts_with("/login?next="), "{page} -> {to}");
        assert!(to.contains(&page.replace('/', "%2F")), "{page} -> {to}");
    }
    assert_eq!(c.get("/").await.headers()[LOCATION], "/login");
    for api in [
        "/api/v1/ranges",
        "/api/v1/ranges/SPY",
        "/api/v1/session",
        "/api/v1/sweeps",
        "/api/v1/openapi.json",
        "/api/v1/nope",
    ] {
        let r = c.get(api).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{api}");
        let b: serde_json::Value = r.json().await.unwrap();
        assert!(
            b["error"].as_str().unwrap().contains("log in"),
            "{api}: {b}"
        );
    }
    // Public: the login page, health, metrics and static files.
    assert_eq!(c.get("/login").await.status(), StatusCode::OK);
    assert_eq!(c.get("/healthz").await.text().await.unwrap(), "ok\n");
    let m = c.get("/metrics").await.text().await.unwrap();
    assert!(m.contains("vectura_http_requests_total"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutating_calls_without_a_session_or_csrf_token_are_refused_and_change_nothing() {
    let s = start().await;
    let mut c = Client::new(&s.base);
    c.login().await;
    seed_spy(&c).await;
    let spy_days = || async { s.store.range("SPY").await.unwrap().map(|r| r.days_stored) };
    assert_eq!(spy_days().await, Some(2));

    // No session at all.
    let anon = Client::new(&s.base);
    let r = anon
        .request(Method::DELETE, "/api/v1/ranges/SPY")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = anon
        .request(Method::POST, "/api/v1/ranges/QQQ/import")
        .body(minute_csv(&[4]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = anon
        .request(Method::POST, "/data/SPY/delete")
        .form(&[("confirm", "SPY")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers()[LOCATION]
        .to_str()
        .unwrap()
        .starts_with("/login"));

    // A session, but no token or a wrong one: header and form alike.
    let r = c
        .request(Method::DELETE, "/api/v1/ranges/SPY")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("CSRF"));
    let r = c
        .request(Method::DELETE, "/api/v1/ranges/SPY")
        .header("X-CSRF-Token", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .request(Method::POST, "/data/SPY/delete")
        .form(&[("confirm", "SPY")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "a form without its csrf field"
    );
    let r = c
        .request(Method::POST, "/data/SPY/delete")
        .form(&[("confirm", "SPY"), ("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .request(Method::POST, "/api/v1/ranges/QQQ/import")
        .body(minute_csv(&[4]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c.request(Method::POST, "/logout").send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "logout is a mutation too"
    );
    // Another session's token does not work for this one.
    let mut other = Client::new(&s.base);
    other.login().await;
    let r = c
        .request(Method::DELETE, "/api/v1/ranges/SPY")
        .header("X-CSRF-Token", other.csrf.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(spy_days().await, Some(2), "nothing was deleted");
    assert!(
        s.store.range("QQQ").await.unwrap().is_none(),
        "nothing was imported"
    );
    let m = c.get("/metrics").await.text().await.unwrap();
    assert!(m.contains("vectura_csrf_refused_total 7"), "{m}");

    // With the token, the form deletes (after the typed confirmation).
    let page = c.get("/data/SPY/delete").await.text().await.unwrap();
    let token = hidden_value(&page, "csrf").unwrap();
    let r = c
        .request(Method::POST, "/data/SPY/delete")
        .form(&[("confirm", "QQQ"), ("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("type SPY to confirm"));
    assert_eq!(spy_days().await, Some(2));
    let r = c
        .request(Method::POST, "/data/SPY/delete")
        .form(&[("confirm", "spy"), ("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/data?deleted=SPY");
    assert_eq!(spy_days().await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_is_http_only_strict_and_stored_only_as_a_hash() {
    let s = start().await;
    let mut c = Client::new(&s.base);
    let r = c.try_login("admin", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/");
    let set = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("vectura_session="))
        .expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    assert!(
        !set.contains("Secure"),
        "not Secure by default (plain http on 127.0.0.1)"
    );
    let secret = set
        .trim_start_matches("vectura_session=")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(secret.len() >= 43);
    let now = i64::MAX / 2;
    let _ = now;
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(
        s.store.session(&secret, t).await.unwrap().is_none(),
        "the secret itself is not a key"
    );
    let stored = s
        .store
        .session(&vectura_web::auth::sha256_hex(&secret), t)
        .await
        .unwrap()
        .expect("stored by its hash");
    assert_eq!(stored.username, "admin");
    assert!(stored.expires_at_ms > t + 11 * 3600 * 1000);
    // Expired: refused.
    assert!(s
        .store
        .session(&stored.id_hash, stored.expires_at_ms)
        .await
        .unwrap()
        .is_none());

    // Logout ends it: the same cookie is refused afterwards.
    let csrf = {
        let s: serde_json::Value = c.get("/api/v1/session").await.json().await.unwrap();
        s["csrf_token"].as_str().unwrap().to_string()
    };
    let saved = c.cookies.clone();
    let r = c
        .request(Method::POST, "/logout")
        .header("X-CSRF-Token", csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    c.cookies = saved;
    assert_eq!(
        c.get("/api/v1/session").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_expired_is_refused() {
    let s = start_with(
        Some(PASSWORD),
        Config {
            session_ttl: Duration::from_millis(1500),
            ..Config::default()
        },
    )
    .await;
    let mut c = Client::new(&s.base);
    c.login().await;
    assert_eq!(c.get("/api/v1/ranges").await.status(), StatusCode::OK);
    // Expiry is a comparison with the stored time, so waiting past it is the only way to see it
    // from outside; the wait decides nothing about speed.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(
        c.get("/api/v1/ranges").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_are_rate_limited_per_address() {
    let s = start().await;
    let mut c = Client::new(&s.base);
    for i in 0..5 {
        let r = c.try_login("admin", "not the password").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
        assert!(r
            .text()
            .await
            .unwrap()
            .contains("wrong user name or password"));
    }
    // Now even the right password is refused, with the wait.
    let r = c.try_login("admin", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=901).contains(&wait), "{wait}");
    assert!(r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .all(|v| !v.to_str().unwrap().starts_with("vectura_session=")));
    let m = c.get("/metrics").await.text().await.unwrap();
    assert!(m.contains("vectura_login_failure_total 5"), "{m}");
    assert!(m.contains("vectura_login_rate_limited_total 1"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_form_needs_its_csrf_token_and_redirects_only_within_the_site() {
    let s = start().await;
    let c = Client::new(&s.base);
    // No login page fetched: no CSRF cookie, a forged field.
    let r = c
        .request(Method::POST, "/login")
        .form(&[("username", "admin"), ("password", PASSWORD), ("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    for (next, want) in [
        ("/data?x=1", "/data?x=1"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
    ] {
        let mut c = Client::new(&s.base);
        let page = c.get("/login").await.text().await.unwrap();
        let csrf = hidden_value(&page, "csrf").unwrap();
        let r = c
            .request(Method::POST, "/login")
            .form(&[
                ("username", "admin"),
                ("password", PASSWORD),
                ("csrf", &csrf),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{next}");
        assert_eq!(r.headers()[LOCATION], want, "{next}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reply_carries_the_security_headers() {
    let s = start().await;
    let mut c = Client::new(&s.base);
    let mut replies = vec![c.get("/login").await, c.get("/api/v1/ranges").await];
    c.login().await;
    replies.push(c.get("/data").await);
    replies.push(c.get("/api/v1/ranges").await);
    for r in &replies {
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{csp}");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("script-src 'self' 'unsafe"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "same-origin");
        assert_eq!(h["cache-control"], "no-store", "{}", r.url());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_one_time_token_sets_the_first_password_once() {
    let s = start_with(None, Config::default()).await;
    let token = s
        .state
        .setup_token()
        .expect("a token while no password is set");
    let mut c = Client::new(&s.base);
    let page = c.get("/login").await.text().await.unwrap();
    assert!(
        page.contains("/setup"),
        "the login page points to the set-up"
    );
    let page = c.get("/setup").await.text().await.unwrap();
    let csrf = hidden_value(&page, "csrf").unwrap();
    let post = |c: &Client, tok: &str, pw: &str, pw2: &str| {
        c.request(Method::POST, "/setup")
            .form(&[
                ("token", tok),
                ("password", pw),
                ("password2", pw2),
                ("csrf", csrf.as_str()),
            ])
            .send()
    };
    let r = post(&c, "wrong", PASSWORD, PASSWORD).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("data-for=\"token\"") && html.contains("the token is wrong"),
        "{html}"
    );
    let r = post(&c, &token, "short", "short").await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("data-for=\"password\"") && html.contains("at least 10"),
        "{html}"
    );
    let r = post(&c, &token, PASSWORD, "another password!")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("data-for=\"password2\""));
    assert_eq!(s.store.user_count().await.unwrap(), 0, "nothing stored yet");
    let r = post(&c, &token, PASSWORD, PASSWORD).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    c.keep(&r);
    assert_eq!(
        c.get("/api/v1/session").await.status(),
        StatusCode::OK,
        "logged in"
    );
    assert!(s.state.setup_token().is_none(), "the token is used up");
    let hash = s.store.user_password_hash("admin").await.unwrap().unwrap();
    assert!(hash.starts_with("$argon2id$") && !hash.contains(PASSWORD));
    let r = post(&Client::new(&s.base), &token, PASSWORD, PASSWORD)
        .await
        .unwrap();
    assert_ne!(r.status(), StatusCode::SEE_OTHER, "a second use fails");
    let mut fresh = Client::new(&s.base);
    fresh.login().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plotly_is_served_compressed_with_a_long_cache() {
    let s = start().await;
    let mut c = Client::new(&s.base);
    c.login().await;
    let page = c.get("/sweeps").await.text().await.unwrap();
    let _ = page;
    let url = vectura_web::assets::plotly_url();
    assert!(
        url.starts_with("/static/plotly-") && url.ends_with(".js"),
        "{url}"
    );
    let anon = Client::new(&s.base);
    let r = anon
        .request(Method::GET, url)
        .header("Accept-Encoding", "gzip, br")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(r.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let gz = r.bytes().await.unwrap();
    let mut js = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut js).unwrap();
    assert!(
        js.len() > 3_000_000 && gz.len() < js.len() / 2,
        "{} -> {}",
        js.len(),
        gz.len()
    );
    assert!(js.contains("plotly.js"), "the library");
    let raw = anon
        .request(Method::GET, url)
        .header("Accept-Encoding", "identity")
        .send()
        .await
        .unwrap();
    assert!(raw.headers().get("content-encoding").is_none());
    assert_eq!(raw.text().await.unwrap(), js);
    let r = anon
        .request(Method::GET, "/static/plotly-0000.js")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_set_while_the_server_runs_closes_the_set_up() {
    let s = start_with(None, Config::default()).await;
    let token = s.state.setup_token().unwrap();
    // `vectura user set-password` from another process, meanwhile.
    let h = vectura_web::hash_password(PASSWORD).unwrap();
    s.store.set_user_password("admin", &h, 1).await.unwrap();
    let mut c = Client::new(&s.base);
    let page = c.get("/setup").await.text().await.unwrap();
    let csrf = hidden_value(&page, "csrf").unwrap();
    let r = c
        .request(Method::POST, "/setup")
        .form(&[
            ("token", token.as_str()),
            ("password", "another long one"),
            ("password2", "another long one"),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(
        s.store.user_password_hash("admin").await.unwrap().unwrap(),
        h,
        "unchanged"
    );
    c.login().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_and_sweep_calls_need_a_session_and_the_csrf_token() {
    let s = start().await;
    let mut c = Client::new(&s.base);
    c.login().await;
    let anon = Client::new(&s.base);
    let sweep = serde_json::json!({"params": {"buy_below_pct": "1,2"}});
    for (path, body) in [
        ("/api/v1/sweeps", sweep.clone()),
        ("/api/v1/jobs/sw-1/cancel", serde_json::json!({})),
    ] {
        let r = anon
            .request(Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "{path} without a session"
        );
        let r = c
            .request(Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::FORBIDDEN,
            "{path} without the token"
        );
        let r = c
            .request(Method::POST, path)
            .header("X-CSRF-Token", "wrong")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::FORBIDDEN,
            "{path} with a wrong token"
        );
    }
    for path in ["/api/v1/jobs/sw-1", "/api/v1/jobs/sw-1/events"] {
        let r = anon.request(Method::GET, path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    for (path, form) in [
        ("/sweeps", vec![("params.buy_below_pct", "1,2")]),
        ("/jobs/sw-1/cancel", vec![]),
    ] {
        let r = anon
            .request(Method::POST, path)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "{path} without a session"
        );
        let r = c
            .request(Method::POST, path)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::FORBIDDEN,
            "{path} without its csrf field"
        );
    }
    // Nothing started.
    assert!(s.store.jobs("sweep", 10).await.unwrap().is_empty());
}
