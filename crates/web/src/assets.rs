//! Static files: plotly.js (the `plotly` crate's embedded copy), our script and style sheet. Each is
//! served under a name holding a hash of its content, with a year-long immutable cache, gzip-
//! compressed when the client accepts it (plotly.js shrinks from about 4.6 MB to 1.4 MB).

use std::io::Write;
use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Our script: progress streams, confirmations, uploads, field messages.
const APP_JS: &str = include_str!("../static/app.js");
/// The live pages' script (server-sent overview updates, confirmations).
const LIVE_JS: &str = include_str!("../static/live.js");
/// Our style sheet.
const APP_CSS: &str = include_str!("../static/app.css");

/// One static file, its hashed name and its gzip body.
pub struct Asset {
    /// The URL path (`/static/NAME-HASH.EXT`).
    pub url: String,
    pub content_type: &'static str,
    pub raw: &'static [u8],
    pub gzip: axum::body::Bytes,
}

/// FNV-1a (64 bits): enough to tell versions of a file apart in its URL.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn asset(stem: &str, ext: &str, content_type: &'static str, raw: &'static [u8]) -> Asset {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(9));
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(raw);
    let gzip = axum::body::Bytes::from(enc.finish().unwrap_or_default());
    Asset {
        url: format!("/static/{stem}-{:016x}.{ext}", fnv1a(raw)),
        content_type,
        raw,
        gzip,
    }
}

/// plotly.js as the `plotly` crate embeds it (the first `<script>` of its offline sources).
fn plotly_source() -> &'static str {
    static JS: OnceLock<String> = OnceLock::new();
    JS.get_or_init(|| {
        let html = plotly::Plot::offline_js_sources();
        let start = html.find('>').map_or(0, |i| i + 1);
        let end = html[start..]
            .find("</script>")
            .map_or(html.len(), |i| start + i);
        html[start..end].to_string()
    })
}

/// Every static file, built once.
pub fn all() -> &'static [Asset] {
    static ALL: OnceLock<Vec<Asset>> = OnceLock::new();
    ALL.get_or_init(|| {
        vec![
            asset(
                "plotly",
                "js",
                "text/javascript; charset=utf-8",
                plotly_source().as_bytes(),
            ),
            asset(
                "app",
                "js",
                "text/javascript; charset=utf-8",
                APP_JS.as_bytes(),
            ),
            asset("app", "css", "text/css; charset=utf-8", APP_CSS.as_bytes()),
            asset(
                "live",
                "js",
                "text/javascript; charset=utf-8",
                LIVE_JS.as_bytes(),
            ),
        ]
    })
}

/// The URL of plotly.js.
pub fn plotly_url() -> &'static str {
    &all()[0].url
}

/// The URL of our script.
pub fn app_js_url() -> &'static str {
    &all()[1].url
}

/// The URL of our style sheet.
pub fn app_css_url() -> &'static str {
    &all()[2].url
}

/// The URL of the live pages' script.
pub fn live_js_url() -> &'static str {
    &all()[3].url
}

/// `GET /static/{name}`.
pub async fn serve(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let path = format!("/static/{name}");
    let Some(a) = all().iter().find(|a| a.url == path) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let gzip_ok = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',').any(|e| {
                let mut it = e.split(';');
                let name = it.next().unwrap_or("").trim();
                let q0 = it.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
                name.eq_ignore_ascii_case("gzip") && !q0
            })
        });
    let mut res = if gzip_ok {
        let mut r = a.gzip.clone().into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        a.raw.into_response()
    };
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    res
}
