//! Prometheus metrics in the text exposition format: request counts by method, route and status
//! class, and named event counters (logins, refusals, jobs).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    events: Mutex<BTreeMap<&'static str, u64>>,
}

/// The events counted, with their help text (all listed, at 0, before the first occurrence).
const EVENTS: &[(&str, &str)] = &[
    ("login_success_total", "Successful logins."),
    (
        "login_failure_total",
        "Logins refused for a wrong user or password.",
    ),
    (
        "login_rate_limited_total",
        "Login attempts refused by the rate limiter.",
    ),
    (
        "csrf_refused_total",
        "Mutating requests refused for a missing or wrong CSRF token.",
    ),
    ("jobs_started_total", "Server jobs started."),
    (
        "jobs_finished_total",
        "Server jobs ended (done, failed or cancelled).",
    ),
    ("imports_total", "Bar files imported."),
];

impl Metrics {
    /// Counts one request; `route` is the matched route pattern (never the raw path, which would
    /// make a label per symbol).
    pub fn request(&self, method: &str, route: &str, status: u16) {
        let mut m = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
    }

    /// Counts one event.
    pub fn inc(&self, name: &'static str) {
        let mut m = self.events.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry(name).or_default() += 1;
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP vectura_http_requests_total HTTP requests served.\n");
        out.push_str("# TYPE vectura_http_requests_total counter\n");
        for ((method, route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "vectura_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                label(method),
                label(route)
            );
        }
        let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        for (name, help) in EVENTS {
            let _ = writeln!(out, "# HELP vectura_{name} {help}");
            let _ = writeln!(out, "# TYPE vectura_{name} counter");
            let _ = writeln!(
                out,
                "vectura_{name} {}",
                events.get(name).copied().unwrap_or(0)
            );
        }
        out
    }
}

/// A label value escaped as the format wants (backslash, quote, newline).
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters() {
        let m = Metrics::default();
        m.request("GET", "/data", 200);
        m.request("GET", "/data", 200);
        m.inc("login_failure_total");
        let t = m.render();
        assert!(
            t.contains(
                "vectura_http_requests_total{method=\"GET\",route=\"/data\",status=\"200\"} 2"
            ),
            "{t}"
        );
        assert!(t.contains("vectura_login_failure_total 1"));
        assert!(t.contains("vectura_login_success_total 0"));
    }
}
