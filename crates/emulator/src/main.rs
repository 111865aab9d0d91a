//! `vectura-emulator`: serves the Alpaca (market data, trading, streams) and Alpha Vantage emulator
//! until killed.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;
use clap::Parser;
use vectura_emulator::{
    AvReply, Config, Decimal, Emulator, FailingDay, FaultAction, LostReply, RetryAfter, RouteFault,
    TradingConfig,
};

/// Serves Alpaca's market data (/v2/stocks/bars, /v2/stocks/{symbol}/bars, /v1/corporate-actions),
/// trading API (/v2/account, /v2/orders…, /v2/positions…, /v2/clock, /v2/calendar, /v2/assets,
/// /v2/account/activities), the trade_updates stream (ws://…/stream), the market-data stream
/// (ws://…/v2/iex, /v2/sip) and Alpha Vantage's /query?function=SPLITS on 127.0.0.1, and prints
/// `listening on http://127.0.0.1:PORT`.
#[derive(Debug, Parser)]
#[command(name = "vectura-emulator", version)]
struct Args {
    /// Port (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Seed of the synthetic bars, the ids and the fault draws.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Accept only this Alpaca key pair, ID:SECRET (repeatable; default: any pair).
    #[arg(long = "key", value_name = "ID:SECRET", value_parser = key_pair)]
    keys: Vec<(String, String)>,
    /// Accept only this Alpha Vantage key (repeatable; default: any key).
    #[arg(long = "av-key", value_name = "KEY")]
    av_keys: Vec<String>,
    /// Also serve sparse 04:00–09:30 and 16:00–20:00 ET synthetic bars.
    #[arg(long)]
    extended_hours: bool,
    /// First day with synthetic bars.
    #[arg(long, value_name = "YYYY-MM-DD", default_value = "2016-01-04", value_parser = date)]
    first_day: NaiveDate,
    /// A fixed now, Unix seconds (a stopped clock; default: the system clock, or the replay clock).
    #[arg(long, value_name = "UNIX_SECONDS")]
    now: Option<i64>,
    /// A split SYMBOL:YYYY-MM-DD:RATIO (4 for a 4-for-1; repeatable).
    #[arg(long = "split", value_name = "SYM:DATE:RATIO", value_parser = split)]
    splits: Vec<(String, NaiveDate, f64)>,
    /// Serve the minute bars of a CSV (or CSV.gz) file for SYMBOL (repeatable).
    #[arg(long, value_name = "SYMBOL=PATH", value_parser = sym_path)]
    csv: Vec<(String, PathBuf)>,

    /// Replay real minute bars: they drive the clock, calendar, bars and fills (repeatable).
    #[arg(long, value_name = "SYMBOL=FILE", value_parser = sym_path)]
    replay: Vec<(String, PathBuf)>,
    /// Replay speed: X emulator seconds per real second.
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    speed: f64,
    /// Replay start (RFC 3339 or YYYY-MM-DD; default: the first replayed bar).
    #[arg(long, value_name = "TIME", value_parser = time)]
    start: Option<i64>,
    /// Cash of each new account (one account per key pair).
    #[arg(long, value_name = "USD", default_value = "100000")]
    cash: Decimal,
    /// Write every order request as a JSON line (client_order_id, method, path, time, outcome).
    #[arg(long, value_name = "FILE")]
    orders_log: Option<PathBuf>,
    /// Send the pattern-day-trader account fields Alpaca removed on 2026-07-06.
    #[arg(long)]
    pdt_fields: bool,
    /// Send trade_updates in text frames (default: binary frames, as Alpaca's paper endpoint).
    #[arg(long)]
    text_frames: bool,

