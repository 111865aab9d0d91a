//! The self-contained HTML report of `vectura sweep --report FILE.html`: a heat map of the ranking
//! metric over two swept parameters (each cell the best value over the other parameters) and the
//! top table. plotly.js is embedded as in the backtest report, so the page needs no network.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::{json, Value};
use vectura_backtest::sweep::{metric, Plan, SweepRow};
use vectura_backtest::Market;

use crate::backtest::{esc, json_for_script, plotly_js};

/// Why a heat map cannot be drawn as asked (the message names the flag and the fix).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HeatError {
    /// The request field at fault: `heatmap_x`, `heatmap_y` or `report`.
    pub field: &'static str,
    pub message: String,
}

/// Refuses with a [`HeatError`] naming `field`.
macro_rules! refuse {
    ($field:expr, $($arg:tt)*) => {
        return Err(HeatError { field: $field, message: format!($($arg)*) })
    };
}

/// Cells a heat map may have: beyond this the page would be too large to open comfortably.
const MAX_CELLS: usize = 1_000_000;
/// Maps of at most this many cells show each cell's value as a label at first (a checkbox toggles it).
const LABEL_CELLS: usize = 150;

/// One heat-map axis: a swept parameter's values and where each value sits.
struct Axis {
    name: String,
    values: Vec<f64>,
    /// f64 bits → position; rows carry the plan's values exactly, so bits identify them.
    index: HashMap<u64, usize>,
}

impl Axis {
    fn new(plan: &Plan, name: &str, flag: &str) -> Result<Axis, HeatError> {
        let name = name.trim().replace('-', "_");
        let Some(a) = plan.axes.iter().find(|a| a.name == name) else {
            let swept: Vec<&str> = plan.axes.iter().map(|a| a.name.as_str()).collect();
            let field = if flag == "--heatmap-x" {
                "heatmap_x"
            } else {
                "heatmap_y"
            };
            refuse!(
                field,
                "{flag} {name}: the heat map's axes must be swept parameters: give one of {}",
                swept.join(", ")
            );
        };
        let mut values = a.values.clone();
        values.sort_by(f64::total_cmp);
        values.dedup_by(|a, b| a.to_bits() == b.to_bits());
        let index = values
            .iter()
            .enumerate()
            .map(|(i, v)| (v.to_bits(), i))
            .collect();
        Ok(Axis {
            name,
            values,
            index,
        })
    }

    fn pos(&self, v: f64) -> Option<usize> {
        self.index.get(&v.to_bits()).copied()
    }
}

/// The best metric value per (x, y) cell, gathered while the sweep runs.
pub struct Heat {
    metric: String,
    x: Axis,
    /// `None` when only one parameter is swept: the map is one row.
    y: Option<Axis>,
    best: HashMap<(usize, usize), f64>,
}

fn param(r: &SweepRow, name: &str) -> f64 {
    let p = &r.params;
    match name {
        "capital_pct" => p.capital_pct,
        "buy_below_pct" => p.buy_below_pct,
        "sell_above_pct" => p.sell_above_pct,
        "buy_after_sell_pct" => p.buy_after_sell_pct,
        "cash_floor" => p.cash_floor,
        _ => p.order_gap_pct,
    }
}

impl Heat {
    /// A heat map of `metric` over `x` and `y` (default: the first two swept parameters).
    pub fn new(
        plan: &Plan,
        metric: &str,
        x: Option<&str>,
        y: Option<&str>,
    ) -> Result<Heat, HeatError> {
        let first = plan
            .axes
            .first()
            .map(|a| a.name.as_str())
            .unwrap_or_default();
        let x = Axis::new(plan, x.unwrap_or(first), "--heatmap-x")?;
        let y_name = y.or_else(|| {
            plan.axes
                .iter()
                .map(|a| a.name.as_str())
                .find(|n| *n != x.name)
        });
        let y = y_name
            .map(|n| Axis::new(plan, n, "--heatmap-y"))
            .transpose()?;
        if let Some(y) = &y {
            if y.name == x.name {
                refuse!(
                    "heatmap_y",
                    "--heatmap-x and --heatmap-y are both {}: give two different swept parameters",
                    x.name
                );
            }
            let cells = x.values.len().saturating_mul(y.values.len());
            if cells > MAX_CELLS {
                refuse!(
                    "report",
                    "--report: the heat map of {} × {} would have {cells} cells, more than {MAX_CELLS}: pick --heatmap-x/--heatmap-y with fewer values",
                    x.name,
                    y.name
                );
            }
        } else if x.values.len() > MAX_CELLS {
            refuse!(
                "report",
                "--report: {} has more than {MAX_CELLS} values: sweep fewer",
                x.name
            );
        }
        Ok(Heat {
            metric: metric.to_string(),
            x,
            y,
            best: HashMap::new(),
        })
    }

