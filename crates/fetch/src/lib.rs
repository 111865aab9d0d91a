//! Downloads market data into the store: only the sessions that are neither stored nor known closed,
//! failed days retried in later passes, the first day a symbol has data found once by binary search,
//! and the split list refreshed at most once a day.
//!
//! Every day's outcome is written (in its own transaction) before the next result is handled, so an
//! interrupted fetch resumes where it stopped: the next run asks only for what is still a gap.
//! Non-sessions (weekends, holidays) come from the calendar and are never requested.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveDate;
use tokio::task::JoinSet;
use vectura_core::calendar::{self, Session};
use vectura_data::alpaca::{session_window, AlpacaData, FetchError as ProviderError, Timeframe};
use vectura_data::alphavantage::{AlphaVantage, SplitsError};
use vectura_store::{Gap, Store, StoreError};

/// The first session of Alpaca's historical minute bars.
pub fn alpaca_history_start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2016, 1, 4).expect("valid date")
}

/// Sessions probed together by one step of the first-available-day search: a halted or thin day
/// inside the window does not mislead the search.
const PROBE_SESSIONS: usize = 5;

/// Why a fetch stopped.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Store(#[from] StoreError),
    /// An error retrying will not fix (credentials, a rejected request, a bad URL): the fetch stops.
    #[error("{0}")]
    Provider(#[from] ProviderError),
    #[error("{0}")]
    Invalid(String),
}

/// How a fetch runs.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Passes over the gaps: a day that failed in one pass is asked for again in the next.
    pub passes: u32,
    /// Wait before each pass after the first (the service had trouble: give it a moment).
    pub pass_delay: Duration,
    /// Requests in flight at once (the client's token bucket still paces them).
    pub concurrency: usize,
    /// Symbols asked for in one multi-symbol request (one session each).
    pub batch_symbols: usize,
    /// Search each symbol's first available day once, and never ask for days before it.
    pub search_first_day: bool,
    /// "Now" in Unix seconds: sessions that have not closed by then are not fetched.
    pub now: i64,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            passes: 3,
            pass_delay: Duration::from_secs(5),
            concurrency: 4,
            batch_symbols: 20,
            search_first_day: true,
            now: now_unix(),
        }
    }
}

/// The system clock in Unix seconds (the binary's edge; the library takes "now" as a value).
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// What happened to one symbol-day.
#[derive(Debug, Clone, PartialEq)]
pub enum DayOutcome {
    /// Bars stored (how many).
    Stored(usize),
    /// The provider has no bars for the session (a halt, or before the listing).
    Closed,
    /// The request failed; the day stays a gap (the message says why).
    Failed(String),
}

/// Progress of a fetch, for a progress bar or a log.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Searching the first day with data.
    Searching { symbol: String },
    /// The first day with data, or `None` when the provider has none in its history.
    FirstDay {
        symbol: String,
        day: Option<NaiveDate>,
    },
    /// The first-day search kept failing; the fetch goes on without it.
    SearchFailed { symbol: String, error: String },
    /// A pass starts with this many symbol-days to fetch.
    Pass { pass: u32, days: usize },
    /// One symbol-day is done.
    Day {
        symbol: String,
        day: NaiveDate,
        outcome: DayOutcome,
    },
}

/// The totals of one symbol after a fetch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SymbolReport {
    /// Days stored by this run.
    pub stored: usize,
    /// Days marked closed by this run.
    pub closed: usize,
    /// Sessions of the range that were already stored or closed.
    pub already: usize,
    /// Sessions before the first available day (never requested).
    pub before_listing: usize,
    /// Days still gaps after every pass, with their last error.
    pub failed: Vec<Gap>,
    /// The first day with data, when known.
    pub first_available_day: Option<NaiveDate>,
    /// The provider has no bars for the symbol at all (a typo, a delisted or unsupported symbol):
    /// none of its days were requested.
    pub no_data: bool,
}

/// The outcome of [`fetch`], per symbol.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FetchReport {
    pub symbols: BTreeMap<String, SymbolReport>,
}

impl FetchReport {
    /// Whether every wanted session of every symbol ended stored or closed.
    pub fn complete(&self) -> bool {
        self.symbols
            .values()
            .all(|s| s.failed.is_empty() && !s.no_data)
    }
}