    /// Answer every N-th market-data request with 429.
    #[arg(long, value_name = "N", help_heading = "Market-data faults")]
    every_nth_429: Option<u64>,
    /// 429s carry Retry-After: S.
    #[arg(long, value_name = "S", help_heading = "Market-data faults")]
    retry_after: Option<u64>,
    /// Every other 429 carries Retry-After: S.
    #[arg(long, value_name = "S", help_heading = "Market-data faults")]
    retry_after_sometimes: Option<u64>,
    /// Answer market-data requests with a 5xx with probability P.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = probability, help_heading = "Market-data faults")]
    error_rate: f64,
    /// The 5xx statuses to use, in turn.
    #[arg(
        long,
        value_name = "500,502",
        value_delimiter = ',',
        help_heading = "Market-data faults"
    )]
    error_statuses: Vec<u16>,
    /// Answer these market-data request numbers with a 5xx.
    #[arg(
        long,
        value_name = "3,7",
        value_delimiter = ',',
        help_heading = "Market-data faults"
    )]
    fail_requests: Vec<u64>,
    /// Requests covering SYM on DATE fail K times (status ST, default 500).
    #[arg(long, value_name = "SYM:DATE:K[:ST]", value_parser = failing_day, help_heading = "Market-data faults")]
    fail_day: Vec<FailingDay>,
    /// Delay every reply (ms).
    #[arg(long, value_name = "MS", help_heading = "Market-data faults")]
    delay_ms: Option<u64>,
    /// At most N market-data requests per key in any 60 s, then 429 (Alpaca: 200).
    #[arg(long, value_name = "N", help_heading = "Market-data faults")]
    rate_limit: Option<u32>,
    /// What Alpha Vantage answers: normal|information|note|error|html|empty|bad-json.
    #[arg(long, value_name = "KIND", value_parser = av_reply, help_heading = "Market-data faults")]
    av_reply: Option<AvReply>,
    /// Alpha Vantage's daily limit per key (free plan: 25).
    #[arg(long, value_name = "N", help_heading = "Market-data faults")]
    av_daily_limit: Option<u32>,
    /// Market-data error replies quote the request's key id and secret (a leaky gateway).
    #[arg(long, help_heading = "Market-data faults")]
    echo_credentials: bool,

    /// A fault on a route: [METHOD ]PATH=ACTION, ACTION one of 500, 502, 503, 504, 429, hang,
    /// drop, delay:MS, optionally xN for N times (repeatable; e.g. "GET /v2/account=503x2").
    #[arg(long, value_name = "[METHOD ]PATH=ACTION", value_parser = route_fault, help_heading = "Trading faults")]
    route_fault: Vec<RouteFault>,
    /// POST /v2/orders creates the order, then loses the reply: 500|503|429|hang|drop|delay:MS.
    #[arg(long, value_name = "ACTION", value_parser = lost_reply, help_heading = "Trading faults")]
    lost_reply: Option<LostReply>,
    /// Only the next N submissions lose their reply (default: all).
    #[arg(long, value_name = "N", help_heading = "Trading faults")]
    lost_replies: Option<u32>,
    /// Refuse the next N submissions with 403 insufficient buying power.
    #[arg(long, value_name = "N", help_heading = "Trading faults")]
    reject_buying_power: Option<usize>,
    /// Refuse the next N submissions with 422 potential wash trade.
    #[arg(long, value_name = "N", help_heading = "Trading faults")]
    reject_wash_trade: Option<usize>,
    /// Accept the next N orders, then reject them when they would fill.
    #[arg(long, value_name = "N", help_heading = "Trading faults")]
    reject_later: Option<u32>,
    /// Fill every order in N parts, one per bar.
    #[arg(long, value_name = "N", help_heading = "Trading faults")]
    partial_fills: Option<u32>,
    /// Fill no earlier than MS (emulator time) after an order arrives.
    #[arg(long, value_name = "MS", help_heading = "Trading faults")]
    fill_delay_ms: Option<u64>,
    /// Orders stay `new` (never fill).
    #[arg(long, help_heading = "Trading faults")]
    hold_new: bool,
    /// At most N trading requests per key per minute, then 429 (Alpaca: 200).
    #[arg(long, value_name = "N", help_heading = "Trading faults")]
    trading_rate_limit: Option<u32>,
    /// Drop every stream connection every MS (real time).
    #[arg(long, value_name = "MS", help_heading = "Trading faults")]
    drop_streams_every_ms: Option<u64>,
    /// After a reconnect, resend the last N trade events (duplicates).
    #[arg(long, value_name = "N", help_heading = "Trading faults")]
    duplicate_on_reconnect: Option<usize>,
    /// A dropped market-data connection still counts (406 for a new one) for MS.
    #[arg(long, value_name = "MS", help_heading = "Trading faults")]
    stale_after_drop_ms: Option<u64>,
    /// /v2/sip answers 409 insufficient subscription.
    #[arg(long, help_heading = "Trading faults")]
    sip_not_in_plan: bool,
}

fn key_pair(v: &str) -> Result<(String, String), String> {
    v.split_once(':')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .ok_or_else(|| "takes ID:SECRET".to_string())
}

fn date(v: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| format!("{v:?} is not a YYYY-MM-DD date"))
}

fn time(v: &str) -> Result<i64, String> {
    vectura_emulator::clock::parse_time(v)
        .map(|t| t.div_euclid(vectura_emulator::clock::SECOND))
        .ok_or_else(|| format!("{v:?} is neither RFC 3339 nor YYYY-MM-DD"))
}

