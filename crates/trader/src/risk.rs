//! The per-day risk limits (issue 17 §5): orders per symbol per New York trading day, and the day's
//! loss. Both are computed from durable state (the store's `at_orders` rows and the run's snapshot),
//! so a restart in the middle of a day counts what was done before it.

use vectura_core::calendar;
use vectura_core::Side;
use vectura_store::OrderRow;
use vectura_strategy::grid::Grid;

/// How many of `rows` count against `max_orders_per_day` on the New York date of `now`: every order
/// row created that day, except intents dropped without ever reaching the broker.
pub fn orders_on_day(rows: &[OrderRow], now: i64) -> u32 {
    let day = calendar::ny_date(now);
    rows.iter()
        .filter(|r| r.status != "dropped")
        .filter(|r| calendar::ny_date(r.created_at.timestamp()) == day)
        .count()
        .try_into()
        .unwrap_or(u32::MAX)
}

/// The symbol's profit and loss of the New York day of `now`, dollars: the cash the day's trades moved
/// (sells in, buys out) plus the position's value at `price`, minus the value the position had at
/// the start of the day at `start_price` (realized + unrealized against the day's start equity).
pub fn day_pnl(grid: &Grid, now: i64, start_price: f64, price: f64) -> f64 {
    let day = calendar::ny_date(now);
    let shares_now: f64 = grid.lots().iter().map(|l| l.shares).sum();
    let mut cash = 0.0;
    let mut bought = 0.0;
    let mut sold = 0.0;
    for t in grid
        .history()
        .iter()
        .filter(|t| calendar::ny_date(t.ts) == day)
    {
        match t.side {
            Side::Buy => {
                cash -= t.shares * t.price;
                bought += t.shares;
            }
            Side::Sell => {
                cash += t.shares * t.price;
                sold += t.shares;
            }
        }
    }
    let shares_start = shares_now - bought + sold;
    cash + shares_now * price - shares_start * start_price
}

/// The halt reason when `pnl` breaks `max_daily_loss`, if it does.
pub fn loss_halt(symbol: &str, pnl: f64, max: f64) -> Option<String> {
    (pnl < -max).then(|| {
        format!(
            "risk limit: today's P&L of {symbol} is {pnl:.2}, below -max_daily_loss ({max}): no order goes out today; check the position, raise the limit in at_trade_controls if intended, then `vectura trade resume --symbol {symbol}`"
        )
    })
}
