//! The Backtests pages and API: the form of original-behaviour.md §6.2 with every field of
//! `vectura backtest` (fill, session, costs, strategy, PDT, compat), runs as server jobs with live
//! progress, cancel, re-run and edit, the report (the report crate's page: metrics, the chart of
//! price with trigger lines, equity, cash and drawdown) and the JSON.
//!
//! Fixed from the original: runs are stored (a reload finds them); editing a run whose join gap
//! was off shows the switch off with a valid percentage (the original loaded −1 and refused it);
//! the gap percentage is checked only when the switch is on.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use vectura_backtest::{FillModel, PdtMode};
use vectura_jobs::{BacktestRequest, Compat, Session, StrategyKind};

use crate::auth::CurrentSession;
use crate::error::{ApiError, ErrorBody};
use crate::pages::{render, Chrome};
use crate::server::AppState;

/// A backtest as the form and the API take it (every field optional: the original's defaults).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BacktestInput {
    /// 1 to 50 characters (default "My Backtest").
    pub name: Option<String>,
    /// `bundled` (the SPY minute bars in the binary) or `store` (the symbol's stored bars).
    #[schema(pattern = r"^\s*(bundled|store)?\s*$")]
    pub source: Option<String>,
    /// The ticker (stored bars); ignored for the bundled bars.
    pub symbol: Option<String>,
    /// YYYY-MM-DD; default: the data's first day.
    #[schema(pattern = r"^\s*(\d{4}-\d{2}-\d{2})?\s*$")]
    pub start_date: Option<String>,
    /// YYYY-MM-DD; default: the data's last day.
    #[schema(pattern = r"^\s*(\d{4}-\d{2}-\d{2})?\s*$")]
    pub end_date: Option<String>,
    #[schema(minimum = 0, maximum = 1e12)]
    pub start_capital: Option<f64>,
    #[schema(minimum = 0, maximum = 1e12)]
    pub cash_floor: Option<f64>,
    #[schema(minimum = 0, maximum = 36500, multiple_of = 1)]
    pub contribution_frequency_days: Option<f64>,
    #[schema(minimum = 0, maximum = 1e9)]
    pub contribution_amount: Option<f64>,
    #[schema(exclusive_minimum = 0, maximum = 100)]
    pub capital_pct: Option<f64>,
    #[schema(exclusive_minimum = 0, maximum = 100)]
    pub buy_below_pct: Option<f64>,
    #[schema(exclusive_minimum = 0, maximum = 100)]
    pub sell_above_pct: Option<f64>,
    #[schema(exclusive_minimum = 0, maximum = 100)]
    pub buy_after_sell_pct: Option<f64>,
    /// The join ("order gap") filter on or off (default on).
    pub order_gap_enabled: Option<bool>,
    #[schema(minimum = 0, maximum = 100)]
    pub order_gap_pct: Option<f64>,
    /// `next-open`, `close` or `touch` (default next-open; close under compat).
    #[schema(pattern = r"^\s*(next-open|close|touch)?\s*$")]
    pub fill: Option<String>,
    /// `regular`, `extended` or `all`.
    #[schema(pattern = r"^\s*(regular|extended|all)?\s*$")]
    pub session: Option<String>,
    /// `grid` or `sma-cross`.
    #[schema(pattern = r"^\s*(grid|sma-cross)?\s*$")]
    pub strategy: Option<String>,
    #[schema(minimum = 1, maximum = 10000)]
    pub fast: Option<u32>,
    #[schema(minimum = 1, maximum = 10000)]
    pub slow: Option<u32>,
    /// `auto`, `on` or `off`.
    #[schema(pattern = r"^\s*(auto|on|off)?\s*$")]
    pub pdt: Option<String>,
    #[schema(minimum = 0, maximum = 1e6)]
    pub commission_per_order: Option<f64>,
    #[schema(minimum = 0, maximum = 1000)]
    pub commission_per_share: Option<f64>,
    #[schema(minimum = 0, maximum = 100)]
    pub commission_pct: Option<f64>,
    #[schema(minimum = 0, maximum = 10000)]
    pub slippage_bps: Option<f64>,
    #[schema(minimum = 0, maximum = 9)]
    pub share_decimals: Option<u32>,
    /// `none` or `vectura-v1`.
    #[schema(pattern = r"^\s*(none|vectura-v1)?\s*$")]
    pub compat: Option<String>,
    pub strict: Option<bool>,
}