fn split(v: &str) -> Result<(String, NaiveDate, f64), String> {
    let parts: Vec<&str> = v.split(':').collect();
    let [sym, d, r] = parts[..] else {
        return Err("takes SYMBOL:YYYY-MM-DD:RATIO".into());
    };
    let ratio: f64 = r
        .parse()
        .map_err(|_| format!("ratio {r:?} is not a number"))?;
    Ok((sym.to_ascii_uppercase(), date(d)?, ratio))
}

fn sym_path(v: &str) -> Result<(String, PathBuf), String> {
    v.split_once('=')
        .map(|(s, p)| (s.trim().to_ascii_uppercase(), PathBuf::from(p)))
        .filter(|(s, _)| !s.is_empty())
        .ok_or_else(|| "takes SYMBOL=PATH".to_string())
}

fn probability(v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err("must be between 0 and 1".into()),
    }
}

fn failing_day(v: &str) -> Result<FailingDay, String> {
    let parts: Vec<&str> = v.split(':').collect();
    let (sym, d, k, st) = match parts[..] {
        [s, d, k] => (s, d, k, "500"),
        [s, d, k, st] => (s, d, k, st),
        _ => return Err("takes SYMBOL:YYYY-MM-DD:TIMES[:STATUS]".into()),
    };
    Ok(FailingDay {
        symbol: sym.to_ascii_uppercase(),
        day: date(d)?,
        times: k
            .parse()
            .map_err(|_| format!("times {k:?} is not a number"))?,
        status: st
            .parse()
            .map_err(|_| format!("status {st:?} is not a number"))?,
    })
}

fn av_reply(v: &str) -> Result<AvReply, String> {
    Ok(match v {
        "normal" => AvReply::Normal,
        "information" => AvReply::Information,
        "note" => AvReply::Note,
        "error" => AvReply::ErrorMessage,
        "html" => AvReply::Html,
        "empty" => AvReply::Empty,
        "bad-json" => AvReply::BadJson,
        _ => return Err("is not one of normal|information|note|error|html|empty|bad-json".into()),
    })
}

fn action(v: &str) -> Result<FaultAction, String> {
    match v {
        "hang" => Ok(FaultAction::Hang),
        "drop" => Ok(FaultAction::Drop),
        _ => {
            if let Some(ms) = v.strip_prefix("delay:") {
                let ms: u64 = ms
                    .parse()
                    .map_err(|_| format!("delay {ms:?} is not a number of ms"))?;
                return Ok(FaultAction::Delay(Duration::from_millis(ms)));
            }
            match v.parse::<u16>() {
                Ok(s) if s == 429 || (500..600).contains(&s) => Ok(FaultAction::Status(s)),
                _ => Err(format!("{v:?} is not 429, a 5xx, hang, drop or delay:MS")),
            }
        }
    }
}

fn route_fault(v: &str) -> Result<RouteFault, String> {
    let (target, act) = v
        .rsplit_once('=')
        .ok_or_else(|| "takes [METHOD ]PATH=ACTION".to_string())?;
    let (act, times) = match act.rsplit_once('x') {
        Some((a, n)) if !a.is_empty() && n.chars().all(|c| c.is_ascii_digit()) && !n.is_empty() => {
            (
                a,
                Some(
                    n.parse::<u32>()
                        .map_err(|_| format!("{n:?} is not a count"))?,
                ),
            )
        }
        _ => (act, None),
    };
    let (method, path) = match target.trim().split_once(' ') {
        Some((m, p)) => (Some(m.to_ascii_uppercase()), p.trim()),
        None => (None, target.trim()),
    };
    if !path.starts_with('/') {
        return Err(format!("path {path:?} must start with /"));
    }
    Ok(RouteFault {
        method,
        path: path.to_string(),
        action: action(act)?,
        times,
    })
}

fn lost_reply(v: &str) -> Result<LostReply, String> {
    Ok(match action(v)? {
        FaultAction::Status(s) => LostReply::Status(s),
        FaultAction::Hang => LostReply::Hang,
        FaultAction::Drop => LostReply::Drop,
        FaultAction::Delay(d) => LostReply::Delay(d),
    })
}

