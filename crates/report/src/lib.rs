//! Vectura's self-contained HTML reports (plotly.js embedded, no network needed to view them):
//! [`backtest::render_html`] for a backtest result, [`sweep::render`] / [`sweep::render_markets`]
//! for a sweep's heat maps and top table. Rendering only: the callers write the pages.

// `!(x > 0.0)` is deliberate: NaN must fail every check.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod backtest;
pub mod sweep;

pub use backtest::{chart_payload, plotly_js, render_html};
