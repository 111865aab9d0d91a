//! The live pages' reads (`Store::trade_lines`, `trade_count`, `round_trip_stats`, `recent_orders`,
//! `orders_in_status`, `trade_tallies`, the streaming scans), on both backends, against the
//! dashboard's former way of computing the same from every symbol's whole history in Rust: the same
//! rows, in the same order, with the same numbers.

use std::collections::HashMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use vectura_core::Side;
use vectura_store::{
    OrderRow, RiskLimits, RoundTripStats, Store, TradeFilter, TradeLine, TradeRecord, TradeTally,
    TradeVersion, IN_FLIGHT_STATUSES,
};

use crate::store::{backend_tests, Env, Kind};

backend_tests!(
    trade_pages_counts_and_stats_match_the_full_history,
    recent_and_in_flight_orders_match_the_full_history,
    the_live_page_indexes_exist,
    the_trade_version_moves_with_each_trade_of_its_filter,
    a_deep_trades_page_walks_a_byte_order_index,
);

/// A small deterministic generator (the fixture is the same on every run and backend).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 4, 14, 30, 0).unwrap()
}

/// Symbols AAA and BBB have trading controls; CCC has trades and orders but none (the pages leave
/// it out). Prices are quarters and shares halves, so every sum is exact in any order.
async fn fixture(s: &Store) {
    for sym in ["BBB", "AAA"] {
        s.set_trade_controls(sym, true, &RiskLimits::default())
            .await
            .unwrap();
    }
    let mut g = Lcg(18);
    let mut open: HashMap<&str, Vec<String>> = HashMap::new();
    for i in 0..240u64 {
        let sym = ["AAA", "BBB", "CCC"][g.next(3) as usize];
        // Several trades share an instant (ties broken by id), some have fractional seconds.
        let at = t0()
            + Duration::seconds(60 * (i / 3) as i64)
            + Duration::microseconds(if g.next(4) == 0 { 250_500 } else { 0 });
        // Ids in mixed case and punctuation: their byte order is not every collation's order.
        let id = format!("{}{sym}-{i:03}", ["a", "B", "b_", "Z"][g.next(4) as usize]);
        let price = 100.0 + (g.next(81) as f64 - 40.0) * 0.25;
        let shares = 0.5 * (1 + g.next(20)) as f64;
        let lots = open.entry(sym).or_default();
        let (side, close) = if !lots.is_empty() && g.next(2) == 0 {
            (
                Side::Sell,
                Some(lots.remove(g.next(lots.len() as u64) as usize)),
            )
        } else {
            lots.push(id.clone());
            (Side::Buy, None)
        };
        s.insert_trade(
            sym,
            &TradeRecord {
                id,
                timestamp: at,
                side,
                shares,
                price,
                close_trade_id: close,
            },
        )
        .await
        .unwrap();
    }
    // Sells that close nothing the pages can match: a buy of another symbol, an id that does not
    // exist, a sell; and one round trip that ends at exactly zero (a loss, as a backtest counts it).
    let odd = [
        ("AAA", "odd-1", Some(first_buy(s, "BBB").await)),
        ("AAA", "odd-2", Some("no-such-trade".to_string())),
        ("BBB", "odd-3", Some(first_sell(s, "BBB").await)),
    ];
    for (k, (sym, id, close)) in odd.into_iter().enumerate() {
        s.insert_trade(
            sym,
            &TradeRecord {
                id: id.into(),
                timestamp: t0() + Duration::seconds(7 + k as i64),
                side: Side::Sell,
                shares: 3.0,
                price: 99.0,
                close_trade_id: close,
            },
        )
        .await
        .unwrap();
    }
    let zero_buy = first_buy(s, "AAA").await;
    let b = s
        .trades("AAA")
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.id == zero_buy)
        .unwrap();
    s.insert_trade(
        "AAA",
        &TradeRecord {
            id: "zero".into(),
            timestamp: b.timestamp + Duration::hours(3),
            side: Side::Sell,
            shares: b.shares,
            price: b.price,
            close_trade_id: Some(zero_buy),
        },
    )
    .await
    .unwrap();
}