fn config(a: Args) -> Config {
    let mut cfg = Config {
        port: a.port,
        seed: a.seed,
        keys: (!a.keys.is_empty()).then_some(a.keys),
        av_keys: (!a.av_keys.is_empty()).then_some(a.av_keys),
        extended_hours: a.extended_hours,
        first_day: a.first_day,
        now: a.now,
        ..Config::default()
    };
    for (sym, d, r) in a.splits {
        cfg.splits.entry(sym).or_default().push((d, r));
    }
    let f = &mut cfg.faults;
    f.every_nth_429 = a.every_nth_429;
    if let Some(s) = a.retry_after {
        f.retry_after = RetryAfter::Always(s);
    }
    if let Some(s) = a.retry_after_sometimes {
        f.retry_after = RetryAfter::EveryOther(s);
    }
    f.error_rate = a.error_rate;
    f.error_statuses = a.error_statuses;
    f.fail_requests = a.fail_requests.into_iter().collect::<BTreeSet<u64>>();
    f.failing_days = a.fail_day;
    if let Some(ms) = a.delay_ms {
        f.delay = Duration::from_millis(ms);
    }
    f.rate_limit = a.rate_limit;
    if let Some(r) = a.av_reply {
        f.av_reply = r;
    }
    f.av_daily_limit = a.av_daily_limit;
    f.echo_credentials = a.echo_credentials;

    let mut t = TradingConfig {
        initial_cash: a.cash,
        pdt_fields: a.pdt_fields,
        binary_frames: !a.text_frames,
        orders_log: a.orders_log,
        replay: a.replay,
        speed: Some(a.speed),
        start: a.start,
        ..TradingConfig::default()
    };
    let tf = &mut t.faults;
    tf.routes = a.route_fault;
    tf.lost_reply = a.lost_reply;
    tf.lost_replies = a.lost_replies;
    for _ in 0..a.reject_buying_power.unwrap_or(0) {
        tf.reject_next
            .push_back(vectura_emulator::Rejection::buying_power());
    }
    for _ in 0..a.reject_wash_trade.unwrap_or(0) {
        tf.reject_next
            .push_back(vectura_emulator::Rejection::wash_trade());
    }
    tf.reject_later = a.reject_later.unwrap_or(0);
    tf.partial_fills = a.partial_fills;
    tf.fill_delay = a.fill_delay_ms.map(Duration::from_millis);
    tf.hold_new = a.hold_new;
    tf.rate_limit = a.trading_rate_limit;
    tf.drop_streams_every = a.drop_streams_every_ms.map(Duration::from_millis);
    tf.duplicate_on_reconnect = a.duplicate_on_reconnect;
    tf.stale_after_drop = a.stale_after_drop_ms.map(Duration::from_millis);
    tf.sip_not_in_plan = a.sip_not_in_plan;
    cfg.trading = t;
    cfg
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let csv = args.csv.clone();
    let emu = match Emulator::start(config(args)).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("vectura-emulator: {e}");
            std::process::exit(2);
        }
    };
    for (sym, path) in csv {
        match emu.handle().load_csv(&sym, &path) {
            Ok(n) => eprintln!("{sym}: {n} bars from {}", path.display()),
            Err(e) => {
                eprintln!("vectura-emulator: {e}");
                std::process::exit(2);
            }
        }
    }
    println!("listening on {}", emu.base_url());
    let _ = std::io::stdout().flush();
    emu.wait().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_faults_parse_with_method_and_count() {
        let f = route_fault("GET /v2/account=503x2").unwrap();
        assert_eq!(f.method.as_deref(), Some("GET"));
        assert_eq!(f.path, "/v2/account");
        assert_eq!(f.action, FaultAction::Status(503));
        assert_eq!(f.times, Some(2));
        let f = route_fault("/v2/orders=delay:250").unwrap();
        assert_eq!(f.action, FaultAction::Delay(Duration::from_millis(250)));
        assert_eq!((f.method, f.times), (None, None));
        assert!(route_fault("/v2/orders=404").is_err());
        assert!(route_fault("v2/orders=500").is_err());
        assert_eq!(lost_reply("hang").unwrap(), LostReply::Hang);
        let a = Args::try_parse_from([
            "vectura-emulator",
            "--replay",
            "inda=/tmp/x.csv.gz",
            "--speed",
            "60",
            "--key",
            "K:S",
            "--lost-reply",
            "503",
        ])
        .unwrap();
        let cfg = config(a);
        assert_eq!(cfg.trading.replay[0].0, "INDA");
        assert_eq!(cfg.trading.speed, Some(60.0));
        assert_eq!(cfg.keys, Some(vec![("K".into(), "S".into())]));
        assert_eq!(cfg.trading.faults.lost_reply, Some(LostReply::Status(503)));
    }
}