    /// Keeps the row's metric if it is the best of its cell so far (higher is better).
    pub fn offer(&mut self, r: &SweepRow) {
        let Some(v) = metric(&r.metrics, &self.metric).filter(|v| v.is_finite()) else {
            return;
        };
        let Some(xi) = self.x.pos(param(r, &self.x.name)) else {
            return;
        };
        let yi = match &self.y {
            Some(y) => match y.pos(param(r, &y.name)) {
                Some(i) => i,
                None => return,
            },
            None => 0,
        };
        let cell = self.best.entry((xi, yi)).or_insert(v);
        if v > *cell {
            *cell = v;
        }
    }

    /// The plotly layout of the map: its axes named after the parameters, one evenly sized cell per
    /// listed value (category axes: 0.5, 1 and 3 get equal widths, in value order).
    fn layout(&self) -> Value {
        json!({
            "margin": { "t": 20 },
            "xaxis": { "title": { "text": self.x.name }, "type": "category", "categoryorder": "array", "categoryarray": labels(&self.x.values) },
            "yaxis": { "title": { "text": self.y.as_ref().map_or("", |a| a.name.as_str()) }, "type": "category" },
        })
    }

    /// The lowest and highest cell value, if any cell has one.
    fn range(&self) -> Option<(f64, f64)> {
        let lo = self.best.values().cloned().reduce(f64::min)?;
        let hi = self.best.values().cloned().reduce(f64::max)?;
        Some((lo, hi))
    }

    /// The plotly heatmap trace (cells no set reached are null, drawn empty), coloured over `scale`
    /// (the map's own range, or one shared by several maps). Axis values are the values as text, so
    /// plotly treats them as categories whatever their spacing.
    fn trace(&self, scale: Option<(f64, f64)>) -> Value {
        let rows = self.y.as_ref().map_or(1, |y| y.values.len());
        let z: Vec<Vec<Value>> = (0..rows)
            .map(|yi| {
                (0..self.x.values.len())
                    .map(|xi| self.best.get(&(xi, yi)).map_or(Value::Null, |v| json!(v)))
                    .collect()
            })
            .collect();
        let y: Vec<Value> = match &self.y {
            Some(a) => labels(&a.values),
            None => vec![json!("all")],
        };
        let cells = self.x.values.len() * rows;
        let mut t = json!({
            "type": "heatmap",
            "x": labels(&self.x.values),
            "y": y,
            "z": z,
            "xgap": 1,
            "ygap": 1,
            "colorscale": "Viridis",
            "colorbar": { "title": { "text": self.metric } },
            "hovertemplate": format!(
                "{} %{{x}}<br>{} %{{y}}<br>{} %{{z:.4f}}<extra></extra>",
                self.x.name,
                self.y.as_ref().map_or("", |a| a.name.as_str()),
                self.metric
            ),
            // The cell label the page's checkbox shows or hides.
            "labeltemplate": "%{z:.2f}",
        });
        if cells <= LABEL_CELLS {
            t["texttemplate"] = json!("%{z:.2f}");
        }
        if let Some((lo, hi)) = scale {
            t["zmin"] = json!(lo);
            t["zmax"] = json!(hi);
            t["zauto"] = json!(false);
        }
        t
    }
}

/// Axis values as text (Rust's shortest form, which parses back to the same value).
fn labels(values: &[f64]) -> Vec<Value> {
    values.iter().map(|v| json!(v.to_string())).collect()
}

/// The range of every map together: several markets share one colour scale.
fn shared_range<'a>(heats: impl Iterator<Item = &'a Heat>) -> Option<(f64, f64)> {
    heats
        .filter_map(Heat::range)
        .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
}

/// What the page says about the sweep.
pub struct Summary<'a> {
    pub symbol: &'a str,
    pub start: String,
    pub end: String,
    pub fill: String,
    pub sets: u64,
    pub bars: usize,
    pub seconds: f64,
}

/// Renders the page of a one-market sweep.
pub fn render(s: &Summary, heat: &Heat, top: &[&SweepRow]) -> String {
    let m = &heat.metric;
    let mut body = String::with_capacity(64 * 1024);
    let _ = write!(
        body,
        "<header><h1>Vectura sweep — {} <span class=\"muted\">{} → {}</span></h1>\
         <p class=\"muted\">{} sets × {} bars in {:.3} s, fill {}, ranked by {}.</p></header>",
        esc(s.symbol),
        esc(&s.start),
        esc(&s.end),
        s.sets,
        s.bars,
        s.seconds,
        esc(&s.fill),
        esc(m)
    );
    heat_section(&mut body, heat, "", "heat");
    let rows: Vec<(Option<&Market>, &SweepRow)> = top.iter().map(|r| (None, *r)).collect();
    top_table(&mut body, m, &rows);
    let data = json!({
        "traces": [heat.trace(heat.range())],
        "layout": heat.layout(),
    });
    page(s.symbol, &body, &data, HEAT_JS)
}

