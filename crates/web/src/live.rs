//! The live pages' data: the overview of the account and of every traded symbol, computed from the
//! store (lots, triggers, orders, controls) and, when a trader runs in this process (`vectura demo`),
//! its broker (cash, equity, buying power). The trader's loop publishes a fresh overview after each
//! bar ([`LiveFeed::refresh`]); the page and `GET /api/v1/overview` read the last one (so a request
//! costs no query), and `GET /api/v1/overview/events` streams each new one (server-sent events).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::watch;
use utoipa::ToSchema;
use vectura_broker::{Broker, Decimal};
use vectura_core::calendar::{self, SessionPart};
use vectura_store::{Store, TradeTally, IN_FLIGHT_STATUSES};

use crate::error::ApiError;
use crate::server::AppState;

/// One open lot and the price its sell waits for.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LotView {
    pub id: String,
    /// When it was bought (RFC 3339).
    pub opened: String,
    pub price: f64,
    pub shares: f64,
    /// The sell trigger's price, when one is armed.
    pub sell_at: Option<f64>,
}

/// A buy trigger waiting for its price.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TriggerView {
    pub price: f64,
    /// `below` (buy on a fall) or `higher` (buy back after a sell).
    pub direction: String,
}

/// An order sent and not finished.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InFlightView {
    pub client_order_id: String,
    pub side: String,
    pub qty: f64,
    pub status: String,
}

/// One symbol as the overview shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SymbolView {
    pub symbol: String,
    /// `trading`, `halted`, `outside the session` or `disabled`.
    pub state: String,
    /// Why it is halted, and how to resolve it.
    pub halt_reason: Option<String>,
    pub shares: f64,
    /// Shares × the last price, dollars (when a broker answers).
    pub position_value: Option<f64>,
    pub last_price: Option<f64>,
    pub lots: Vec<LotView>,
    pub buy_triggers: Vec<TriggerView>,
    pub in_flight: Vec<InFlightView>,
    /// Trades executed (buys and sells).
    pub trades: usize,
}

/// The account and every symbol, as of the trader's clock.
#[derive(Debug, Clone, Serialize, ToSchema, Default)]
pub struct Overview {
    /// The trader's time (Unix s; the replay's time in the demo).
    pub as_of: i64,
    /// The same, RFC 3339.
    pub as_of_text: String,
    /// The same in New York time, as the page shows it.
    pub as_of_ny: String,
    /// Whether a broker answered (false: no trader in this process; account figures are absent).
    pub live: bool,
    pub equity: Option<f64>,
    pub cash: Option<f64>,
    pub buying_power: Option<f64>,
    /// Market value of the positions.
    pub invested: Option<f64>,
    /// The account's starting cash.
    pub start_cash: Option<f64>,
    /// Equity against the starting cash, percent.
    pub total_return_pct: Option<f64>,
    /// Time-weighted return, percent: with no deposits or withdrawals (the demo and the simulated
    /// broker have none) it equals the total return.
    pub twr_pct: Option<f64>,
    /// Equity less the previous session's closing equity.
    pub today_pnl: Option<f64>,
    /// The next regular session's open (RFC 3339).
    pub next_open: Option<String>,
    /// The same in New York time.
    pub next_open_ny: Option<String>,
    /// Whether the market is in its regular session now.
    pub market_open: bool,
    pub symbols: Vec<SymbolView>,
    /// Bars still to replay (the demo), or absent.
    pub bars_left: Option<usize>,
    /// Counts refreshes: a client sees whether anything changed.
    pub seq: u64,
}

/// What the trader's loop publishes: the overview and its JSON, made once.
#[derive(Debug, Clone, Default)]
pub struct Published {
    pub overview: Overview,
    pub json: Bytes,
}

/// The live source of a trader running in this process.
pub struct LiveFeed {
    broker: Arc<dyn Broker>,
    start_cash: f64,
    tx: watch::Sender<Arc<Published>>,
    /// Account equity after each bar (bar end, dollars), for the performance page.
    equity: Mutex<Vec<(i64, f64)>>,
    /// The account's cash at each refresh where it changed (the trader's time, dollars): cash moves
    /// only on a fill, and a step with a fill publishes, so these give every bar's cash.
    cash: Mutex<Vec<(i64, f64)>>,
}