/// Field errors, in form order.
pub type FieldErrors = Vec<(&'static str, String)>;

fn num(
    errs: &mut FieldErrors,
    field: &'static str,
    v: Option<f64>,
    default: f64,
    ok: impl Fn(f64) -> bool,
    rule: &str,
) -> f64 {
    let x = v.unwrap_or(default);
    if !x.is_finite() || !ok(x) {
        errs.push((field, format!("{x} is out of range: give a number {rule}")));
    }
    x
}

fn date(errs: &mut FieldErrors, field: &'static str, v: &Option<String>) -> Option<NaiveDate> {
    let s = v.as_deref().map(str::trim).filter(|s| !s.is_empty())?;
    match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            errs.push((
                field,
                format!("{s:?} is not a date: write it as YYYY-MM-DD"),
            ));
            None
        }
    }
}

fn choice<T: Copy>(
    errs: &mut FieldErrors,
    field: &'static str,
    v: &Option<String>,
    options: &[(&str, T)],
    default: T,
) -> T {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => default,
        Some(s) => match options.iter().find(|(n, _)| *n == s) {
            Some((_, t)) => *t,
            None => {
                let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
                errs.push((field, format!("{s:?} is not one of {}", names.join(", "))));
                default
            }
        },
    }
}

impl BacktestInput {
    /// The run's name.
    pub fn name(&self) -> String {
        self.name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .unwrap_or("My Backtest")
            .to_string()
    }