/// A market's name on the page: its symbol and date range.
fn market_title(m: &Market) -> String {
    format!("{} {} → {}", m.symbol, m.start, m.end)
}

/// Renders the page of a sweep of several markets: one heat map per market, in market order, and
/// the top table ranked across all markets with each row's market. `s.sets` is the sets per market
/// and `s.bars` the bars of all markets.
pub fn render_markets(
    s: &Summary,
    maps: &[(&Market, &Heat)],
    top: &[(&Market, &SweepRow)],
) -> String {
    let Some((_, first)) = maps.first() else {
        // The caller has a heat map per market and at least one market; nothing to draw otherwise.
        return String::new();
    };
    let m = &first.metric;
    let mut body = String::with_capacity(64 * 1024);
    let _ = write!(
        body,
        "<header><h1>Vectura sweep — {} <span class=\"muted\">{} → {}</span></h1>\
         <p class=\"muted\">{} markets × {} sets = {} rows over {} bars in {:.3} s, fill {}, ranked by {}.</p></header>",
        esc(s.symbol),
        esc(&s.start),
        esc(&s.end),
        maps.len(),
        s.sets,
        s.sets.saturating_mul(maps.len() as u64),
        s.bars,
        s.seconds,
        esc(&s.fill),
        esc(m)
    );
    let mut charts = Vec::with_capacity(maps.len());
    let scale = shared_range(maps.iter().map(|(_, h)| *h));
    for (i, (market, heat)) in maps.iter().enumerate() {
        let title = market_title(market);
        heat_section(&mut body, heat, &format!("{title}: "), &format!("heat-{i}"));
        // The trace and the chart carry the market's name, so each map says whose it is.
        let mut trace = heat.trace(scale);
        trace["name"] = json!(title);
        let mut layout = heat.layout();
        layout["title"] = json!({ "text": title });
        layout["margin"] = json!({ "t": 40 });
        charts.push(json!({ "traces": [trace], "layout": layout }));
    }
    let rows: Vec<(Option<&Market>, &SweepRow)> =
        top.iter().map(|(mk, r)| (Some(*mk), *r)).collect();
    top_table(&mut body, m, &rows);
    page(s.symbol, &body, &json!({ "charts": charts }), HEATS_JS)
}

/// Appends a heat map's card: `lead` before its heading (the market, or nothing), `id` its chart.
fn heat_section(body: &mut String, heat: &Heat, lead: &str, id: &str) {
    let m = &heat.metric;
    let _ = write!(
        body,
        "<section class=\"card\"><h2>{}{} over {} × {}</h2><p class=\"note\">Each cell is the best {} \
         over the other swept parameters (its value on hover); empty cells had no finite value. \
         Several markets share one colour scale. <label class=\"labels\"><input type=\"checkbox\" \
         class=\"show-labels\" data-chart=\"{}\"{}> values in cells</label></p>\
         <div id=\"{}\" class=\"chart\"></div></section>",
        esc(lead),
        esc(m),
        esc(&heat.x.name),
        esc(heat.y.as_ref().map_or("—", |a| a.name.as_str())),
        esc(m),
        esc(id),
        if heat.x.values.len() * heat.y.as_ref().map_or(1, |y| y.values.len()) <= LABEL_CELLS {
            " checked"
        } else {
            ""
        },
        esc(id)
    );
}

/// Appends the top table; rows with a market lead with its symbol, start and end (all rows of a
/// table have one or none).
fn top_table(body: &mut String, m: &str, top: &[(Option<&Market>, &SweepRow)]) {
    let several = top.iter().any(|(mk, _)| mk.is_some());
    let _ = write!(
        body,
        "<section class=\"card\"><h2>Top {} by {}</h2><table class=\"top\"><tr><th>rank</th>{}<th>set</th>\
         <th>capital_pct</th><th>buy_below_pct</th><th>sell_above_pct</th><th>buy_after_sell_pct</th>\
         <th>cash_floor</th><th>order_gap_pct</th><th>{}</th><th>max drawdown %</th><th>trades</th>\
         <th>final equity</th></tr>",
        top.len(),
        esc(m),
        if several {
            "<th>symbol</th><th>start</th><th>end</th>"
        } else {
            ""
        },
        esc(m)
    );
    let num = |v: Option<f64>, dec: usize| match v {
        Some(x) if x.is_finite() => format!("{x:.dec$}"),
        _ => "—".to_string(),
    };
    for (i, (mk, r)) in top.iter().enumerate() {
        let p = &r.params;
        let market = match mk {
            Some(mk) => format!(
                "<td>{}</td><td>{}</td><td>{}</td>",
                esc(&mk.symbol),
                mk.start,
                mk.end
            ),
            None => String::new(),
        };
        let _ = write!(
            body,
            "<tr data-set=\"{set}\"><td>{}</td>{market}<td>{set}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            i + 1,
            p.capital_pct,
            p.buy_below_pct,
            p.sell_above_pct,
            p.buy_after_sell_pct,
            p.cash_floor,
            p.order_gap_pct,
            num(metric(&r.metrics, m), 4),
            num(Some(r.metrics.maximum_drawdown_pct), 3),
            r.metrics.total_trades,
            num(Some(r.final_equity), 2),
            set = r.set,
        );
    }
    body.push_str("</table></section>");
}