impl std::fmt::Debug for LiveFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveFeed")
            .field("broker", &self.broker.name())
            .finish_non_exhaustive()
    }
}

fn dec(x: Decimal) -> f64 {
    x.to_string().parse().unwrap_or(f64::NAN)
}

fn rfc(ts: i64) -> String {
    vectura_core::time::rfc3339(ts)
}

/// The next regular session's open after `now` (today's when it has not opened yet).
pub fn next_open(now: i64) -> Option<i64> {
    let today = calendar::ny_date(now);
    match calendar::session(today) {
        Some(s) if s.open > now => Some(s.open),
        _ => calendar::next_session(today).map(|s| s.open),
    }
}

/// The overview from the store, and from `broker` when one is given.
pub async fn compute(
    store: &Store,
    broker: Option<&dyn Broker>,
    start_cash: Option<f64>,
    now: i64,
) -> Result<Overview, ApiError> {
    let mut o = Overview {
        as_of: now,
        as_of_text: rfc(now),
        as_of_ny: crate::ny_time::text(now),
        start_cash,
        next_open: next_open(now).map(rfc),
        next_open_ny: next_open(now).map(crate::ny_time::text),
        market_open: calendar::classify(now) == SessionPart::Regular,
        ..Overview::default()
    };
    let mut prices = std::collections::HashMap::new();
    if let Some(b) = broker {
        let a = b
            .account()
            .await
            .map_err(|e| ApiError::new(axum::http::StatusCode::BAD_GATEWAY, e.to_string()))?;
        let positions = b
            .positions()
            .await
            .map_err(|e| ApiError::new(axum::http::StatusCode::BAD_GATEWAY, e.to_string()))?;
        let equity = dec(a.equity);
        o.live = true;
        o.equity = Some(equity);
        o.cash = Some(dec(a.cash));
        o.buying_power = Some(dec(a.buying_power));
        o.invested = Some(
            positions
                .iter()
                .map(|p| p.market_value.map(dec).unwrap_or(0.0))
                .sum(),
        );
        o.today_pnl = a.last_equity.map(|l| equity - dec(l));
        if let Some(c) = start_cash.filter(|c| *c > 0.0) {
            o.total_return_pct = Some((equity / c - 1.0) * 100.0);
            o.twr_pct = o.total_return_pct;
        }
        for p in positions {
            if let Some(px) = p.current_price {
                prices.insert(p.symbol.clone(), dec(px));
            }
        }
    }
    // Each symbol's trade count and last price in one query (not its whole history).
    let tallies: std::collections::HashMap<String, TradeTally> = store
        .trade_tallies()
        .await?
        .into_iter()
        .map(|t| (t.symbol.clone(), t))
        .collect();
    for c in store.trade_controls().await? {
        let sym = c.symbol.clone();
        let lots = store.open_lots(&sym).await?;
        let trig = store.triggers(&sym).await?;
        let in_flight = store.orders_in_status(&sym, &IN_FLIGHT_STATUSES).await?;
        let tally = tallies.get(&sym);
        let shares: f64 = lots.iter().map(|l| l.shares).sum();
        let last_price = prices
            .get(&sym)
            .copied()
            .or_else(|| tally.and_then(|t| t.last_price));
        let state = if !c.enabled {
            "disabled"
        } else if c.halt_reason.is_some() {
            "halted"
        } else if o.market_open {
            "trading"
        } else {
            "outside the session"
        };
        o.symbols.push(SymbolView {
            state: state.to_string(),
            halt_reason: c.halt_reason.clone(),
            shares,
            position_value: o.live.then(|| shares * last_price.unwrap_or(0.0)),
            last_price,
            lots: lots
                .iter()
                .map(|l| LotView {
                    id: l.id.clone(),
                    opened: l.timestamp.to_rfc3339(),
                    price: l.price,
                    shares: l.shares,
                    sell_at: trig
                        .sells
                        .iter()
                        .find(|s| s.trade_id == l.id)
                        .map(|s| s.at_price),
                })
                .collect(),
            buy_triggers: trig
                .buys
                .iter()
                .map(|b| TriggerView {
                    price: b.at_price,
                    direction: b.below_or_higher.clone(),
                })
                .collect(),
            in_flight: in_flight
                .into_iter()
                .map(|r| InFlightView {
                    client_order_id: r.client_order_id,
                    side: match r.side {
                        vectura_core::Side::Buy => "buy",
                        vectura_core::Side::Sell => "sell",
                    }
                    .to_string(),
                    qty: r.qty,
                    status: r.status,
                })
                .collect(),
            trades: tally.map_or(0, |t| usize::try_from(t.trades).unwrap_or(usize::MAX)),
            symbol: sym,
        });
    }
    Ok(o)
}