    /// Checks every field (§6.2's rules, and `vectura backtest`'s ranges) and builds the job's
    /// request; every bad field is named with its fix. Files are never taken from a request: the
    /// bars are the store's or the bundled ones.
    pub fn to_request(&self) -> Result<BacktestRequest, FieldErrors> {
        let mut e: FieldErrors = Vec::new();
        let d = BacktestRequest::default();
        let name = self.name();
        if name.chars().count() > 50 {
            e.push((
                "name",
                "the name is longer than 50 characters: shorten it".into(),
            ));
        }
        let source = choice(
            &mut e,
            "source",
            &self.source,
            &[("bundled", false), ("store", true)],
            self.symbol.as_deref().is_some_and(|s| !s.trim().is_empty()),
        );
        let symbol = if source {
            match self
                .symbol
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                None => {
                    e.push((
                        "symbol",
                        "give the symbol whose stored bars to backtest".into(),
                    ));
                    None
                }
                Some(s) => match vectura_core::Symbol::new(s) {
                    Ok(sym) => Some(String::from(sym)),
                    Err(err) => {
                        e.push(("symbol", err.to_string()));
                        None
                    }
                },
            }
        } else {
            None
        };
        let start_date = date(&mut e, "start_date", &self.start_date);
        let end_date = date(&mut e, "end_date", &self.end_date);
        if let (Some(a), Some(b)) = (start_date, end_date) {
            if b < a {
                e.push((
                    "end_date",
                    format!("the end {b} is before the start {a}: give a later end"),
                ));
            }
        }
        let pos = |x: f64| x >= 0.0;
        let pct = |x: f64| x > 0.0 && x <= 100.0;
        let start_capital = num(
            &mut e,
            "start_capital",
            self.start_capital,
            d.start_capital,
            |x| pos(x) && x <= 1e12,
            "from 0 to 1e12",
        );
        let cash_floor = num(
            &mut e,
            "cash_floor",
            self.cash_floor,
            d.cash_floor,
            |x| pos(x) && x <= 1e12,
            "from 0 to 1e12",
        );
        let contribution_frequency_days = num(
            &mut e,
            "contribution_frequency_days",
            self.contribution_frequency_days,
            d.contribution_frequency_days,
            |x| pos(x) && x <= 36500.0 && x.fract() == 0.0,
            "a whole number of days from 0 (none) to 36500",
        );
        let contribution_amount = num(
            &mut e,
            "contribution_amount",
            self.contribution_amount,
            d.contribution_amount,
            |x| pos(x) && x <= 1e9,
            "from 0 to 1e9",
        );
        let capital_pct = num(
            &mut e,
            "capital_pct",
            self.capital_pct,
            d.capital_pct,
            pct,
            "above 0 and at most 100",
        );
        let buy_below_pct = num(
            &mut e,
            "buy_below_pct",
            self.buy_below_pct,
            d.buy_below_pct,
            pct,
            "above 0 and at most 100",
        );
        let sell_above_pct = num(
            &mut e,
            "sell_above_pct",
            self.sell_above_pct,
            d.sell_above_pct,
            pct,
            "above 0 and at most 100",
        );
        let buy_after_sell_pct = num(
            &mut e,
            "buy_after_sell_pct",
            self.buy_after_sell_pct,
            d.buy_after_sell_pct,
            pct,
            "above 0 and at most 100",
        );
        let order_gap_pct = if self.order_gap_enabled.unwrap_or(true) {
            num(
                &mut e,
                "order_gap_pct",
                self.order_gap_pct,
                d.order_gap_pct,
                |x| (0.0..=100.0).contains(&x),
                "from 0 to 100",
            )
        } else {
            -1.0
        };
        let compat = choice(
            &mut e,
            "compat",
            &self.compat,
            &[("none", None), ("vectura-v1", Some(Compat::VecturaV1))],
            None,
        );
        let fill = choice(
            &mut e,
            "fill",
            &self.fill,
            &[
                ("next-open", Some(FillModel::NextOpen)),
                ("close", Some(FillModel::Close)),
                ("touch", Some(FillModel::Touch)),
            ],
            None,
        );
        let session = choice(
            &mut e,
            "session",
            &self.session,
            &[
                ("regular", Session::Regular),
                ("extended", Session::Extended),
                ("all", Session::All),
            ],
            d.session,
        );
        let strategy = choice(
            &mut e,
            "strategy",
            &self.strategy,
            &[
                ("grid", StrategyKind::Grid),
                ("sma-cross", StrategyKind::SmaCross),
            ],
            d.strategy,
        );
        let pdt = choice(
            &mut e,
            "pdt",
            &self.pdt,
            &[
                ("auto", PdtMode::Auto),
                ("on", PdtMode::On),
                ("off", PdtMode::Off),
            ],
            d.pdt,
        );
        let fast = self.fast.unwrap_or(d.fast as u32);
        let slow = self.slow.unwrap_or(d.slow as u32);
        // The ranges hold whatever the strategy (the API documents them so); the order only
        // matters to the averages.
        if fast == 0 || fast > 10_000 {
            e.push(("fast", format!("{fast} bars: give 1 to 10000")));
        }
        if slow == 0 || slow > 10_000 {
            e.push(("slow", format!("{slow} bars: give 1 to 10000")));
        } else if strategy == StrategyKind::SmaCross && slow <= fast {
            e.push((
                "slow",
                format!("the slow average ({slow} bars) must be longer than the fast one ({fast})"),
            ));
        }
        let commission_per_order = num(
            &mut e,
            "commission_per_order",
            self.commission_per_order,
            0.0,
            |x| pos(x) && x <= 1e6,
            "from 0 to 1e6 dollars",
        );
        let commission_per_share = num(
            &mut e,
            "commission_per_share",
            self.commission_per_share,
            0.0,
            |x| pos(x) && x <= 1e3,
            "from 0 to 1000 dollars",
        );
        let commission_pct = num(
            &mut e,
            "commission_pct",
            self.commission_pct,
            0.0,
            |x| pos(x) && x <= 100.0,
            "from 0 to 100",
        );
        let slippage_bps = num(
            &mut e,
            "slippage_bps",
            self.slippage_bps,
            0.0,
            |x| pos(x) && x <= 10_000.0,
            "from 0 to 10000 basis points",
        );
        let share_decimals = self.share_decimals.unwrap_or(d.share_decimals);
        if share_decimals > 9 {
            e.push((
                "share_decimals",
                format!("{share_decimals} decimals: give 0 to 9"),
            ));
        }
        if !e.is_empty() {
            return Err(e);
        }
        Ok(BacktestRequest {
            symbol,
            start_date,
            end_date,
            start_capital,
            contribution_frequency_days,
            contribution_amount,
            capital_pct,
            buy_below_pct,
            sell_above_pct,
            buy_after_sell_pct,
            cash_floor,
            order_gap_pct,
            session,
            fill,
            compat,
            strategy,
            fast: fast as usize,
            slow: slow as usize,
            strict: self.strict.unwrap_or(false),
            pdt,
            commission_per_order,
            commission_per_share,
            commission_pct,
            slippage_bps,
            share_decimals,
            record_series: true,
            ..BacktestRequest::default()
        })
    }

    /// Reads a url-encoded form: a field that is not a number where one is wanted is named.
    pub fn from_form(f: &HashMap<String, String>) -> Result<BacktestInput, FieldErrors> {
        let mut e: FieldErrors = Vec::new();
        let text = |k: &str| {
            f.get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut float = |k: &'static str| -> Option<f64> {
            let v = text(k)?;
            match v.parse::<f64>() {
                Ok(x) => Some(x),
                Err(_) => {
                    e.push((k, format!("{v:?} is not a number")));
                    None
                }
            }
        };
        let mut i = BacktestInput {
            name: text("name"),
            source: text("source"),
            symbol: text("symbol"),
            start_date: text("start_date"),
            end_date: text("end_date"),
            start_capital: float("start_capital"),
            cash_floor: float("cash_floor"),
            contribution_frequency_days: float("contribution_frequency_days"),
            contribution_amount: float("contribution_amount"),
            capital_pct: float("capital_pct"),
            buy_below_pct: float("buy_below_pct"),
            sell_above_pct: float("sell_above_pct"),
            buy_after_sell_pct: float("buy_after_sell_pct"),
            // An unchecked box sends nothing: off.
            order_gap_enabled: Some(f.contains_key("order_gap_enabled")),
            order_gap_pct: float("order_gap_pct"),
            fill: text("fill"),
            session: text("session"),
            strategy: text("strategy"),
            pdt: text("pdt"),
            commission_per_order: float("commission_per_order"),
            commission_per_share: float("commission_per_share"),
            commission_pct: float("commission_pct"),
            slippage_bps: float("slippage_bps"),
            compat: text("compat"),
            strict: Some(f.contains_key("strict")),
            ..BacktestInput::default()
        };
        for (k, slot) in [
            ("fast", &mut i.fast),
            ("slow", &mut i.slow),
            ("share_decimals", &mut i.share_decimals),
        ] {
            if let Some(v) = text(k) {
                match v.parse::<u32>() {
                    Ok(x) => *slot = Some(x),
                    Err(_) => e.push((
                        match k {
                            "fast" => "fast",
                            "slow" => "slow",
                            _ => "share_decimals",
                        },
                        format!("{v:?} is not a whole number"),
                    )),
                }
            }
        }
        if e.is_empty() {
            Ok(i)
        } else {
            Err(e)
        }
    }
}

