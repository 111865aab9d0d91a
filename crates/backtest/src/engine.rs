//! The replay loop: each bar exactly once, the strategy decides, the fill model fills, the portfolio
//! and the metrics follow (original §2.4, fixed as DESIGN.md §2 and §4 say).

use crate::config::{BacktestConfig, ConfigError, FillModel, PdtMode};
use crate::fill;
use crate::metrics::{RunTotals, Span, Tracker, TradeStats};
use crate::pdt::{FinraPdt, Pdt, V1Pdt, PDT_END_TS};
use crate::result::{BacktestResult, Deposit, Line, OpenLot, Timing, Trade};
use crate::series::Recorder;
use vectura_core::time::{midnight_utc, utc_day, DAY};
use vectura_core::{floor_dp, BarSeries, Fill, IntentId, OrderEnd, OrderIntent, OrderKind, Side};
use vectura_strategy::{Account, Eval, SellGate, Strategy, Tick};

/// An open lot in the simulated account.
#[derive(Debug, Clone, Copy)]
struct PLot {
    id: IntentId,
    shares: f64,
    price: f64,
    commission_per_share: f64,
    opened: i64,
    trade: usize,
}

/// The PDT rule seen through the strategy's gate, with the tick-start equity.
struct Gate<'a> {
    pdt: &'a Pdt,
    equity: f64,
}

impl SellGate for Gate<'_> {
    #[inline]
    fn allow_sell(&self, lot_opened: i64, now: i64) -> bool {
        self.pdt.allow_sell(lot_opened, now, self.equity)
    }
}

/// The simulated account and everything recorded about it.
struct Book {
    cash: f64,
    lots: Vec<PLot>,
    /// The lots' shares in lot order, and their total, for marking to market.
    shares: Vec<f64>,
    total: f64,
    /// Sum lot values in lot order (vectura-v1's arithmetic) rather than total shares × price.
    exact: bool,
    trades: Vec<Trade>,
    stats: TradeStats,
    pdt: Pdt,
}

impl Book {
    /// Equity at `price`: the lots' values summed from 0.0 in lot order, then cash (the original's order).
    #[inline(always)]
    fn mark(&self, price: f64) -> f64 {
        if self.exact {
            let mut s = 0.0;
            for &sh in &self.shares {
                s += price * sh;
            }
            self.cash + s
        } else {
            self.cash + self.total * price
        }
    }

    /// Re-derives the share columns after a trade (a fresh sum, so no rounding drift accumulates).
    fn sync(&mut self) {
        self.shares.clear();
        self.shares.extend(self.lots.iter().map(|l| l.shares));
        self.total = self.shares.iter().sum();
    }
}

/// Where a run may stop early (a cancel) and report how far it got: asked once per UTC day of
/// bars, at the first bar of the day the replay loop reaches, never inside the per-bar work (a
/// quiet stretch the kernel skips through is not interrupted: it is fast).
pub trait Checkpoint {
    /// At bar `i` of `n`, the first of a new day: `false` stops the run.
    fn day(&mut self, i: usize, n: usize) -> bool;
}

/// The checkpoint of a run that is never stopped.
#[derive(Debug, Clone, Copy, Default)]
pub struct Uninterrupted;

impl Checkpoint for Uninterrupted {
    #[inline(always)]
    fn day(&mut self, _: usize, _: usize) -> bool {
        true
    }
}

/// Runs `strategy` over `bars` (already cut to the run's dates and session).
pub fn run<S: Strategy>(
    bars: &BarSeries,
    strategy: &mut S,
    cfg: &BacktestConfig,
) -> Result<BacktestResult, ConfigError> {
    match run_until(bars, strategy, cfg, &mut Uninterrupted)? {
        Some(r) => Ok(r),
        None => unreachable!("an uninterrupted run is never stopped"),
    }
}

