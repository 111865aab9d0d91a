//! The operations webhook (`VECTURA_WEBHOOK_URL`): fills, rejects, halts and errors posted as JSON
//! that Slack (`text`) and Discord (`content`) both take, with the event's fields under `vectura` for
//! any other receiver.
//!
//! Trading never waits for it: an event is queued without blocking (a full queue drops the event
//! and counts it), and one background task posts the queue in order, each event with bounded
//! retries. The URL carries the receiver's secret in its path, so it is never logged: only its host.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

/// Events waiting to be posted; beyond this the newest are dropped (and counted), never waited for.
const QUEUE: usize = 1024;

/// What the trader tells the webhook.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// An execution applied to a symbol's lots.
    Fill {
        symbol: String,
        side: String,
        qty: String,
        price: String,
        client_order_id: String,
    },
    /// The broker refused an order (or a risk limit kept it from being sent).
    Reject {
        symbol: String,
        client_order_id: String,
        reason: String,
    },
    /// A symbol stopped trading.
    Halt { symbol: String, reason: String },
    /// A step failed; the daemon goes on at the next minute.
    Error { message: String },
}

impl Event {
    /// The one line a person reads in the chat.
    pub fn line(&self) -> String {
        match self {
            Event::Fill {
                symbol,
                side,
                qty,
                price,
                client_order_id,
            } => format!("vectura: {symbol} {side} {qty} @ {price} filled ({client_order_id})"),
            Event::Reject {
                symbol,
                client_order_id,
                reason,
            } => format!("vectura: {symbol} order {client_order_id} rejected: {reason}"),
            Event::Halt { symbol, reason } => format!("vectura: {symbol} halted: {reason}"),
            Event::Error { message } => format!("vectura: error: {message}"),
        }
    }

    /// The JSON body: `text` for Slack, `content` for Discord, `vectura` for anything else.
    pub fn body(&self) -> serde_json::Value {
        let line = self.line();
        serde_json::json!({ "text": line, "content": line, "vectura": self })
    }
}

/// How the webhook is posted.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The receiver (`https://hooks.slack.com/services/…`, `https://discord.com/api/webhooks/…`).
    pub url: String,
    /// Attempts per event (the first included) on a timeout, a refused connection, 429 or 5xx.
    pub attempts: u32,
    /// The wait before the second attempt; doubled before each later one.
    pub backoff: Duration,
    /// Time limit of one attempt.
    pub timeout: Duration,
}

impl WebhookConfig {
    /// Three attempts, 1 s then 2 s apart, 5 s each at most.
    pub fn new(url: impl Into<String>) -> WebhookConfig {
        WebhookConfig {
            url: url.into(),
            attempts: 3,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
        }
    }
}

/// Why a webhook cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("VECTURA_WEBHOOK_URL must be an http:// or https:// URL (got one starting {start:?}): set it to the webhook address your Slack or Discord channel gives, or unset it")]
    Url { start: String },
    #[error("the webhook's HTTP client could not be built")]
    Client(#[source] reqwest::Error),
}

/// Hands events to the webhook's task. Cheap to clone; a disabled one does nothing.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    tx: mpsc::Sender<Msg>,
    dropped: AtomicU64,
}

/// What the posting task takes: an event, or a request to answer once everything before it is posted.
#[derive(Debug)]
enum Msg {
    Event(Event),
    Flush(oneshot::Sender<()>),
}

impl Notifier {
    /// A notifier that posts nothing (no webhook set).
    pub fn disabled() -> Notifier {
        Notifier::default()
    }