async fn first_buy(s: &Store, sym: &str) -> String {
    let t = s.trades(sym).await.unwrap();
    t.iter().find(|t| t.side == Side::Buy).unwrap().id.clone()
}

async fn first_sell(s: &Store, sym: &str) -> String {
    let t = s.trades(sym).await.unwrap();
    t.iter().find(|t| t.side == Side::Sell).unwrap().id.clone()
}

/// What the dashboard computed before the store did it: every trade of every symbol with controls
/// read, each sell matched in a map of the symbol's buys, the rows sorted newest first (by the
/// RFC 3339 text, then id, descending), the statistics summed in history order. Also the round
/// trips in that order.
async fn reference(s: &Store, f: &TradeFilter) -> (Vec<TradeLine>, RoundTripStats, Vec<TradeLine>) {
    let mut rows = Vec::new();
    let mut trips = Vec::new();
    let mut st = RoundTripStats::default();
    for c in s.trade_controls().await.unwrap() {
        if f.symbol.as_ref().is_some_and(|w| *w != c.symbol) {
            continue;
        }
        let trades = s.trades(&c.symbol).await.unwrap();
        let buys: HashMap<&str, &TradeRecord> = trades
            .iter()
            .filter(|t| t.side == Side::Buy)
            .map(|t| (t.id.as_str(), t))
            .collect();
        for t in &trades {
            let opened = t.close_trade_id.as_deref().and_then(|id| buys.get(id));
            let line = TradeLine {
                id: t.id.clone(),
                symbol: c.symbol.clone(),
                timestamp: t.timestamp,
                side: t.side,
                shares: t.shares,
                price: t.price,
                open_timestamp: opened.map(|b| b.timestamp),
                open_price: opened.map(|b| b.price),
            };
            if let Some(p) = opened.map(|b| (t.price - b.price) * t.shares) {
                st.count += 1;
                st.realised += p;
                if p > 0.0 {
                    st.wins += 1;
                    st.gross_win += p;
                } else {
                    st.gross_loss -= p;
                }
                trips.push(line.clone());
            }
            if f.side.is_some_and(|s| s != t.side) {
                continue;
            }
            rows.push(line);
        }
    }
    rows.sort_by(|a, b| {
        b.timestamp
            .to_rfc3339()
            .cmp(&a.timestamp.to_rfc3339())
            .then(b.id.cmp(&a.id))
    });
    (rows, st, trips)
}

fn filters() -> Vec<TradeFilter> {
    let mut out = Vec::new();
    for symbol in [None, Some("AAA"), Some("BBB"), Some("CCC"), Some("ZZZ")] {
        for side in [None, Some(Side::Buy), Some(Side::Sell)] {
            out.push(TradeFilter {
                symbol: symbol.map(str::to_string),
                side,
            });
        }
    }
    out
}