/// [`run`], asking `checkpoint` once per day whether to go on; `None` when it said stop (nothing
/// of the run is kept: the strategy is left as it stood).
pub fn run_until<S: Strategy, C: Checkpoint>(
    bars: &BarSeries,
    strategy: &mut S,
    cfg: &BacktestConfig,
    checkpoint: &mut C,
) -> Result<Option<BacktestResult>, ConfigError> {
    cfg.validate()?;
    let n = bars.len();
    let eval = if cfg.fill == FillModel::Touch {
        Eval::Touch
    } else {
        Eval::Close
    };
    let pdt = match (cfg.compat_v1, cfg.pdt) {
        (_, PdtMode::Off) => Pdt::Off,
        (true, _) => Pdt::V1(V1Pdt::default()),
        (false, PdtMode::Auto) => Pdt::Finra {
            rule: FinraPdt::default(),
            until: PDT_END_TS,
        },
        (false, PdtMode::On) => Pdt::Finra {
            rule: FinraPdt::default(),
            until: i64::MAX,
        },
    };
    let start_midnight = midnight_utc(cfg.start_date);
    let mut book = Book {
        cash: cfg.start_capital,
        lots: Vec::new(),
        shares: Vec::new(),
        total: 0.0,
        exact: cfg.compat_v1,
        trades: Vec::new(),
        stats: TradeStats::default(),
        pdt,
    };
    let mut tracker = Tracker::new(cfg.start_capital, utc_day(start_midnight), cfg.compat_v1);
    let mut recorder = match (cfg.record_series, n) {
        (true, n) if n > 0 => Some(Recorder::new(bars.ts[0], bars.ts[n - 1], cfg.max_points)),
        _ => None,
    };
    // Contributions: the first falls `every_days` after the start date's 00:00 UTC (§2.6).
    let (contrib_on, step, amount) = match cfg.contributions {
        Some(c) if c.every_days > 0 && c.amount > 0.0 => {
            (true, c.every_days as i64 * DAY, c.amount)
        }
        _ => (false, i64::MAX, 0.0),
    };
    let mut next_contrib = if contrib_on {
        start_midnight + step
    } else {
        i64::MAX
    };
    let mut deposits: Vec<Deposit> = Vec::new();
    let mut invested_sum = 0.0;
    let bh_floor = cfg.benchmark_cash_floor;
    let mut bh_shares = 0.0;
    let mut bh_cash = cfg.start_capital;
    let mut last_close = 0.0;
    let mut equity0 = cfg.start_capital;
    let mut max_state = cfg.start_capital;
    let mut eq_post = cfg.start_capital;
    let mut pending: Vec<OrderIntent> = Vec::new();
    let mut reserved = 0.0;
    let mut band: Option<(f64, f64)> = None;
    let mut dirty = true;
    let slip = cfg.slippage_bps / 1e4;
    // The next day's midnight (UTC seconds): the checkpoint's turn comes at the first bar past it.
    let mut next_day = i64::MIN;

    let mut i = 0usize;
    while i < n {
        // The common bar: nothing can fire, nothing is due. A tight loop records such bars in bulk.
        if i > 0 && pending.is_empty() && cfg.kernel {
            if dirty {
                band = strategy.quiet_band(&Account {
                    cash: book.cash,
                    equity: eq_post,
                });
                dirty = false;
            }
            if let Some((lo, hi)) = band {
                let sp = Span {
                    cash: book.cash,
                    lots: &book.shares,
                    total: book.total,
                    lo,
                    hi,
                    bound: next_contrib,
                };
                let (ts_, c_, l_, h_) =
                    (&bars.ts[..], &bars.close[..], &bars.low[..], &bars.high[..]);
                // The charts' drawdown runs from the peak as it stood before the run.
                let peak0 = tracker.peak;
                let (j, mx) = match (book.exact, eval) {
                    (true, Eval::Close) => {
                        tracker.quiet_span::<true, false>(ts_, c_, l_, h_, i, &sp)
                    }
                    (true, Eval::Touch) => {
                        tracker.quiet_span::<true, true>(ts_, c_, l_, h_, i, &sp)
                    }
                    (false, Eval::Close) => {
                        tracker.quiet_span::<false, false>(ts_, c_, l_, h_, i, &sp)
                    }
                    (false, Eval::Touch) => {
                        tracker.quiet_span::<false, true>(ts_, c_, l_, h_, i, &sp)
                    }
                };
                if j > i {
                    if mx > max_state {
                        max_state = mx;
                    }
                    if let Some(r) = recorder.as_mut() {
                        let b = &book;
                        r.push_quiet(&bars.ts[i..j], &bars.close[i..j], b.cash, peak0, |p| {
                            b.mark(p)
                        });
                    }
                    equity0 = tracker.last_equity();
                    eq_post = equity0;
                    last_close = bars.close[j - 1];
                    i = j;
                    if i >= n {
                        break;
                    }
                }
            }
        }
        let ts = bars.ts[i];
        // Once per day, outside the per-bar work: may the run go on?
        if ts >= next_day {
            if !checkpoint.day(i, n) {
                return Ok(None);
            }
            next_day = (utc_day(ts) + 1) * DAY;
        }
        let close = bars.close[i];
        let trades_before = book.trades.len();
        // 1. Deposits due, caught up in a loop, before the tick; buy-and-hold buys alongside at the close.
        if ts >= next_contrib {
            while ts >= next_contrib {
                book.cash += amount;
                invested_sum += amount;
                deposits.push(Deposit { ts, amount });
                tracker.flow(ts, amount);
                bh_cash += amount;
                let avail = (bh_cash - bh_floor).max(0.0);
                let sh = floor_dp(avail / close, 1e4);
                let cost = floor_dp(sh * close, 1e4);
                if sh > 0.0 && cost > 0.0 && cost.is_finite() {
                    bh_shares += sh;
                    bh_cash -= cost;
                }
                next_contrib = next_contrib.saturating_add(step);
            }
            dirty = true;
        }
        // 2. Orders sent at the previous close fill at this bar's open.
        if !pending.is_empty() {
            let open = bars.open[i];
            for intent in std::mem::take(&mut pending) {
                execute(&mut book, strategy, cfg, &intent, open, ts, slip);
            }
            reserved = 0.0;
            dirty = true;
        }
        // 3. Buy-and-hold starts at the first bar's close.
        if i == 0 {
            let avail = (cfg.start_capital - bh_floor).max(0.0);
            let sh = floor_dp(avail / close, 1e4);
            let cost = floor_dp(sh * close, 1e4);
            // (A count beyond f64, from a price near 0, buys nothing rather than an infinite position.)
            if sh > 0.0 && cost > 0.0 && cost.is_finite() {
                if cfg.compat_v1 {
                    // The original assigns here, dropping a purchase made by a deposit on the first bar.
                    bh_shares = sh;
                    bh_cash = cfg.start_capital - cost;
                } else {
                    bh_shares += sh;
                    bh_cash -= cost;
                }
            }
        }
        // 4. Mark to market at the close (the tick-start equity that risk rules read).
        equity0 = book.mark(close);
        if equity0 > max_state {
            max_state = equity0;
        }
        if dirty {
            band = strategy.quiet_band(&Account {
                cash: book.cash - reserved,
                equity: equity0,
            });
            dirty = false;
        }
        let (lo, hi) = (bars.low[i], bars.high[i]);
        let quiet = match band {
            Some((b_lo, b_hi)) => match eval {
                Eval::Close => close > b_lo && close < b_hi,
                Eval::Touch => lo.min(hi) > b_lo && hi.max(lo) < b_hi,
            },
            None => false,
        };
        let mut traded = false;
        if !quiet {
            let tick = Tick {
                ts,
                open: bars.open[i],
                high: hi,
                low: lo,
                close,
                eval,
            };
            let acct = Account {
                cash: book.cash - reserved,
                equity: equity0,
            };
            strategy.on_bar(
                &tick,
                &acct,
                &Gate {
                    pdt: &book.pdt,
                    equity: equity0,
                },
            );
            loop {
                let acct = Account {
                    cash: book.cash - reserved,
                    equity: equity0,
                };
                let Some(intent) = strategy.next_intent(
                    &acct,
                    &Gate {
                        pdt: &book.pdt,
                        equity: equity0,
                    },
                ) else {
                    break;
                };
                match cfg.fill {
                    FillModel::NextOpen => {
                        if intent.side == Side::Buy {
                            reserved += intent.qty * intent.ref_price;
                        }
                        pending.push(intent);
                    }
                    FillModel::Close => {
                        traded |= execute(&mut book, strategy, cfg, &intent, close, ts, slip);
                    }
                    FillModel::Touch => {
                        let px = match intent.kind {
                            OrderKind::Touch { .. } => intent.ref_price,
                            OrderKind::Market => close,
                        };
                        traded |= execute(&mut book, strategy, cfg, &intent, px, ts, slip);
                    }
                }
            }
            dirty = true;
        }
        // 5. Post-trade equity to the metrics and the charts.
        eq_post = if traded { book.mark(close) } else { equity0 };
        tracker.push(ts, eq_post, book.cash);
        if let Some(r) = recorder.as_mut() {
            r.push(
                ts,
                close,
                eq_post,
                book.cash,
                tracker.peak,
                book.trades.len() != trades_before,
            );
        }
        last_close = close;
        i += 1;
    }
    // Orders still waiting for a next bar never fill.
    for intent in pending.drain(..) {
        strategy.on_order_end(intent.id, &OrderEnd::Expired);
    }

    let start = cfg.start_capital;
    let final_equity = if n > 0 && equity0 != 0.0 {
        equity0
    } else {
        start
    };
    let invested = start + invested_sum;
    let bh_final = bh_shares * last_close + bh_cash;
    let totals = RunTotals {
        start_capital: start,
        final_equity,
        invested,
        trades: book.trades.len() as u64,
        inclusive_days: (cfg.end_date - cfg.start_date).num_days() + 1,
        end_midnight: midnight_utc(cfg.end_date),
        // The index starts with the first money: the first bar, or the first deposit without capital.
        span_days: match (n, start > 0.0, deposits.first()) {
            (0, ..) => 0.0,
            (_, true, _) => (bars.ts[n - 1] - bars.ts[0]) as f64 / DAY as f64,
            (_, false, Some(d)) => (bars.ts[n - 1] - d.ts) as f64 / DAY as f64,
            (_, false, None) => 0.0,
        },
        buy_hold_final: bh_final,
    };
    let metrics = tracker.finish(&totals, &book.stats);
    let open_lots = book
        .lots
        .iter()
        .map(|l| OpenLot {
            trade: l.trade,
            ts: l.opened,
            price: l.price,
            shares: l.shares,
        })
        .collect();
    let triggers = if cfg.record_series {
        strategy.trigger_lines().iter().map(Line::from).collect()
    } else {
        vec![]
    };
    Ok(Some(BacktestResult {
        symbol: cfg.symbol.clone(),
        strategy: strategy.name(),
        fill: cfg.fill,
        compat: cfg.compat_v1.then_some("vectura-v1"),
        start_date: cfg.start_date,
        end_date: cfg.end_date,
        start_capital: start,
        final_equity,
        final_cash: book.cash,
        invested_cash: invested,
        final_equity_post_trade: eq_post,
        max_equity_state: max_state,
        bars_processed: n as u64,
        metrics,
        trades: book.trades,
        contributions: deposits,
        open_lots,
        triggers,
        series: recorder.map(|r| r.finish().into()),
        state: if cfg.record_series {
            strategy.state()
        } else {
            serde_json::Value::Null
        },
        timing: Timing {
            bars_processed: n as u64,
            ..Timing::default()
        },
    }))
}