/// The form's values as text, for re-display (what was typed, or a stored run's input).
#[derive(Debug, Clone, Default)]
pub struct FormValues {
    pub v: HashMap<String, String>,
    pub errors: HashMap<String, String>,
}

impl FormValues {
    fn of_input(i: &BacktestInput) -> FormValues {
        let mut v = HashMap::new();
        let mut put = |k: &str, x: Option<String>| {
            if let Some(x) = x {
                v.insert(k.to_string(), x);
            }
        };
        put("name", i.name.clone());
        put("source", i.source.clone());
        put("symbol", i.symbol.clone());
        put("start_date", i.start_date.clone());
        put("end_date", i.end_date.clone());
        for (k, x) in [
            ("start_capital", i.start_capital),
            ("cash_floor", i.cash_floor),
            ("contribution_frequency_days", i.contribution_frequency_days),
            ("contribution_amount", i.contribution_amount),
            ("capital_pct", i.capital_pct),
            ("buy_below_pct", i.buy_below_pct),
            ("sell_above_pct", i.sell_above_pct),
            ("buy_after_sell_pct", i.buy_after_sell_pct),
            ("order_gap_pct", i.order_gap_pct),
            ("commission_per_order", i.commission_per_order),
            ("commission_per_share", i.commission_per_share),
            ("commission_pct", i.commission_pct),
            ("slippage_bps", i.slippage_bps),
        ] {
            put(k, x.map(|x| x.to_string()));
        }
        put("fast", i.fast.map(|x| x.to_string()));
        put("slow", i.slow.map(|x| x.to_string()));
        put("share_decimals", i.share_decimals.map(|x| x.to_string()));
        put("fill", i.fill.clone());
        put("session", i.session.clone());
        put("strategy", i.strategy.clone());
        put("pdt", i.pdt.clone());
        put("compat", i.compat.clone());
        if i.order_gap_enabled.unwrap_or(true) {
            put("order_gap_enabled", Some("on".into()));
        }
        if i.strict.unwrap_or(false) {
            put("strict", Some("on".into()));
        }
        FormValues {
            v,
            errors: HashMap::new(),
        }
    }

    /// The value of a field, or its default.
    pub fn get(&self, k: &str) -> String {
        if let Some(x) = self.v.get(k) {
            return x.clone();
        }
        match k {
            "name" => "My Backtest",
            "start_capital" => "1000",
            "cash_floor" => "200",
            "contribution_frequency_days" => "7",
            "contribution_amount" => "500",
            "capital_pct" => "60",
            "buy_below_pct" => "2",
            "sell_above_pct" => "18",
            "buy_after_sell_pct" => "25",
            "order_gap_pct" => "1.5",
            "fast" => "10",
            "slow" => "20",
            "share_decimals" => "4",
            "commission_per_order" | "commission_per_share" | "commission_pct" | "slippage_bps" => {
                "0"
            }
            _ => "",
        }
        .to_string()
    }

    /// Whether a checkbox is on.
    pub fn on(&self, k: &str) -> bool {
        self.v.contains_key(k)
    }

    /// Whether a select has this option chosen (the first option when nothing is).
    pub fn is(&self, k: &str, option: &str, first: bool) -> bool {
        match self.v.get(k) {
            Some(x) => x == option,
            None => first,
        }
    }

    /// The error of a field, if any.
    pub fn err(&self, k: &str) -> String {
        self.errors.get(k).cloned().unwrap_or_default()
    }
}

/// A stored run in the list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunView {
    pub id: String,
    pub name: String,
    /// queued, running, done, failed or cancelled.
    pub status: String,
    pub error: Option<String>,
    pub created_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    /// The form's input, for editing and re-running.
    #[schema(value_type = Object)]
    pub input: Value,
    /// A one-line summary of the configuration.
    pub summary: String,
}