async fn trade_pages_counts_and_stats_match_the_full_history(env: &Env) {
    let s = &env.store;
    // Nothing stored: empty pages, zero counts and statistics, every symbol's tally empty.
    let none = TradeFilter::default();
    assert_eq!(s.trade_count(&none).await.unwrap(), 0);
    assert!(s.trade_lines(&none, 50, 0).await.unwrap().is_empty());
    assert_eq!(
        s.round_trip_stats(None).await.unwrap(),
        RoundTripStats::default()
    );
    fixture(s).await;
    let all = reference(s, &none).await;
    assert!(all.0.len() > 150, "{}", all.0.len());
    assert!(all.1.count > 40 && all.1.wins > 10 && all.1.gross_loss > 0.0);
    assert!(
        all.0.iter().any(|t| t.symbol == "AAA") && all.0.iter().all(|t| t.symbol != "CCC"),
        "CCC has no controls"
    );
    let ties = all
        .0
        .windows(2)
        .filter(|w| w[0].timestamp == w[1].timestamp)
        .count();
    assert!(ties > 10, "the fixture has ties to break: {ties}");
    for f in filters() {
        let (rows, stats, trips) = reference(s, &f).await;
        assert_eq!(s.trade_count(&f).await.unwrap(), rows.len() as u64, "{f:?}");
        // Every page of every size, and past the end.
        for per in [1u64, 7, 50, 500] {
            let mut paged = Vec::new();
            for page in 0.. {
                let got = s.trade_lines(&f, per, page * per).await.unwrap();
                assert!(got.len() as u64 <= per);
                if got.is_empty() {
                    break;
                }
                paged.extend(got);
            }
            assert_eq!(paged, rows, "{f:?}, {per} a page");
        }
        let mut streamed = Vec::new();
        let n = s
            .for_each_trade_line(&f, |t| streamed.push(t))
            .await
            .unwrap();
        assert_eq!(streamed, rows, "{f:?}: streamed");
        assert_eq!(n, rows.len() as u64);
        if f.side.is_none() {
            assert_eq!(
                s.round_trip_stats(f.symbol.as_deref()).await.unwrap(),
                stats,
                "{f:?}"
            );
            let mut got = Vec::new();
            s.for_each_round_trip(f.symbol.as_deref(), |t| got.push(t))
                .await
                .unwrap();
            assert_eq!(got, trips, "{f:?}: the round trips in history order");
            assert!(got.iter().all(|t| t.pnl().is_some()));
        }
    }
    // The odd sells show no P&L; the zero one shows 0 and counts as a loss.
    let by_id: HashMap<String, TradeLine> = all.0.into_iter().map(|t| (t.id.clone(), t)).collect();
    for id in ["odd-1", "odd-2", "odd-3"] {
        assert_eq!(by_id[id].pnl(), None, "{id}");
    }
    assert_eq!(by_id["zero"].pnl(), Some(0.0));

    // Each symbol's count and last trade (by time, then id), as the overview showed them.
    let mut want = Vec::new();
    for c in s.trade_controls().await.unwrap() {
        let t = s.trades(&c.symbol).await.unwrap();
        want.push(TradeTally {
            symbol: c.symbol,
            trades: t.len() as u64,
            last_price: t.last().map(|t| t.price),
        });
    }
    s.set_trade_controls("DDD", false, &RiskLimits::default())
        .await
        .unwrap();
    want.push(TradeTally {
        symbol: "DDD".into(),
        trades: 0,
        last_price: None,
    });
    assert_eq!(s.trade_tallies().await.unwrap(), want);
}

async fn recent_and_in_flight_orders_match_the_full_history(env: &Env) {
    let s = &env.store;
    fixture(s).await;
    let statuses = [
        "intent",
        "submitted",
        "filled",
        "partially_filled",
        "canceled",
        "rejected",
        "new",
        "accepted",
    ];
    let mut g = Lcg(7);
    for i in 0..90u64 {
        let sym = ["AAA", "BBB", "CCC"][g.next(3) as usize];
        s.insert_order_intent(&OrderRow {
            client_order_id: format!("{}-{sym}-{i:02}", ["vt", "VT", "a"][g.next(3) as usize]),
            symbol: sym.into(),
            side: if g.next(2) == 0 {
                Side::Buy
            } else {
                Side::Sell
            },
            qty: (1 + g.next(9)) as f64,
            status: statuses[g.next(statuses.len() as u64) as usize].into(),
            // Many at the same instant, across symbols (ties by symbol, then id).
            created_at: t0() + Duration::seconds(30 * (i / 4) as i64),
            broker_order_id: None,
            filled_qty: 0.0,
            filled_avg_price: None,
            intent: Some(serde_json::json!({"i": i})),
            error: (i % 5 == 0).then(|| format!("rejected {i}")),
        })
        .await
        .unwrap();
    }
    for symbol in [None, Some("AAA"), Some("CCC")] {
        // Before: each symbol's orders oldest first, concatenated in symbol order, stably sorted
        // newest first by the RFC 3339 text, cut.
        let mut want = Vec::new();
        for c in s.trade_controls().await.unwrap() {
            if symbol.is_some_and(|w| w != c.symbol) {
                continue;
            }
            want.extend(s.orders(&c.symbol).await.unwrap());
        }
        want.sort_by_key(|o| std::cmp::Reverse(o.created_at.to_rfc3339()));
        for limit in [5u64, 200] {
            let mut cut = want.clone();
            cut.truncate(limit as usize);
            assert_eq!(
                s.recent_orders(symbol, limit).await.unwrap(),
                cut,
                "{symbol:?}, {limit}"
            );
        }
    }
    assert!(s.recent_orders(Some("CCC"), 200).await.unwrap().is_empty());
    for sym in ["AAA", "BBB", "CCC", "ZZZ"] {
        let want: Vec<OrderRow> = s
            .orders(sym)
            .await
            .unwrap()
            .into_iter()
            .filter(|o| IN_FLIGHT_STATUSES.contains(&o.status.as_str()))
            .collect();
        assert_eq!(
            s.orders_in_status(sym, &IN_FLIGHT_STATUSES).await.unwrap(),
            want,
            "{sym}"
        );
        if sym != "ZZZ" {
            assert!(!want.is_empty(), "{sym} has orders in flight");
        }
    }
    assert!(s.orders_in_status("AAA", &[]).await.unwrap().is_empty());
}