/// The sessions of `from..=to` that have closed by `now`.
pub fn closed_sessions(from: NaiveDate, to: NaiveDate, now: i64) -> Vec<Session> {
    calendar::sessions(from, to)
        .into_iter()
        .filter(|s| s.post_close() <= now)
        .collect()
}

/// The gaps of `symbol` over `from..=to`: sessions closed by `now`, on or after its first available
/// day when known, with neither bars nor a `closed` mark.
pub async fn gaps(
    store: &Store,
    symbol: &str,
    from: NaiveDate,
    to: NaiveDate,
    now: i64,
) -> Result<Vec<Gap>, FetchError> {
    let first = store
        .range(symbol)
        .await?
        .and_then(|r| r.first_available_day);
    let days: Vec<NaiveDate> = closed_sessions(from, to, now)
        .into_iter()
        .map(|s| s.date)
        .filter(|d| first.is_none_or(|f| *d >= f))
        .collect();
    Ok(store.gaps(symbol, &days).await?)
}

/// Downloads the missing and failed days of each symbol over `from..=to` into the store.
///
/// Days are asked for one session per request, several symbols per request. A day whose request
/// fails (after the client's own retries) is recorded as failed with its error and asked for again in
/// the next pass. An error no retry can fix (credentials, a rejected request) stops the fetch; what
/// was stored stays stored.
pub async fn fetch(
    store: &Store,
    alpaca: &AlpacaData,
    symbols: &[String],
    from: NaiveDate,
    to: NaiveDate,
    opts: &FetchOptions,
    mut on_event: impl FnMut(&Event),
) -> Result<FetchReport, FetchError> {
    if from > to {
        return Err(FetchError::Invalid(format!(
            "--from {from} is after --to {to}: swap them"
        )));
    }
    let mut report = FetchReport::default();
    let mut seen = Vec::new();
    for s in symbols {
        let sym = vectura_core::Symbol::new(s)
            .map_err(|e| FetchError::Invalid(format!("symbol {s:?}: {e}")))?;
        let sym = sym.as_str().to_string();
        if !seen.contains(&sym) {
            seen.push(sym);
        }
    }
    let sessions = closed_sessions(from, to, opts.now);
    // The symbols whose days are requested (not those the provider has nothing for).
    let mut wanted_symbols = Vec::new();
    for sym in &seen {
        let mut rep = SymbolReport::default();
        let mut first = store.range(sym).await?.and_then(|r| r.first_available_day);
        if first.is_none() && opts.search_first_day {
            on_event(&Event::Searching {
                symbol: sym.clone(),
            });
            let last =
                calendar::prev_session(calendar::ny_date(opts.now) + chrono::Duration::days(1))
                    .map(|s| s.date)
                    .unwrap_or(to);
            // The search is an optimisation: when the service keeps failing, fetch without it
            // (days before the listing then come back empty and are marked closed).
            let mut searched = None;
            for attempt in 1..=opts.passes.max(1) {
                match find_first_available_day(alpaca, sym, alpaca_history_start(), last, opts.now)
                    .await
                {
                    Ok(found) => {
                        searched = Some(found);
                        break;
                    }
                    Err(e) if e.is_transient() && attempt < opts.passes.max(1) => {
                        tokio::time::sleep(opts.pass_delay).await;
                    }
                    Err(e) if e.is_transient() => on_event(&Event::SearchFailed {
                        symbol: sym.clone(),
                        error: alpaca.redact(&e.to_string()),
                    }),
                    Err(e) => return Err(e.into()),
                }
            }
            if let Some(found) = searched {
                first = found;
                on_event(&Event::FirstDay {
                    symbol: sym.clone(),
                    day: first,
                });
                match first {
                    Some(d) => store.set_first_available_day(sym, Some(d)).await?,
                    None => {
                        // Asking for each day would only mark them all closed.
                        rep.no_data = true;
                        report.symbols.insert(sym.clone(), rep);
                        continue;
                    }
                }
            }
        }
        rep.first_available_day = first;
        rep.before_listing = sessions
            .iter()
            .filter(|s| first.is_some_and(|f| s.date < f))
            .count();
        let wanted = sessions.len() - rep.before_listing;
        let gaps = gaps(store, sym, from, to, opts.now).await?;
        rep.already = wanted - gaps.len();
        report.symbols.insert(sym.clone(), rep);
        wanted_symbols.push(sym.clone());
    }
    let seen = wanted_symbols;

    let by_date: BTreeMap<NaiveDate, &Session> = sessions.iter().map(|s| (s.date, s)).collect();
    let concurrency = opts.concurrency.max(1);
    let batch = opts.batch_symbols.max(1);
    for pass in 1..=opts.passes.max(1) {
        // Day -> symbols still missing it.
        let mut todo: BTreeMap<NaiveDate, Vec<String>> = BTreeMap::new();
        let mut count = 0;
        for sym in &seen {
            for g in gaps(store, sym, from, to, opts.now).await? {
                todo.entry(g.day).or_default().push(sym.clone());
                count += 1;
            }
        }
        if count == 0 {
            break;
        }
        if pass > 1 {
            tokio::time::sleep(opts.pass_delay).await;
        }
        on_event(&Event::Pass { pass, days: count });
        let mut jobs = Vec::new();
        for (day, syms) in &todo {
            let Some(session) = by_date.get(day) else {
                continue;
            };
            for chunk in syms.chunks(batch) {
                jobs.push((**session, chunk.to_vec()));
            }
        }
        let mut jobs = jobs.into_iter();
        let mut running = JoinSet::new();
        loop {
            while running.len() < concurrency {
                let Some((session, syms)) = jobs.next() else {
                    break;
                };
                let client = alpaca.clone();
                running.spawn(async move {
                    let res = request(&client, &session, &syms).await;
                    (session.date, syms, res)
                });
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let (day, syms, res) = joined.map_err(|e| {
                FetchError::Invalid(format!("a download task stopped unexpectedly: {e}"))
            })?;
            match res {
                Ok(mut per_symbol) => {
                    for sym in &syms {
                        let bars = per_symbol.remove(sym).unwrap_or_default();
                        let rep = report.symbols.get_mut(sym).expect("symbol planned");
                        let outcome = if bars.is_empty() {
                            store.mark_closed(sym, day).await?;
                            rep.closed += 1;
                            DayOutcome::Closed
                        } else {
                            store.put_day(sym, day, &bars).await?;
                            rep.stored += 1;
                            DayOutcome::Stored(bars.len())
                        };
                        on_event(&Event::Day {
                            symbol: sym.clone(),
                            day,
                            outcome,
                        });
                    }
                }
                Err(e) => {
                    // The client masks its credentials in its errors; masking again here keeps
                    // them out of the store and the events whatever built the error.
                    let msg = alpaca.redact(&e.to_string());
                    for sym in &syms {
                        store.mark_failed(sym, day, &msg).await?;
                        on_event(&Event::Day {
                            symbol: sym.clone(),
                            day,
                            outcome: DayOutcome::Failed(msg.clone()),
                        });
                    }
                    if !e.is_transient() {
                        running.abort_all();
                        return Err(FetchError::Provider(e));
                    }
                }
            }
        }
    }
    for sym in &seen {
        let left = gaps(store, sym, from, to, opts.now).await?;
        if let Some(rep) = report.symbols.get_mut(sym) {
            rep.failed = left;
        }
    }
    Ok(report)
}

/// One session of `syms` (one symbol: the single-symbol endpoint; more: the multi-symbol one).
async fn request(
    client: &AlpacaData,
    session: &Session,
    syms: &[String],
) -> Result<BTreeMap<String, vectura_core::BarSeries>, ProviderError> {
    if let [one] = syms {
        let bars = client
            .bars_for_session(one, session, Timeframe::MINUTE)
            .await?;
        return Ok(BTreeMap::from([(one.clone(), bars)]));
    }
    let (from, to) = session_window(session, Timeframe::MINUTE, client.extended());
    let refs: Vec<&str> = syms.iter().map(String::as_str).collect();
    client.bars_multi(&refs, from, to, Timeframe::MINUTE).await
}

/// The first session in `lo..=hi` (closed by `now`) on which `symbol` has daily bars, found by a
/// binary search whose every probe asks for the daily bars of [`PROBE_SESSIONS`] sessions in one
/// request (about 10 requests for Alpaca's whole history). `None` when the provider has no bars in
/// the span.
pub async fn find_first_available_day(
    alpaca: &AlpacaData,
    symbol: &str,
    lo: NaiveDate,
    hi: NaiveDate,
    now: i64,
) -> Result<Option<NaiveDate>, ProviderError> {
    let sessions = closed_sessions(lo, hi, now);
    if sessions.is_empty() {
        return Ok(None);
    }
    // Probes are over windows starting at session i; "has bars" is taken as monotone in i (a symbol
    // trades from its listing on; a window of several sessions bridges a halted day).
    let probe = |i: usize| {
        let a = &sessions[i];
        let b = &sessions[(i + PROBE_SESSIONS - 1).min(sessions.len() - 1)];
        let from = session_window(a, Timeframe::Day, false).0;
        let to = session_window(b, Timeframe::Day, false).1;
        async move {
            let bars = alpaca.bars(symbol, from, to, Timeframe::Day).await?;
            Ok::<_, ProviderError>(bars.ts.first().map(|&t| calendar::ny_date(t)))
        }
    };
    // The last window must have data, or there is none at all.
    let last_start = sessions.len().saturating_sub(PROBE_SESSIONS);
    let Some(mut found) = probe(last_start).await? else {
        return Ok(None);
    };
    // Invariant: windows starting before `lo_i` are empty; the window at `hi_i` has data (`found`).
    let (mut lo_i, mut hi_i) = (0usize, last_start);
    while lo_i < hi_i {
        let mid = lo_i + (hi_i - lo_i) / 2;
        match probe(mid).await? {
            Some(d) => {
                found = d;
                hi_i = mid;
            }
            None => lo_i = mid + 1,
        }
    }
    Ok(Some(found))
}

/// What [`refresh_splits`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum SplitRefresh {
    /// Already checked today: no request made.
    CheckedToday,
    /// The provider's list equals the stored one.
    Unchanged,
    /// The stored list was replaced (how many splits now). Bars stay as stored; readers apply the
    /// new list.
    Changed(usize),
    /// The provider failed or refused (rate limit, bad key, a reply that is not a list): the stored
    /// list is kept, and the message says why.
    Kept(String),
}

