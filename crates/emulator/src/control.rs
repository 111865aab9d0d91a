//! [`EmulatorHandle`]'s trading controls: the emulator clock (set, advance, step bar by bar), trading
//! and stream faults, stream drops, and what the trading API recorded.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::clock::{Clock, Micros, SECOND};
use crate::trading::{engine, OrderRequestRecord, TradingFaults};
use crate::{drop_streams, EmulatorHandle, Inner};

fn to_dt(t: Micros) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t).unwrap_or_default()
}

/// The symbols whose bars drive [`EmulatorHandle::step`]: replayed or CSV symbols, subscribed
/// symbols, and symbols with open orders.
fn active_symbols(inner: &Inner) -> BTreeSet<String> {
    let mut s: BTreeSet<String> = inner.csv.keys().cloned().collect();
    for c in &inner.trading.md_conns {
        s.extend(c.bars.iter().cloned());
    }
    for a in inner.trading.accounts.values() {
        s.extend(
            a.orders
                .iter()
                .filter(|o| o.is_open())
                .map(|o| o.symbol.clone()),
        );
    }
    s
}

impl EmulatorHandle {
    /// Splits `symbol` in every account holding it, as a broker does overnight before the split's
    /// first session: shares times `ratio` (2 for a 2-for-1), the position's cost kept, so its
    /// average entry price is divided by `ratio`. Open orders are left as they are. Returns the
    /// accounts changed; a ratio that is not positive is refused.
    pub fn split_positions(&self, symbol: &str, ratio: Decimal) -> Result<usize, String> {
        if ratio <= Decimal::ZERO {
            return Err(format!(
                "split ratio {ratio}: give the new shares per old share, a positive number (2 for a 2-for-1)"
            ));
        }
        let sym = symbol.to_ascii_uppercase();
        let mut inner = self.shared.lock();
        let mut n = 0;
        for a in inner.trading.accounts.values_mut() {
            if let Some(p) = a.positions.get_mut(&sym) {
                p.qty *= ratio;
                n += 1;
            }
        }
        Ok(n)
    }

    /// The emulator's time.
    pub fn now(&self) -> DateTime<Utc> {
        to_dt(self.shared.lock().clock.now())
    }

    /// Replaces the clock (manual, system, or a replay speed) and processes what is due.
    pub fn set_clock(&self, clock: Clock) {
        let mut inner = self.shared.lock();
        inner.clock = clock;
        engine::sync(&mut inner);
    }

    /// Stops the clock at `t` (a manual clock from now on) and processes every event up to `t`:
    /// bars closing are published, due orders fill, day orders expire.
    pub fn set_time(&self, t: DateTime<Utc>) {
        self.set_clock(Clock::Manual(t.timestamp_micros()));
    }

    /// Moves a stopped clock forward by `d` (emulator time) and processes what became due.
    pub fn advance(&self, d: Duration) {
        let mut inner = self.shared.lock();
        let now = inner.clock.now();
        inner.clock = Clock::Manual(now + engine::micros(d));
        engine::sync(&mut inner);
    }

    /// Runs the clock at `speed` emulator seconds per real second from its current time.
    pub fn set_speed(&self, speed: f64) {
        let mut inner = self.shared.lock();
        let now = inner.clock.now();
        inner.clock = Clock::Scaled {
            start: now,
            wall: std::time::Instant::now(),
            speed,
        };
    }

    /// Processes what is due at the current time (a fill of an order that just arrived).
    pub fn process(&self) {
        engine::sync(&mut self.shared.lock());
    }

    /// Moves a stopped clock to the next bar close of any active symbol (replayed symbols, subscribed
    /// symbols, symbols with open orders), publishing that bar and filling what is due on the way.
    /// Returns the new time, or `None` when no bar follows (the clock then stays).
    pub fn step(&self) -> Option<DateTime<Utc>> {
        let mut inner = self.shared.lock();
        let now = inner.clock.now();
        let secs = now.div_euclid(SECOND);
        let symbols = active_symbols(&inner);
        let (src, _) = engine::parts(&mut inner);
        let next = symbols
            .iter()
            .filter_map(|s| src.at_or_after(s, secs - 59, false))
            .map(|b| (b.t + 60) * SECOND)
            .filter(|t| *t > now)
            .min()?;
        inner.clock = Clock::Manual(next);
        engine::process(&mut inner, next);
        Some(to_dt(next))
    }

    /// [`EmulatorHandle::step`] `n` times; the time reached.
    pub fn step_bars(&self, n: usize) -> Option<DateTime<Utc>> {
        let mut last = None;
        for _ in 0..n {
            last = Some(self.step()?);
        }
        last
    }

    /// The trading and stream faults in force (with the uses left).
    pub fn trading_faults(&self) -> TradingFaults {
        self.shared.lock().trading.faults.clone()
    }

    /// Replaces the trading and stream faults.
    pub fn set_trading_faults(&self, faults: TradingFaults) {
        self.shared.lock().trading.faults = faults;
    }

    /// Changes the trading and stream faults in place.
    pub fn update_trading_faults(&self, f: impl FnOnce(&mut TradingFaults)) {
        f(&mut self.shared.lock().trading.faults);
    }

    /// Removes every trading and stream fault.
    pub fn clear_trading_faults(&self) {
        self.set_trading_faults(TradingFaults::default());
    }

    /// Every order request so far (what `--orders-log` writes).
    pub fn order_requests(&self) -> Vec<OrderRequestRecord> {
        self.shared.lock().trading.requests.clone()
    }

    /// Orders of `key` created so far (cancelled and filled included).
    pub fn order_count(&self, key: &str) -> usize {
        self.shared
            .lock()
            .trading
            .accounts
            .get(key)
            .map_or(0, |a| a.orders.len())
    }

    /// Cash of `key`'s account, when it exists.
    pub fn cash(&self, key: &str) -> Option<Decimal> {
        self.shared.lock().trading.accounts.get(key).map(|a| a.cash)
    }

    /// Adds (or with a negative amount withdraws) cash to `key`'s account, opening it if needed.
    pub fn deposit(&self, key: &str, amount: Decimal) {
        let mut inner = self.shared.lock();
        let now = inner.clock.now();
        inner.trading.account(key, now).cash += amount;
    }

    /// Closes every `trade_updates` connection (no close frame, as a network failure); how many.
    pub fn drop_trade_streams(&self) -> usize {
        drop_streams(&mut self.shared.lock(), true, false)
    }

    /// Closes every market-data stream connection; how many. With
    /// [`TradingFaults::stale_after_drop`] the dropped connections still count for a while.
    pub fn drop_data_streams(&self) -> usize {
        drop_streams(&mut self.shared.lock(), false, true)
    }

    /// Listening `trade_updates` connections of `key`.
    pub fn trade_stream_count(&self, key: &str) -> usize {
        self.shared
            .lock()
            .trading
            .accounts
            .get(key)
            .map_or(0, |a| a.conns.len())
    }

    /// Authenticated market-data connections of `key`.
    pub fn data_stream_count(&self, key: &str) -> usize {
        self.shared
            .lock()
            .trading
            .md_conns
            .iter()
            .filter(|c| c.key == key)
            .count()
    }

    /// Symbols `key`'s market-data connections are subscribed to (bars).
    pub fn data_subscriptions(&self, key: &str) -> BTreeSet<String> {
        self.shared
            .lock()
            .trading
            .md_conns
            .iter()
            .filter(|c| c.key == key)
            .flat_map(|c| c.bars.iter().cloned())
            .collect()
    }
}