fn summary(input: &Value) -> String {
    let i: BacktestInput = serde_json::from_value(input.clone()).unwrap_or_default();
    let src = match i.source.as_deref() {
        Some("store") => i.symbol.clone().unwrap_or_default(),
        _ => "SPY (bundled)".to_string(),
    };
    let f = FormValues::of_input(&i);
    let gap = if i.order_gap_enabled.unwrap_or(true) {
        format!("Join gap: {}%", f.get("order_gap_pct"))
    } else {
        "Join gap: Disabled".to_string()
    };
    let period = match (&i.start_date, &i.end_date) {
        (None, None) => "all data".to_string(),
        (a, b) => format!(
            "{} – {}",
            a.as_deref().unwrap_or("first day"),
            b.as_deref().unwrap_or("last day")
        ),
    };
    format!(
        "{src}, {period}, Buy Below {}%, Sell Above {}%, Buy After Sell {}%, Cash per trade {}%, start ${}, floor ${}, {gap}, fill {}",
        f.get("buy_below_pct"),
        f.get("sell_above_pct"),
        f.get("buy_after_sell_pct"),
        f.get("capital_pct"),
        f.get("start_capital"),
        f.get("cash_floor"),
        i.fill.as_deref().unwrap_or("next-open"),
    )
}

fn run_view(j: &vectura_store::WebJobSummary) -> RunView {
    let input = j.request.get("input").cloned().unwrap_or(Value::Null);
    RunView {
        id: j.id.clone(),
        name: j.name.clone(),
        status: j.status.as_str().to_string(),
        error: j.error.clone(),
        created_at_ms: j.created_at_ms,
        finished_at_ms: j.finished_at_ms,
        summary: summary(&input),
        input,
    }
}

fn ms_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono_tz::America::New_York)
                .format("%Y-%m-%d %H:%M:%S %Z")
                .to_string()
        })
        .unwrap_or_default()
}

/// The form's money and percentage fields (§6.2), with their labels.
const GRID_FIELDS: &[(&str, &str)] = &[
    ("start_capital", "Start capital ($)"),
    ("cash_floor", "Cash floor ($)"),
    (
        "contribution_frequency_days",
        "Contribute every N days (0: never)",
    ),
    ("contribution_amount", "Contribution ($)"),
    ("capital_pct", "Cash per trade (%)"),
    ("buy_below_pct", "Buy below (%)"),
    ("sell_above_pct", "Sell above (%)"),
    ("buy_after_sell_pct", "Buy after sell (%)"),
];

/// The cost and sizing fields of `vectura backtest`.
const COST_FIELDS: &[(&str, &str)] = &[
    ("commission_per_order", "Commission per order ($)"),
    ("commission_per_share", "Commission per share ($)"),
    ("commission_pct", "Commission (% of notional)"),
    ("slippage_bps", "Slippage (basis points)"),
    ("share_decimals", "Share decimals (0: whole shares)"),
];

#[derive(Template)]
#[template(path = "backtests.html")]
struct BacktestsPage {
    chrome: Chrome,
    grid_fields: &'static [(&'static str, &'static str)],
    cost_fields: &'static [(&'static str, &'static str)],
    f: FormValues,
    runs: Vec<(RunView, String)>,
    editing: Option<String>,
}

/// `?edit=ID` / `?sweep=ID&set=N`: the form filled from a stored run or a sweep's set.
#[derive(Debug, Deserialize)]
pub struct FormQuery {
    pub edit: Option<String>,
    pub sweep: Option<String>,
    pub set: Option<u64>,
}

async fn runs(state: &AppState) -> Result<Vec<(RunView, String)>, ApiError> {
    Ok(state
        .store
        .jobs("backtest", 200)
        .await?
        .iter()
        .map(|j| {
            let v = run_view(j);
            let t = ms_text(v.created_at_ms);
            (v, t)
        })
        .collect())
}

async fn from_sweep(state: &AppState, id: &str, set: u64) -> Result<BacktestInput, ApiError> {
    let run = state
        .store
        .sweep_run(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no sweep with id {id:?}")))?;
    let rows = state.store.sweep_results(id).await?;
    let row = rows
        .iter()
        .find(|r| r.set_index == set)
        .ok_or_else(|| ApiError::field("set", format!("sweep {id} has no set {set}")))?;
    let p = &row.params;
    let g = |k: &str| p.get(k).and_then(Value::as_f64);
    let symbol = p
        .get("symbol")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| run.symbols.first().cloned());
    Ok(BacktestInput {
        name: Some(format!("Sweep set {set}")),
        source: Some(
            if symbol.as_deref().is_some_and(|s| s != "SPY") {
                "store"
            } else {
                "bundled"
            }
            .into(),
        ),
        symbol,
        start_date: p
            .get("start_date")
            .and_then(Value::as_str)
            .map(str::to_string),
        end_date: p
            .get("end_date")
            .and_then(Value::as_str)
            .map(str::to_string),
        capital_pct: g("capital_pct"),
        buy_below_pct: g("buy_below_pct"),
        sell_above_pct: g("sell_above_pct"),
        buy_after_sell_pct: g("buy_after_sell_pct"),
        cash_floor: g("cash_floor"),
        order_gap_enabled: g("order_gap_pct").map(|x| x >= 0.0),
        order_gap_pct: g("order_gap_pct").filter(|x| *x >= 0.0),
        ..BacktestInput::default()
    })
}

