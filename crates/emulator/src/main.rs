//! `vectura-emulator`: serves the Alpaca market-data and Alpha Vantage emulator until killed.

use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

use chrono::NaiveDate;
use vectura_emulator::{AvReply, Config, Emulator, FailingDay, RetryAfter};

const USAGE: &str = "\
usage: vectura-emulator [options]

Serves Alpaca's /v2/stocks/bars, /v2/stocks/{symbol}/bars and /v1/corporate-actions and
Alpha Vantage's /query?function=SPLITS on 127.0.0.1, and prints `listening on http://127.0.0.1:PORT`.

  --port N                    port (0, the default, picks a free one)
  --seed N                    seed of the synthetic bars and fault draws (default 42)
  --key ID:SECRET             accept only this Alpaca key pair (repeatable; default: any pair)
  --av-key KEY                accept only this Alpha Vantage key (repeatable; default: any key)
  --extended-hours            also serve sparse 04:00-09:30 and 16:00-20:00 ET bars
  --first-day YYYY-MM-DD      first day with bars (default 2016-01-04)
  --now UNIX_SECONDS          a fixed now (default: the clock)
  --split SYM:YYYY-MM-DD:R    a split of ratio R (4 for a 4-for-1; repeatable)
  --csv SYM=PATH              serve the minute bars of a CSV file for SYM (repeatable)
faults:
  --every-nth-429 N           answer every N-th market-data request with 429
  --retry-after S             429s carry Retry-After: S
  --retry-after-sometimes S   every other 429 carries Retry-After: S
  --error-rate P              answer with a 5xx with probability P (0..1)
  --error-statuses 500,502    the 5xx statuses to use, in turn (default 500,502,503)
  --fail-requests 3,7         answer these market-data request numbers with a 5xx
  --fail-day SYM:DATE:K[:ST]  requests covering SYM on DATE fail K times (status ST, default 500)
  --delay-ms MS               delay every reply
  --rate-limit N              at most N requests per key in any 60 s, then 429 (Alpaca: 200)
  --av-reply KIND             normal|information|note|error|html|empty|bad-json
  --av-daily-limit N          Alpha Vantage's daily limit per key (free plan: 25)
";

fn fail(msg: &str) -> ! {
    eprintln!("vectura-emulator: {msg}\n\n{USAGE}");
    std::process::exit(2);
}

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> T {
    v.parse()
        .unwrap_or_else(|_| fail(&format!("{flag} {v:?} is not a valid number")))
}

fn date(flag: &str, v: &str) -> NaiveDate {
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .unwrap_or_else(|_| fail(&format!("{flag}: {v:?} is not a YYYY-MM-DD date")))
}

#[tokio::main]
async fn main() {
    let mut cfg = Config::default();
    let mut csv: Vec<(String, String)> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            print!("{USAGE}");
            return;
        }
        if flag == "--extended-hours" {
            cfg.extended_hours = true;
            continue;
        }
        let v = args
            .next()
            .unwrap_or_else(|| fail(&format!("{flag} needs a value")));
        let f = &mut cfg.faults;
        match flag.as_str() {
            "--port" => cfg.port = num(&flag, &v),
            "--seed" => cfg.seed = num(&flag, &v),
            "--key" => {
                let (id, secret) = v
                    .split_once(':')
                    .unwrap_or_else(|| fail("--key takes ID:SECRET"));
                cfg.keys
                    .get_or_insert_with(Vec::new)
                    .push((id.to_string(), secret.to_string()));
            }
            "--av-key" => cfg.av_keys.get_or_insert_with(Vec::new).push(v),
            "--first-day" => cfg.first_day = date(&flag, &v),
            "--now" => cfg.now = Some(num(&flag, &v)),
            "--split" => {
                let parts: Vec<&str> = v.split(':').collect();
                let [sym, d, r] = parts[..] else {
                    fail("--split takes SYMBOL:YYYY-MM-DD:RATIO");
                };
                cfg.splits
                    .entry(sym.to_ascii_uppercase())
                    .or_default()
                    .push((date(&flag, d), num(&flag, r)));
            }
            "--csv" => {
                let (sym, path) = v
                    .split_once('=')
                    .unwrap_or_else(|| fail("--csv takes SYMBOL=PATH"));
                csv.push((sym.to_string(), path.to_string()));
            }
            "--every-nth-429" => f.every_nth_429 = Some(num(&flag, &v)),
            "--retry-after" => f.retry_after = RetryAfter::Always(num(&flag, &v)),
            "--retry-after-sometimes" => f.retry_after = RetryAfter::EveryOther(num(&flag, &v)),
            "--error-rate" => f.error_rate = num(&flag, &v),
            "--error-statuses" => {
                f.error_statuses = v.split(',').map(|s| num(&flag, s.trim())).collect()
            }
            "--fail-requests" => {
                f.fail_requests = v
                    .split(',')
                    .map(|s| num(&flag, s.trim()))
                    .collect::<BTreeSet<u64>>()
            }
            "--fail-day" => {
                let parts: Vec<&str> = v.split(':').collect();
                let (sym, d, k, st) = match parts[..] {
                    [s, d, k] => (s, d, k, "500"),
                    [s, d, k, st] => (s, d, k, st),
                    _ => fail("--fail-day takes SYMBOL:YYYY-MM-DD:TIMES[:STATUS]"),
                };
                f.failing_days.push(FailingDay {
                    symbol: sym.to_ascii_uppercase(),
                    day: date(&flag, d),
                    times: num(&flag, k),
                    status: num(&flag, st),
                });
            }
            "--delay-ms" => f.delay = Duration::from_millis(num(&flag, &v)),
            "--rate-limit" => f.rate_limit = Some(num(&flag, &v)),
            "--av-reply" => {
                f.av_reply = match v.as_str() {
                    "normal" => AvReply::Normal,
                    "information" => AvReply::Information,
                    "note" => AvReply::Note,
                    "error" => AvReply::ErrorMessage,
                    "html" => AvReply::Html,
                    "empty" => AvReply::Empty,
                    "bad-json" => AvReply::BadJson,
                    _ => fail(&format!("--av-reply {v:?} is not one of normal|information|note|error|html|empty|bad-json")),
                }
            }
            "--av-daily-limit" => f.av_daily_limit = Some(num(&flag, &v)),
            _ => fail(&format!("unknown option {flag}")),
        }
    }
    if !(0.0..=1.0).contains(&cfg.faults.error_rate) {
        fail("--error-rate must be between 0 and 1");
    }
    let emu = Emulator::start(cfg)
        .await
        .unwrap_or_else(|e| fail(&format!("cannot listen: {e}")));
    for (sym, path) in csv {
        match emu.handle().load_csv(&sym, &path) {
            Ok(n) => eprintln!("{sym}: {n} bars from {path}"),
            Err(e) => fail(&e),
        }
    }
    println!("listening on {}", emu.base_url());
    let _ = std::io::stdout().flush();
    emu.wait().await;
}