async fn the_live_page_indexes_exist(env: &Env) {
    for name in [
        "idx_at_trade_history_timestamp_id_symbol_trade_type",
        "idx_at_trade_history_symbol_timestamp_id_trade_type",
        "idx_at_trade_history_id_symbol_trade_type_price_timestamp",
        "idx_at_trade_history_symbol_close_trade_id_price_shares",
        "idx_at_orders_created_at_symbol_client_order_id",
        "idx_at_orders_symbol_created_at_client_order_id",
    ] {
        let sql = match env.kind {
            Kind::Sqlite => format!(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = '{name}'"
            ),
            Kind::Postgres => format!(
                "SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() \
                 AND indexname = '{name}'"
            ),
        };
        assert_eq!(env.count(&sql).await, 1, "{name}");
    }
    // Migration 0011: Postgres's byte-order twins (SQLite's text is in byte order already).
    for name in [
        "idx_at_trade_history_timestamp_id_c_symbol_trade_type",
        "idx_at_trade_history_symbol_timestamp_id_c_trade_type",
        "idx_at_orders_created_at_symbol_c_client_order_id_c",
        "idx_at_orders_symbol_created_at_client_order_id_c",
    ] {
        let sql = match env.kind {
            Kind::Sqlite => format!(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = '{name}'"
            ),
            // From the catalogs, not the pg_indexes view: the view renders every index's
            // definition, and one of a schema another test drops meanwhile fails the whole query
            // ("could not open relation with OID").
            Kind::Postgres => format!(
                "SELECT COUNT(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = current_schema() AND c.relname = '{name}' \
                 AND '\"C\"'::regcollation::oid = ANY (i.indcollation::oid[])"
            ),
        };
        let want = i64::from(env.kind == Kind::Postgres);
        assert_eq!(env.count(&sql).await, want, "{name}");
    }
}

/// The CSV export's cache key: the same while nothing is added, new with every trade its filter
/// keeps, and untouched by a trade it leaves out.
async fn the_trade_version_moves_with_each_trade_of_its_filter(env: &Env) {
    let s = &env.store;
    let empty = s.trade_version(&TradeFilter::default()).await.unwrap();
    assert_eq!(
        empty,
        TradeVersion {
            count: 0,
            newest: None
        }
    );
    fixture(s).await;
    let every = TradeFilter::default();
    let aaa_sells = TradeFilter {
        symbol: Some("AAA".into()),
        side: Some(Side::Sell),
    };
    let before = s.trade_version(&every).await.unwrap();
    let sells_before = s.trade_version(&aaa_sells).await.unwrap();
    assert_eq!(
        before,
        s.trade_version(&every).await.unwrap(),
        "no trade: same"
    );
    assert_eq!(before.count, s.trade_count(&every).await.unwrap());
    let newest = s.trade_lines(&every, 1, 0).await.unwrap().remove(0);
    assert_eq!(before.newest, Some((newest.id, newest.timestamp)));
    let late = t0() + Duration::days(30);
    s.insert_trade(
        "AAA",
        &TradeRecord {
            id: "late-buy".into(),
            timestamp: late,
            side: Side::Buy,
            shares: 1.0,
            price: 100.0,
            close_trade_id: None,
        },
    )
    .await
    .unwrap();
    let after = s.trade_version(&every).await.unwrap();
    assert_eq!(after.count, before.count + 1);
    assert_eq!(after.newest, Some(("late-buy".to_string(), late)));
    assert_eq!(
        s.trade_version(&aaa_sells).await.unwrap(),
        sells_before,
        "a buy leaves the sells' export as it was"
    );
    // An older trade (not the newest) still moves the count.
    s.insert_trade(
        "AAA",
        &TradeRecord {
            id: "early-sell".into(),
            timestamp: t0() - Duration::days(1),
            side: Side::Sell,
            shares: 1.0,
            price: 101.0,
            close_trade_id: None,
        },
    )
    .await
    .unwrap();
    let sells = s.trade_version(&aaa_sells).await.unwrap();
    assert_eq!(sells.count, sells_before.count + 1);
    assert_eq!(sells.newest, sells_before.newest);
    assert_ne!(s.trade_version(&every).await.unwrap(), after);
}