/// `GET /backtests`.
pub async fn page(
    State(state): State<Arc<AppState>>,
    Extension(s): Extension<CurrentSession>,
    q: Result<Query<FormQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = q.map_err(|e| ApiError::field("query", e.body_text()))?.0;
    let mut editing = None;
    let f = if let Some(id) = &q.edit {
        let job = state
            .store
            .job(id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no backtest with id {id:?}")))?;
        let input: BacktestInput =
            serde_json::from_value(job.request.get("input").cloned().unwrap_or(Value::Null))
                .unwrap_or_default();
        editing = Some(job.name);
        FormValues::of_input(&input)
    } else if let (Some(id), Some(set)) = (&q.sweep, q.set) {
        FormValues::of_input(&from_sweep(&state, id, set).await?)
    } else {
        FormValues::of_input(&BacktestInput::default())
    };
    Ok(render(&BacktestsPage {
        chrome: Chrome::new("Backtests", "backtests", &s),
        grid_fields: GRID_FIELDS,
        cost_fields: COST_FIELDS,
        f,
        runs: runs(&state).await?,
        editing,
    }))
}

/// `POST /backtests`: the form; errors are shown next to their fields.
pub async fn submit(
    State(state): State<Arc<AppState>>,
    Extension(s): Extension<CurrentSession>,
    form: Result<Form<HashMap<String, String>>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ApiError> {
    let f = form
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?
        .0;
    let typed = BacktestInput::from_form(&f);
    let checked = typed.clone().and_then(|i| i.to_request().map(|r| (i, r)));
    match checked {
        Ok((input, request)) => {
            let id = crate::jobs::start_backtest(
                &state,
                &input.name(),
                &serde_json::to_value(&input).unwrap_or(Value::Null),
                request,
            )
            .await?;
            Ok(Redirect::to(&format!("/backtests/{id}")).into_response())
        }
        Err(errors) => {
            let mut values = FormValues {
                v: f.into_iter().filter(|(k, _)| k != "csrf").collect(),
                errors: HashMap::new(),
            };
            for (k, m) in errors {
                values.errors.entry(k.to_string()).or_insert(m);
            }
            let mut res = render(&BacktestsPage {
                chrome: Chrome::new("Backtests", "backtests", &s),
                grid_fields: GRID_FIELDS,
                cost_fields: COST_FIELDS,
                f: values,
                runs: runs(&state).await?,
                editing: None,
            });
            *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(res)
        }
    }
}

#[derive(Template)]
#[template(path = "backtest.html")]
struct RunPage {
    chrome: Chrome,
    run: RunView,
    created: String,
    active: bool,
    done: bool,
    events: String,
}

async fn stored(state: &AppState, id: &str) -> Result<vectura_store::WebJob, ApiError> {
    if id.len() > 100 {
        return Err(ApiError::field("id", "a run id is at most 100 characters"));
    }
    state
        .store
        .job(id)
        .await?
        .filter(|j| j.kind == "backtest")
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no backtest with id {id:?} is stored: see /backtests"
            ))
        })
}

fn summary_of(j: &vectura_store::WebJob) -> vectura_store::WebJobSummary {
    vectura_store::WebJobSummary {
        id: j.id.clone(),
        kind: j.kind.clone(),
        name: j.name.clone(),
        status: j.status,
        request: j.request.clone(),
        error: j.error.clone(),
        created_at_ms: j.created_at_ms,
        finished_at_ms: j.finished_at_ms,
    }
}

/// `GET /backtests/{id}`.
pub async fn run_page(
    State(state): State<Arc<AppState>>,
    Extension(s): Extension<CurrentSession>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let j = stored(&state, &id).await?;
    let run = run_view(&summary_of(&j));
    Ok(render(&RunPage {
        chrome: Chrome::new(run.name.clone(), "backtests", &s),
        created: ms_text(run.created_at_ms),
        active: !j.status.is_final(),
        done: j.status == vectura_store::JobStatus::Done,
        events: crate::sweeps::script_json(&j.progress),
        run,
    }))
}

