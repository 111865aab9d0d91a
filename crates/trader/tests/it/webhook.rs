//! The operations webhook over real HTTP: a local receiver (a plain HTTP/1.1 listener, answering
//! with scripted statuses) gets fills, rejects and halts as Slack- and Discord-compatible JSON; a
//! failing receiver is retried a bounded number of times; one that never answers slows no trade.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use vectura_store::RiskLimits;
use vectura_trader::{Notifier, Trader, TraderConfig, WebhookConfig};

use crate::support::{bar, env, EmuClock, Env, SYM};

/// A webhook receiver on loopback: answers the n-th request with `statuses[n]` (the last one
/// repeated), or never answers when `hang`. Keeps every JSON body it got.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    async fn start(statuses: Vec<u16>, hang: bool) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/services/T000/B000/not-a-real-token",
            listener.local_addr().unwrap()
        );
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let got = bodies.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (got, statuses) = (got.clone(), statuses.clone());
                tokio::spawn(async move {
                    // One connection may carry several requests (keep-alive).
                    let mut buf = Vec::new();
                    loop {
                        let Some(body) = read_request(&mut sock, &mut buf).await else {
                            return;
                        };
                        let n = {
                            let mut g = got.lock().unwrap();
                            g.push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                            g.len() - 1
                        };
                        if hang {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        }
                        let status = statuses[n.min(statuses.len() - 1)];
                        let reply = format!(
                            "HTTP/1.1 {status} X\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok"
                        );
                        if sock.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Receiver { url, bodies }
    }

    fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }
}

/// Reads one request's body (by its content-length) from `sock`; None at the end of the stream.
async fn read_request(sock: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    assert!(head.starts_with("post /services/"), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    Some(body)
}

fn quick(url: &str) -> WebhookConfig {
    WebhookConfig {
        backoff: Duration::from_millis(20),
        ..WebhookConfig::new(url)
    }
}

async fn trader(e: &Env, notify: Notifier) -> Trader {
    Trader::start(
        e.store.clone(),
        e.client.clone(),
        e.client.clone(),
        Arc::new(EmuClock(e.h.clone())),
        TraderConfig {
            notify,
            ..TraderConfig::default()
        },
    )
    .await
    .unwrap()
    .0
}

fn of_kind(bodies: &[Value], kind: &str) -> Vec<Value> {
    bodies
        .iter()
        .filter(|b| b["vectura"]["event"] == kind)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_rejects_and_halts_reach_the_webhook_as_slack_and_discord_json() {
    let rx = Receiver::start(vec![200], false).await;
    let notify = Notifier::start(quick(&rx.url)).unwrap();
    let limits = RiskLimits {
        max_orders_per_day: Some(3),
        ..RiskLimits::default()
    };
    let e = env("webhook", limits).await;
    let mut t = trader(&e, notify.clone()).await;
    let mut fills = 0;
    let mut ended = 0;
    for _ in 0..90 {
        let r = bar(&e, &mut t).await;
        fills += r.fills;
        ended += r.ended;
    }
    e.store
        .halt_symbol(SYM, "halted from the dashboard", chrono::Utc::now())
        .await
        .unwrap();
    bar(&e, &mut t).await;
    assert!(
        notify.flush(Duration::from_secs(10)).await,
        "everything posted"
    );

    let bodies = rx.bodies();
    for b in &bodies {
        let text = b["text"].as_str().expect("Slack's text");
        assert_eq!(b["content"], text, "Discord's content is the same line");
        assert!(text.starts_with("vectura: INDA"), "{text}");
        assert_eq!(b["vectura"]["symbol"], SYM);
    }
    let fill_events = of_kind(&bodies, "fill");
    assert!(fills >= 2, "the grid traded: {fills} fills");
    assert_eq!(fill_events.len(), fills, "one event per fill");
    for f in &fill_events {
        assert!(f["vectura"]["client_order_id"]
            .as_str()
            .unwrap()
            .starts_with("vt-"));
        assert!(["buy", "sell"].contains(&f["vectura"]["side"].as_str().unwrap()));
        assert!(
            f["vectura"]["price"]
                .as_str()
                .unwrap()
                .parse::<f64>()
                .unwrap()
                > 0.0
        );
    }
    let rejects = of_kind(&bodies, "reject");
    assert!(ended >= 1, "the daily cap ended an intent");
    assert!(
        rejects.iter().any(|r| r["vectura"]["reason"]
            .as_str()
            .unwrap()
            .contains("max_orders_per_day")),
        "{rejects:?}"
    );
    let halts = of_kind(&bodies, "halt");
    assert_eq!(halts.len(), 1, "{halts:?}");
    assert_eq!(halts[0]["vectura"]["reason"], "halted from the dashboard");
    assert_eq!(
        halts[0]["text"],
        "vectura: INDA halted: halted from the dashboard"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_is_retried_a_bounded_number_of_times() {
    let event = || vectura_trader::Event::Error {
        message: "broker: timed out".into(),
    };
    // (statuses answered in turn, requests expected for one event)
    for (statuses, want) in [
        (vec![500, 503, 200], 3),
        (vec![500], 3),
        (vec![429, 200], 2),
        (vec![404], 1),
        (vec![204], 1),
    ] {
        let rx = Receiver::start(statuses.clone(), false).await;
        let n = Notifier::start(quick(&rx.url)).unwrap();
        n.send(event());
        assert!(n.flush(Duration::from_secs(10)).await);
        let got = rx.bodies();
        assert_eq!(got.len(), want, "answers {statuses:?}");
        assert!(got.iter().all(|b| b["vectura"]["event"] == "error"));
    }
    // Nobody listening: the attempts end, the queue goes on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", l.local_addr().unwrap())
    };
    let n = Notifier::start(quick(&closed)).unwrap();
    n.send(event());
    n.send(event());
    assert!(
        n.flush(Duration::from_secs(10)).await,
        "unreachable is given up on"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_answers_slows_no_trade() {
    let rx = Receiver::start(vec![200], true).await;
    let stuck = Notifier::start(WebhookConfig {
        timeout: Duration::from_secs(30),
        ..quick(&rx.url)
    })
    .unwrap();
    let with = env("webhook-stuck", RiskLimits::default()).await;
    let without = env("webhook-none", RiskLimits::default()).await;
    let mut a = trader(&with, stuck.clone()).await;
    let mut b = trader(&without, Notifier::disabled()).await;
    // Bounded, so that a trader waiting on the webhook fails here instead of hanging the suite.
    let (fa, fb) = tokio::time::timeout(Duration::from_secs(300), async {
        let (mut fa, mut fb) = (0, 0);
        for _ in 0..60 {
            fa += bar(&with, &mut a).await.fills;
            fb += bar(&without, &mut b).await.fills;
        }
        (fa, fb)
    })
    .await
    .expect("trading went on while the webhook never answered");
    assert!(fa >= 2, "the grid traded: {fa} fills");
    assert_eq!(fa, fb, "the same fills with a stuck webhook as with none");
    assert_eq!(
        with.store.orders(SYM).await.unwrap().len(),
        without.store.orders(SYM).await.unwrap().len()
    );
    assert_eq!(
        rx.bodies().len(),
        1,
        "the first event is still waiting for its answer"
    );
    assert!(
        !stuck.flush(Duration::from_millis(200)).await,
        "the webhook is still stuck, and trading went on"
    );
}