/// Fills one intent at `price` (before slippage) at `ts`, books it and tells the strategy. Returns
/// whether anything was traded.
fn execute<S: Strategy>(
    book: &mut Book,
    strategy: &mut S,
    cfg: &BacktestConfig,
    intent: &OrderIntent,
    price: f64,
    ts: i64,
    slip: f64,
) -> bool {
    match intent.side {
        Side::Buy => {
            let px = fill::slipped(Side::Buy, price, slip);
            // The original's cost is shares × P, unrounded; only our modes guard against overspending
            // (a next-open gap up, slippage or commission), shrinking the order to what cash buys.
            let (qty, commission) = fill::buy(
                book.cash,
                px,
                intent.qty,
                intent.all_in,
                &cfg.commission,
                cfg.share_scale,
                !cfg.compat_v1,
            );
            // Bars with a price so small that cash buys more shares than an f64 counts (1e-300 and
            // 1e12 dollars) would book an infinite position: refuse the order instead.
            if !(qty * px + commission).is_finite() {
                strategy.on_order_end(
                    intent.id,
                    &OrderEnd::Rejected("order size out of range".into()),
                );
                return false;
            }
            // vectura-v1 books zero-share buys (the original's quirk); ours rejects them.
            let zero_ok = cfg.compat_v1 && qty == 0.0;
            if !(qty > 0.0 || zero_ok) {
                strategy.on_order_end(intent.id, &OrderEnd::Rejected("insufficient cash".into()));
                return false;
            }
            book.cash = book.cash - qty * px - commission;
            let t = book.trades.len();
            book.trades.push(Trade {
                ts,
                side: Side::Buy,
                shares: qty,
                price: px,
                commission,
                closes_trade: None,
                pnl: None,
            });
            book.lots.push(PLot {
                id: intent.id,
                shares: qty,
                price: px,
                commission_per_share: if qty > 0.0 { commission / qty } else { 0.0 },
                opened: ts,
                trade: t,
            });
            book.sync();
            book.pdt.record(ts, false, false);
            strategy.on_fill(&Fill {
                intent: intent.id,
                side: Side::Buy,
                qty,
                price: px,
                commission,
                ts,
                done: true,
            });
            true
        }
        Side::Sell => {
            let px = fill::slipped(Side::Sell, price, slip);
            // The lots this sell closes: the named one, or first-in first-out.
            let held: f64 = match intent.closes {
                Some(id) => book
                    .lots
                    .iter()
                    .filter(|l| l.id == id)
                    .map(|l| l.shares)
                    .sum(),
                None => book.lots.iter().map(|l| l.shares).sum(),
            };
            let qty = intent.qty.min(held);
            let lot_exists = match intent.closes {
                Some(id) => book.lots.iter().any(|l| l.id == id),
                None => !book.lots.is_empty(),
            };
            // vectura-v1 sells the zero-share lot a zero-share buy opened; otherwise a sell needs shares.
            let zero_ok = cfg.compat_v1 && lot_exists && intent.qty == 0.0;
            if !(qty > 0.0 || zero_ok) {
                strategy.on_order_end(intent.id, &OrderEnd::Rejected("no shares to sell".into()));
                return false;
            }
            let commission = cfg.commission.of(qty, px);
            let mut left = qty;
            let mut pnl = -commission;
            let mut closes_trade = None;
            let mut day_trade_utc = false;
            let mut day_trade_ny = false;
            let mut k = 0;
            while k < book.lots.len() && (left > 0.0 || (qty == 0.0 && closes_trade.is_none())) {
                let l = book.lots[k];
                if intent.closes.is_some_and(|id| id != l.id) {
                    k += 1;
                    continue;
                }
                let take = left.min(l.shares);
                pnl += take * (px - l.price) - take * l.commission_per_share;
                book.stats.holding_secs +=
                    (ts - l.opened) as f64 * if qty > 0.0 { take / qty } else { 1.0 };
                closes_trade.get_or_insert(l.trade);
                if utc_day(l.opened) == utc_day(ts) {
                    day_trade_utc = true;
                }
                if !matches!(book.pdt, Pdt::Off | Pdt::V1(_))
                    && vectura_core::calendar::ny_date(l.opened)
                        == vectura_core::calendar::ny_date(ts)
                {
                    day_trade_ny = true;
                }
                left -= take;
                if take >= l.shares {
                    book.lots.remove(k);
                } else {
                    book.lots[k].shares -= take;
                    k += 1;
                }
            }
            book.cash = book.cash + px * qty - commission;
            book.stats.closed += 1;
            if pnl > 0.0 {
                book.stats.wins += 1;
                book.stats.gross_profit += pnl;
            } else {
                book.stats.gross_loss -= pnl;
            }
            book.trades.push(Trade {
                ts,
                side: Side::Sell,
                shares: qty,
                price: px,
                commission,
                closes_trade,
                pnl: Some(pnl),
            });
            book.sync();
            book.pdt.record(ts, day_trade_utc, day_trade_ny);
            strategy.on_fill(&Fill {
                intent: intent.id,
                side: Side::Sell,
                qty,
                price: px,
                commission,
                ts,
                done: true,
            });
            true
        }
    }
}