/// `GET /api/v1/backtests/{id}/events`: the progress as server-sent events (`progress`,
/// `status`, then one `end` with the outcome).
#[utoipa::path(get, path = "/api/v1/backtests/{id}/events", tag = "backtests",
    params(("id" = String, Path, description = "The run's id")),
    responses((status = 200, content_type = "text/event-stream", description = "progress, status and end events"),
        (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn api_events(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if id.len() > 100 {
        return Err(ApiError::field("id", "a run id is at most 100 characters"));
    }
    Ok(crate::jobs::events(&state, &id).await?.into_response())
}

/// The id of a started run.
#[derive(Debug, Serialize, ToSchema)]
pub struct Started {
    pub id: String,
}

fn field_errors(errors: FieldErrors) -> ApiError {
    let (field, msg) = errors
        .into_iter()
        .next()
        .unwrap_or(("body", "invalid".into()));
    ApiError::field(field, msg)
}

/// Starts a backtest job.
#[utoipa::path(post, path = "/api/v1/backtests", tag = "backtests",
    request_body = BacktestInput,
    security(("session" = [], "csrf" = [])),
    responses((status = 202, body = Started), (status = 422, body = ErrorBody), (status = 400, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn api_start(
    State(state): State<Arc<AppState>>,
    body: Result<Json<serde_json::Value>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Started>), ApiError> {
    let input: BacktestInput = json_object(body)?;
    let request = input.to_request().map_err(field_errors)?;
    let id = crate::jobs::start_backtest(
        &state,
        &input.name(),
        &serde_json::to_value(&input).unwrap_or(Value::Null),
        request,
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(Started { id })))
}

/// A JSON body that does not fit: 422 (400 when it is not JSON at all) naming the field serde
/// stopped at.
/// A JSON body read as `T`, which must be an object: serde would also read an array as a struct's
/// fields in order, so `[null, null]` would pass for a form. Errors as [`json_rejection`] names them.
pub fn json_object<T: serde::de::DeserializeOwned>(
    body: Result<Json<serde_json::Value>, axum::extract::rejection::JsonRejection>,
) -> Result<T, ApiError> {
    let v = body.map_err(json_rejection)?.0;
    if !v.is_object() {
        return Err(ApiError::field(
            "body",
            "the body is JSON but not an object: send {\"field\": value, …}",
        ));
    }
    // Through the bytes again, so that a bad field is named exactly as for any other body.
    let bytes = serde_json::to_vec(&v).unwrap_or_default();
    Json::<T>::from_bytes(&bytes)
        .map(|j| j.0)
        .map_err(json_rejection)
}

pub fn json_rejection(e: axum::extract::rejection::JsonRejection) -> ApiError {
    use axum::extract::rejection::JsonRejection as J;
    let text = e.body_text();
    match e {
        J::JsonDataError(_) => {
            // "Failed to deserialize the JSON body into the target type: capital_pct: invalid …"
            let detail = text
                .split_once("target type: ")
                .map_or(text.as_str(), |x| x.1);
            let field = detail
                .split_once(": ")
                .map(|(f, _)| f.to_string())
                .filter(|f| !f.contains(' '))
                .or_else(|| detail.split('`').nth(1).map(str::to_string))
                .unwrap_or_else(|| "body".to_string());
            ApiError::field(&field, detail.to_string())
        }
        J::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON with Content-Type: application/json",
        ),
        _ => ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not valid JSON: {text}"),
        ),
    }
}

/// Every stored backtest, newest first.
#[utoipa::path(get, path = "/api/v1/backtests", tag = "backtests",
    responses((status = 200, body = [RunView]), (status = 401, body = ErrorBody)))]
pub async fn api_list(State(state): State<Arc<AppState>>) -> Result<Json<Vec<RunView>>, ApiError> {
    Ok(Json(
        runs(&state).await?.into_iter().map(|(v, _)| v).collect(),
    ))
}

/// One stored backtest with its result document (null until done).
#[derive(Debug, Serialize, ToSchema)]
pub struct RunDetail {
    pub run: RunView,
    /// The progress events stored (each an object: kind, stage, label, message, current, total,
    /// progress, timestamp_ms).
    #[schema(value_type = Vec<Object>)]
    pub progress: Value,
    /// The result document once done (as `vectura backtest --json` prints it), else null.
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
}

/// One backtest.
#[utoipa::path(get, path = "/api/v1/backtests/{id}", tag = "backtests",
    params(("id" = String, Path, description = "The run's id")),
    responses((status = 200, body = RunDetail), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn api_get(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<RunDetail>, ApiError> {
    let j = stored(&state, &id).await?;
    Ok(Json(RunDetail {
        run: run_view(&summary_of(&j)),
        progress: j.progress,
        result: j.result,
    }))
}

async fn cancel(state: &AppState, id: &str) -> Result<(), ApiError> {
    let j = stored(state, id).await?;
    if j.status.is_final() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "the run is already {}: nothing to cancel",
                j.status.as_str()
            ),
        ));
    }
    match state.jobs.get(id) {
        Some(live) => {
            live.cancel.cancel("cancelled from the dashboard");
            Ok(())
        }
        None => Err(ApiError::new(
            StatusCode::CONFLICT,
            "the run is not running in this server: it ends as failed at the next start",
        )),
    }
}