/// Brings `kept` up to `curve`, the trader's whole equity curve so far: when `curve` extends what is
/// kept (the usual case: one bar more), only the new points are appended; otherwise (a curve started
/// anew) it is copied whole.
fn follow_curve(kept: &mut Vec<(i64, f64)>, curve: &[(i64, f64)]) {
    let n = kept.len();
    let extends =
        curve.len() >= n && (n == 0 || (curve[0] == kept[0] && curve[n - 1] == kept[n - 1]));
    if extends {
        kept.extend_from_slice(&curve[n..]);
    } else {
        kept.clear();
        kept.extend_from_slice(curve);
    }
}

impl LiveFeed {
    /// A feed over the trader's broker, whose account started with `start_cash` dollars.
    pub fn new(broker: Arc<dyn Broker>, start_cash: f64) -> LiveFeed {
        LiveFeed {
            broker,
            start_cash,
            tx: watch::channel(Arc::new(Published::default())).0,
            equity: Mutex::new(Vec::new()),
            cash: Mutex::new(Vec::new()),
        }
    }

    /// Recomputes the overview at the trader's time `now` and publishes it; `equity` is the equity
    /// curve so far (only its new points are copied) and `bars_left` says how much of a replay
    /// remains.
    pub async fn refresh(
        &self,
        store: &Store,
        now: i64,
        equity: &[(i64, f64)],
        bars_left: Option<usize>,
    ) -> Result<(), ApiError> {
        let mut o = compute(
            store,
            Some(self.broker.as_ref()),
            Some(self.start_cash),
            now,
        )
        .await?;
        o.bars_left = bars_left;
        if let Some(c) = o.cash {
            let mut v = self.cash.lock().unwrap_or_else(|p| p.into_inner());
            if v.last().is_none_or(|&(t, last)| last != c && t <= now) {
                v.push((now, c));
            }
        }
        o.seq = self.tx.borrow().overview.seq + 1;
        let json = Bytes::from(serde_json::to_vec(&o).unwrap_or_default());
        follow_curve(
            &mut self.equity.lock().unwrap_or_else(|p| p.into_inner()),
            equity,
        );
        self.tx
            .send_replace(Arc::new(Published { overview: o, json }));
        Ok(())
    }

    /// The last published overview.
    pub fn latest(&self) -> Arc<Published> {
        self.tx.borrow().clone()
    }