/// A deep page of trades in byte order of the ids: on Postgres, with sorting made as dear as the
/// planner allows, the plan walks 0011's "C" index and sorts nothing (an index in the database's
/// collation cannot give that order, so the plan would sort every row before the offset). The
/// query is the page's first step (`Store::trade_lines`: the page's ids, from the index alone).
/// On SQLite, the plan walks 0009's index, in bytes.
async fn a_deep_trades_page_walks_a_byte_order_index(env: &Env) {
    let s = &env.store;
    fixture(s).await;
    let plan = |sql: String| async move {
        match &env.store {
            Store::Postgres(p) => {
                use sqlx::Row;
                let mut tx = p.begin().await.unwrap();
                sqlx::raw_sql(
                    "ANALYZE at_trade_history; SET LOCAL enable_sort = off; \
                     SET LOCAL enable_incremental_sort = off;",
                )
                .execute(&mut *tx)
                .await
                .unwrap();
                let rows = sqlx::query(&format!("EXPLAIN {sql}"))
                    .fetch_all(&mut *tx)
                    .await
                    .unwrap();
                rows.iter()
                    .map(|r| r.get::<String, _>(0))
                    .collect::<Vec<_>>()
                    .join("\n")
            }
            Store::Sqlite(p) => {
                use sqlx::Row;
                let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
                    .fetch_all(p)
                    .await
                    .unwrap();
                rows.iter()
                    .map(|r| r.get::<String, _>(3))
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        }
    };
    let (c, plus) = match env.kind {
        Kind::Postgres => (" COLLATE \"C\"", ""),
        Kind::Sqlite => ("", "+"),
    };
    for (cond, index) in [
        (
            String::new(),
            [
                "idx_at_trade_history_timestamp_id_c_symbol_trade_type",
                "idx_at_trade_history_timestamp_id_symbol_trade_type",
            ],
        ),
        (
            " AND t.symbol = 'AAA' AND t.trade_type = 'sell'".to_string(),
            [
                "idx_at_trade_history_symbol_timestamp_id_c_trade_type",
                "idx_at_trade_history_symbol_timestamp_id_trade_type",
            ],
        ),
    ] {
        let sql = format!(
            "SELECT t.id FROM at_trade_history t WHERE {plus}t.symbol IN \
             (SELECT symbol FROM at_trade_controls){cond} \
             ORDER BY t.timestamp DESC, t.id{c} DESC LIMIT 50 OFFSET 150"
        );
        let p = plan(sql).await;
        let want = match env.kind {
            Kind::Postgres => index[0],
            Kind::Sqlite => index[1],
        };
        assert!(p.contains(want), "{cond}: {p}");
        assert!(
            !p.contains("Sort") && !p.contains("TEMP B-TREE"),
            "{cond}: {p}"
        );
    }
    // The newest orders too.
    let p = plan(format!(
        "SELECT client_order_id FROM at_orders WHERE {plus}symbol IN \
         (SELECT symbol FROM at_trade_controls) \
         ORDER BY created_at DESC, symbol{c}, client_order_id{c} LIMIT 200"
    ))
    .await;
    assert!(!p.contains("Sort") && !p.contains("TEMP B-TREE"), "{p}");
}