/// The whole page around `body`: the data as JSON, plotly.js and the script `js` that draws it.
fn page(title: &str, body: &str, data: &Value, js: &str) -> String {
    let mut html = String::with_capacity(plotly_js().len() + body.len() + 8 * 1024);
    html.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(html, "<title>Vectura sweep — {}</title>", esc(title));
    html.push_str("<style>");
    html.push_str(CSS);
    html.push_str("</style>\n</head>\n<body>\n<main>\n");
    html.push_str(body);
    html.push_str("<footer>Generated by vectura. Self-contained: plotly.js is embedded, no network needed.</footer>\n");
    html.push_str("</main>\n<script type=\"application/json\" id=\"vectura-data\">");
    html.push_str(&json_for_script(data));
    html.push_str("</script>\n");
    html.push_str(plotly_js());
    html.push_str("\n<script>");
    html.push_str(LABELS_JS);
    html.push_str(js);
    html.push_str("</script>\n</body>\n</html>\n");
    html
}

const CSS: &str = r#"
body { margin:0; background:#f6f8fa; color:#1f2328; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif; }
main { max-width:1280px; margin:0 auto; padding:20px; }
h1 { font-size:24px; margin:0 0 6px; } .muted, .note { color:#656d76; font-weight:normal; }
.card { background:#fff; border:1px solid #d0d7de; border-radius:8px; padding:12px 14px; margin:14px 0; overflow:auto; }
.card h2 { margin:0 0 8px; font-size:15px; }
.chart { width:100%; height:620px; }
table.top { border-collapse:collapse; width:100%; }
.top th { background:#f0f3f6; padding:4px 8px; text-align:right; }
.top td { padding:3px 8px; text-align:right; font-variant-numeric:tabular-nums; border-top:1px solid #eef1f4; }
footer { color:#656d76; font-size:12px; margin:20px 0 8px; }
"#;

/// The cell-label checkboxes: each shows or hides the values in its chart's cells.
const LABELS_JS: &str = r#"
function labels() {
  var boxes = document.querySelectorAll('input.show-labels');
  for (var i = 0; i < boxes.length; i++) (function (cb) {
    cb.addEventListener('change', function () {
      var gd = document.getElementById(cb.getAttribute('data-chart'));
      if (gd && gd.data) Plotly.restyle(gd, { texttemplate: cb.checked ? gd.data[0].labeltemplate : '' });
    });
  })(boxes[i]);
}
"#;

const HEAT_JS: &str = r#"
(function () {
  var box = document.getElementById('heat');
  var d;
  try { d = JSON.parse(document.getElementById('vectura-data').textContent); } catch (e) { box.textContent = 'Heat map data unreadable.'; return; }
  if (typeof Plotly === 'undefined') { box.textContent = 'Heat map unavailable: plotly.js did not load.'; return; }
  Plotly.newPlot(box, d.traces, d.layout, { responsive: true, displaylogo: false });
  labels();
})();
"#;

/// Draws every market's map of a several-market page into its own chart (`heat-0`, `heat-1`, …).
const HEATS_JS: &str = r#"
(function () {
  var boxes = document.querySelectorAll('.chart');
  var say = function (t) { for (var i = 0; i < boxes.length; i++) boxes[i].textContent = t; };
  var d;
  try { d = JSON.parse(document.getElementById('vectura-data').textContent); } catch (e) { say('Heat map data unreadable.'); return; }
  if (typeof Plotly === 'undefined') { say('Heat map unavailable: plotly.js did not load.'); return; }
  d.charts.forEach(function (c, i) {
    Plotly.newPlot(document.getElementById('heat-' + i), c.traces, c.layout, { responsive: true, displaylogo: false });
  });
  labels();
})();
"#;