/// Where splits come from: Alpha Vantage first, Alpaca's corporate actions when Alpha Vantage is
/// not configured or refuses (for accounts whose plan includes them).
#[derive(Clone, Copy, Default)]
pub struct SplitSources<'a> {
    pub alpha_vantage: Option<&'a AlphaVantage>,
    pub alpaca: Option<&'a AlpacaData>,
}

/// The first ex-date asked of Alpaca's corporate actions.
fn corporate_actions_start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2000, 1, 1).expect("valid date")
}

/// Refreshes the split list of `symbol`, at most once per UTC day (`today`) unless `force`.
/// Only a reply that is a split list replaces the stored one; when every source refuses, the stored
/// list is kept (and the refusal still counts as the day's call: the free plan's 25 a day are not
/// spent retrying).
pub async fn refresh_splits(
    store: &Store,
    sources: SplitSources<'_>,
    symbol: &str,
    today: NaiveDate,
    force: bool,
) -> Result<SplitRefresh, StoreError> {
    if !force && store.last_split_check(symbol).await? == Some(today) {
        return Ok(SplitRefresh::CheckedToday);
    }
    let mut why = Vec::new();
    let mut asked = false;
    let mut found = None;
    if let Some(av) = sources.alpha_vantage {
        match av.splits(symbol).await {
            Ok(list) => found = Some((list, "alphavantage")),
            // No request was made for these.
            Err(
                e @ (SplitsError::MissingKey
                | SplitsError::BadUrl { .. }
                | SplitsError::BadSymbol(_)),
            ) => why.push(e.to_string()),
            Err(e) => {
                asked = true;
                why.push(e.to_string());
            }
        }
    }
    if found.is_none() {
        if let Some(alpaca) = sources.alpaca {
            asked = true;
            match alpaca
                .splits(symbol, corporate_actions_start(), today)
                .await
            {
                Ok(list) => found = Some((list, "alpaca")),
                Err(e) => why.push(alpaca.redact(&e.to_string())),
            }
        }
    }
    match found {
        Some((list, source)) => {
            let changed = store.replace_splits(symbol, &list, source).await?;
            store.set_last_split_check(symbol, today).await?;
            Ok(if changed {
                SplitRefresh::Changed(list.len())
            } else {
                SplitRefresh::Unchanged
            })
        }
        None => {
            if asked {
                store.set_last_split_check(symbol, today).await?;
            }
            if why.is_empty() {
                why.push("no split source is configured: set ALPHA_VANTAGE_API_KEY".into());
            }
            Ok(SplitRefresh::Kept(why.join("; ")))
        }
    }
}