    /// The equity curve so far.
    pub fn equity(&self) -> Vec<(i64, f64)> {
        self.equity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The account's cash where it changed, oldest first (see the field).
    pub fn cash_points(&self) -> Vec<(i64, f64)> {
        self.cash.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The account's starting cash.
    pub fn start_cash(&self) -> f64 {
        self.start_cash
    }

    /// The trader's broker.
    pub fn broker(&self) -> Arc<dyn Broker> {
        self.broker.clone()
    }

    fn subscribe(&self) -> watch::Receiver<Arc<Published>> {
        self.tx.subscribe()
    }
}

/// The overview now: the feed's last one, or one computed from the store alone.
pub async fn current(state: &AppState) -> Result<Arc<Published>, ApiError> {
    if let Some(f) = state.live.get() {
        let p = f.latest();
        if p.overview.seq > 0 {
            return Ok(p);
        }
    }
    let now = crate::now_ms() / 1000;
    let o = compute(&state.store, None, None, now).await?;
    let json = Bytes::from(serde_json::to_vec(&o).unwrap_or_default());
    Ok(Arc::new(Published { overview: o, json }))
}

/// The account and each traded symbol: equity, cash, buying power, returns, lots with their sell
/// targets, buy triggers, orders in flight, each symbol's state and the next session's open.
#[utoipa::path(get, path = "/api/v1/overview", tag = "live",
    responses((status = 200, body = Overview), (status = 401, body = crate::error::ErrorBody)))]
pub async fn api_overview(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let p = current(&state).await?;
    let mut r = p.json.clone().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

/// Each new overview as a server-sent event `overview` (the current one first).
#[utoipa::path(get, path = "/api/v1/overview/events", tag = "live",
    responses((status = 200, description = "text/event-stream of `overview` events, each an Overview"), (status = 401, body = crate::error::ErrorBody)))]
pub async fn api_overview_events(
    State(state): State<Arc<AppState>>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let first = current(&state).await?;
    let to_event = |p: &Published| {
        Event::default()
            .event("overview")
            .data(String::from_utf8_lossy(&p.json))
    };
    let head = futures_util::stream::iter([Ok(to_event(&first))]);
    let tail = follow(
        &state,
        (),
        move |(), p| async move { (Some(to_event(&p)), ()) },
    );
    use futures_util::StreamExt;
    Ok(Sse::new(head.chain(tail)).keep_alive(KeepAlive::default()))
}

/// The feed's publications as server-sent events: after each new overview, `make` is given the
/// connection's own state `s` and the overview, and gives back the event to send (none: nothing
/// new for this client) and the next state. At most five events a second, whatever the replay's
/// speed: the overviews published in between are one event. Without a feed the stream is empty
/// (the connection stays open on keep-alives). The overview's and the performance page's streams
/// are both this one.
pub(crate) fn follow<S, F, Fut>(
    state: &AppState,
    s: S,
    make: F,
) -> impl futures_util::Stream<Item = Result<Event, Infallible>> + Send + 'static
where
    S: Send + 'static,
    F: FnMut(S, Arc<Published>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = (Option<Event>, S)> + Send,
{
    let rx = state.live.get().map(|f| f.subscribe());
    futures_util::stream::unfold((rx, s, make), |(rx, mut s, mut make)| async move {
        let mut rx = rx?;
        loop {
            rx.changed().await.ok()?;
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            // The newest after the pause: what was published during it is in this event.
            let p = rx.borrow_and_update().clone();
            let (event, next) = make(s, p).await;
            s = next;
            if let Some(e) = event {
                return Some((Ok(e), (Some(rx), s, make)));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::follow_curve;

    #[test]
    fn the_kept_curve_follows_appends_and_restarts() {
        let mut kept = Vec::new();
        follow_curve(&mut kept, &[(60, 100.0)]);
        assert_eq!(kept, [(60, 100.0)]);
        let curve = [(60, 100.0), (120, 101.0), (180, 99.5)];
        follow_curve(&mut kept, &curve);
        assert_eq!(kept, curve);
        let cap = kept.capacity();
        follow_curve(&mut kept, &curve);
        assert_eq!(kept, curve, "nothing new: nothing appended");
        assert_eq!(kept.capacity(), cap);
        // A curve that does not extend the kept one (a reset replay) replaces it.
        follow_curve(&mut kept, &[(60, 100.0), (120, 98.0)]);
        assert_eq!(kept, [(60, 100.0), (120, 98.0)]);
        follow_curve(&mut kept, &[(600, 50.0), (660, 51.0), (720, 52.0)]);
        assert_eq!(kept, [(600, 50.0), (660, 51.0), (720, 52.0)]);
        follow_curve(&mut kept, &[]);
        assert!(kept.is_empty());
    }
}