/// Cancels a queued or running backtest (it ends `cancelled`).
#[utoipa::path(post, path = "/api/v1/backtests/{id}/cancel", tag = "backtests",
    params(("id" = String, Path, description = "The run's id")),
    security(("session" = [], "csrf" = [])),
    responses((status = 202, description = "The cancel was passed on"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn api_cancel(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    cancel(&state, &id).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST /backtests/{id}/cancel` (form).
pub async fn cancel_form(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match cancel(&state, &id).await {
        Ok(()) => {}
        Err(e) if e.status == StatusCode::CONFLICT => {}
        Err(e) => return Err(e),
    }
    Ok(Redirect::to(&format!("/backtests/{id}")).into_response())
}

/// `POST /backtests/{id}/rerun` (form): the same input as a new run.
pub async fn rerun_form(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let j = stored(&state, &id).await?;
    let input: BacktestInput = serde_json::from_value(
        j.request.get("input").cloned().unwrap_or(Value::Null),
    )
    .map_err(|e| {
        ApiError::new(
            StatusCode::CONFLICT,
            format!("the stored input cannot be read: {e}"),
        )
    })?;
    let request = input.to_request().map_err(field_errors)?;
    let new = crate::jobs::start_backtest(
        &state,
        &input.name(),
        &serde_json::to_value(&input).unwrap_or(Value::Null),
        request,
    )
    .await?;
    Ok(Redirect::to(&format!("/backtests/{new}")).into_response())
}

/// `POST /backtests/{id}/delete` (form).
pub async fn delete_form(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let _ = stored(&state, &id).await?;
    if !state.store.delete_job(&id).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "cancel the run first: a queued or running run is kept",
        ));
    }
    Ok(Redirect::to("/backtests").into_response())
}

async fn result_of(state: &AppState, id: &str) -> Result<(String, Value), ApiError> {
    let j = stored(state, id).await?;
    let name = j.name.clone();
    let r = j.result.ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            format!("the run is {}: it has no result", j.status.as_str()),
        )
    })?;
    Ok((name, r))
}

fn file_name(name: &str, ext: &str) -> String {
    let stem: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{stem}.{ext}")
}

/// `GET /backtests/{id}/report.html`: the report crate's page. It runs its own inline scripts, so
/// it is served sandboxed (an origin of its own: no cookie, no API) and may be framed by our pages
/// only. `?download=1` saves it.
pub async fn report(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    q: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let (name, doc) = result_of(&state, &id).await?;
    let html = tokio::task::spawn_blocking(move || vectura_report::backtest::render_html(&doc))
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let mut res = html.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; frame-ancestors 'self'",
        ),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    if q.ok().is_some_and(|q| q.0.contains_key("download")) {
        if let Ok(v) = HeaderValue::from_str(&format!(
            "attachment; filename=\"{}\"",
            file_name(&name, "html")
        )) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(res)
}

/// The result document of a finished backtest (as `vectura backtest --json` prints it).
#[utoipa::path(get, path = "/api/v1/backtests/{id}/result.json", tag = "backtests",
    params(("id" = String, Path, description = "The run's id")),
    responses((status = 200, description = "The result document", content_type = "application/json"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn api_result(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (name, doc) = result_of(&state, &id).await?;
    let mut res = Json(doc).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}\"",
        file_name(&name, "json")
    )) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

#[derive(Template)]
#[template(path = "compare.html")]
struct ComparePage {
    chrome: Chrome,
    a: RunView,
    b: RunView,
}

/// `GET /backtests/compare?a=ID&b=ID`: two runs' reports side by side.
pub async fn compare(
    State(state): State<Arc<AppState>>,
    Extension(s): Extension<CurrentSession>,
    q: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = q.map_err(|e| ApiError::field("query", e.body_text()))?.0;
    let get = |k: &'static str| {
        q.get(k).cloned().ok_or_else(|| {
            ApiError::field(
                k,
                format!(
                    "give the id of the {} run as ?{k}=",
                    if k == "a" { "first" } else { "second" }
                ),
            )
        })
    };
    let (a, b) = (get("a")?, get("b")?);
    let a = run_view(&summary_of(&stored(&state, &a).await?));
    let b = run_view(&summary_of(&stored(&state, &b).await?));
    Ok(render(&ComparePage {
        chrome: Chrome::new("Compare", "backtests", &s),
        a,
        b,
    }))
}