    /// Starts the posting task on the current tokio runtime. It ends when every clone of the
    /// notifier is dropped and the queue is posted.
    pub fn start(cfg: WebhookConfig) -> Result<Notifier, NotifyError> {
        let url = cfg.url.trim().to_string();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(NotifyError::Url {
                start: url.chars().take(8).collect(),
            });
        }
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .build()
            .map_err(NotifyError::Client)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(post_all(client, WebhookConfig { url, ..cfg }, rx));
        Ok(Notifier {
            inner: Some(Arc::new(Inner {
                tx,
                dropped: AtomicU64::new(0),
            })),
        })
    }

    /// From `VECTURA_WEBHOOK_URL` as `get` reads it: disabled when unset or empty.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Notifier, NotifyError> {
        match get("VECTURA_WEBHOOK_URL").filter(|u| !u.trim().is_empty()) {
            Some(url) => Notifier::start(WebhookConfig::new(url)),
            None => Ok(Notifier::disabled()),
        }
    }

    /// Whether a webhook is set.
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Queues `event` without waiting; drops it (counted) when the queue is full.
    pub fn send(&self, event: Event) {
        let Some(inner) = &self.inner else { return };
        if inner.tx.try_send(Msg::Event(event)).is_err() {
            let n = inner.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(dropped = n, "webhook queue full: event dropped");
        }
    }

    /// Waits until every event queued so far is posted (or given up on), at most `within`; true when
    /// it was. A process that exits after a run calls it, so that its last fills are told.
    pub async fn flush(&self, within: Duration) -> bool {
        let Some(inner) = &self.inner else {
            return true;
        };
        let (tx, rx) = oneshot::channel();
        tokio::time::timeout(within, async {
            inner.tx.send(Msg::Flush(tx)).await.is_ok() && rx.await.is_ok()
        })
        .await
        .unwrap_or(false)
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |i| i.dropped.load(Ordering::Relaxed))
    }
}

/// The host (and port) of `url`, the only part of it that may be logged.
pub(crate) fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    host.rsplit('@').next().unwrap_or(host)
}

async fn post_all(client: reqwest::Client, cfg: WebhookConfig, mut rx: mpsc::Receiver<Msg>) {
    let host = host_of(&cfg.url).to_string();
    while let Some(msg) = rx.recv().await {
        let event = match msg {
            Msg::Event(e) => e,
            Msg::Flush(done) => {
                let _ = done.send(());
                continue;
            }
        };
        let body = event.body();
        let mut wait = cfg.backoff;
        for attempt in 1..=cfg.attempts.max(1) {
            match client.post(&cfg.url).json(&body).send().await {
                Ok(r) if r.status().is_success() => break,
                Ok(r) => {
                    let status = r.status();
                    let again = status.as_u16() == 429 || status.is_server_error();
                    if !again || attempt == cfg.attempts.max(1) {
                        tracing::warn!(%host, %status, attempt, "webhook refused the event");
                        break;
                    }
                }
                Err(e) => {
                    // The error's text names the URL: only its kind is logged.
                    let why = if e.is_timeout() {
                        "timed out"
                    } else if e.is_connect() {
                        "could not connect"
                    } else {
                        "request failed"
                    };
                    if attempt == cfg.attempts.max(1) {
                        tracing::warn!(%host, why, attempt, "webhook unreachable: event dropped");
                        break;
                    }
                }
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_reads_in_slack_and_discord_and_keeps_the_fields() {
        let e = Event::Halt {
            symbol: "SPY".into(),
            reason: "position differs".into(),
        };
        let b = e.body();
        assert_eq!(b["text"], "vectura: SPY halted: position differs");
        assert_eq!(b["content"], b["text"]);
        assert_eq!(b["vectura"]["event"], "halt");
        assert_eq!(b["vectura"]["symbol"], "SPY");
    }

    #[test]
    fn only_the_host_of_a_url_is_shown() {
        assert_eq!(
            host_of("https://hooks.slack.com/services/T0/B0/secret"),
            "hooks.slack.com"
        );
        assert_eq!(host_of("http://u:p@127.0.0.1:9/x?k=s"), "127.0.0.1:9");
    }

    #[tokio::test]
    async fn a_url_that_is_not_http_is_refused_naming_the_variable() {
        let e = Notifier::from_env(|_| Some("hooks.slack.com/x".into())).unwrap_err();
        assert!(e.to_string().contains("VECTURA_WEBHOOK_URL"), "{e}");
        assert!(!Notifier::from_env(|_| Some("  ".into())).unwrap().enabled());
        assert!(!Notifier::from_env(|_| None).unwrap().enabled());
    }
}
