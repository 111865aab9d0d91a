// The live pages: the overview and the performance page follow their server-sent events (no reload);
// halt and resume forms ask for a confirmation first.
"use strict";

function fmtMoney(v) { return (v === null || v === undefined || !isFinite(v)) ? "–" : Number(v).toFixed(2); }
function fmtPct(v) { return (v === null || v === undefined || !isFinite(v)) ? "–" : Number(v).toFixed(2) + " %"; }
function fmtNum(v) { return String(Number(Number(v).toFixed(4))); }

// New York wall-clock time (the exchange's) of an RFC 3339 time, as plotly reads a date.
const NY_PARTS = new Intl.DateTimeFormat("en-CA", { timeZone: "America/New_York", year: "numeric", month: "2-digit",
  day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
function nyTime(iso) {
  const p = {};
  NY_PARTS.formatToParts(new Date(iso)).forEach((x) => { p[x.type] = x.value; });
  return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute + ":" + p.second;
}

function setText(id, text) { const el = document.getElementById(id); if (el) { el.textContent = text; } }

function showOverview(o) {
  setText("as-of", o.as_of_ny);
  const asOf = document.getElementById("as-of");
  if (asOf) { asOf.setAttribute("datetime", o.as_of_text); }
  setText("market", o.market_open ? "open" : "closed");
  setText("next-open", o.next_open_ny || "–");
  if (o.bars_left !== null && o.bars_left !== undefined) { setText("bars-left", String(o.bars_left)); }
  setText("equity", fmtMoney(o.equity));
  setText("cash", fmtMoney(o.cash));
  setText("buying-power", fmtMoney(o.buying_power));
  setText("invested", fmtMoney(o.invested));
  setText("total-return", fmtPct(o.total_return_pct));
  setText("twr", fmtPct(o.twr_pct));
  setText("today-pnl", fmtMoney(o.today_pnl));
  const body = document.querySelector("#symbols tbody");
  if (!body) { return; }
  o.symbols.forEach((s) => {
    let tr = body.querySelector('tr[data-symbol="' + s.symbol + '"]');
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset.symbol = s.symbol;
      tr.innerHTML = '<td></td><td class="state"></td><td class="num shares"></td><td class="num last"></td><td class="num value"></td><td class="num trades"></td><td class="lots"></td><td class="buys"></td><td class="inflight"></td>';
      tr.firstChild.textContent = s.symbol;
      body.appendChild(tr);
    }
    const state = tr.querySelector(".state");
    state.textContent = s.state;
    if (s.halt_reason) {
      const r = document.createElement("span");
      r.className = "error halt-reason";
      r.textContent = s.halt_reason;
      state.appendChild(document.createElement("br"));
      state.appendChild(r);
    }
    tr.querySelector(".shares").textContent = fmtNum(s.shares);
    tr.querySelector(".last").textContent = fmtMoney(s.last_price);
    tr.querySelector(".value").textContent = fmtMoney(s.position_value);
    tr.querySelector(".trades").textContent = String(s.trades);
    const lines = (cell, items) => {
      cell.textContent = "";
      items.forEach((t) => { cell.appendChild(document.createTextNode(t)); cell.appendChild(document.createElement("br")); });
    };
    lines(tr.querySelector(".lots"), s.lots.map((l) => fmtNum(l.shares) + " @ " + fmtNum(l.price) + " → " + (l.sell_at === null ? "–" : fmtNum(l.sell_at))));
    lines(tr.querySelector(".buys"), s.buy_triggers.map((b) => b.direction + " " + fmtNum(b.price)));
    lines(tr.querySelector(".inflight"), s.in_flight.map((f) => f.side + " " + fmtNum(f.qty) + " (" + f.status + ")"));
  });
}

function setupOverview() {
  const box = document.getElementById("overview");
  if (!box || typeof EventSource === "undefined") { return; }
  const src = new EventSource(box.dataset.events);
  src.addEventListener("overview", (e) => {
    const o = JSON.parse(e.data);
    showOverview(o);
    box.dataset.seq = String(o.seq);
  });
}

function setupConfirms() {
  document.querySelectorAll("form[data-confirm]").forEach((f) => {
    f.addEventListener("submit", (e) => {
      if (!window.confirm(f.dataset.confirm)) { e.preventDefault(); }
    });
  });
}

// The performance page: equity and drawdown curves (plotly, as the backtest pages chart), then the
// server-sent `performance` events: new points appended to both curves (or the curves whole, with
// `reset`) and the metrics rewritten.
function setupPerformance() {
  const el = document.getElementById("performance-data");
  if (!el || typeof Plotly === "undefined") { return; }
  const d = JSON.parse(el.textContent);
  const charts = [["equity-chart", "equity", "Equity, $", "Equity", "none"],
    ["drawdown-chart", "drawdown_pct", "Drawdown, %", "Drawdown from the peak", "tozeroy"]];
  const draw = (c) => {
    charts.forEach(([id, key, name, title, fill]) => {
      const div = document.getElementById(id);
      if (!div) { return; }
      Plotly.react(div, [{ type: "scatter", mode: "lines", x: c.time.map(nyTime), y: c[key], name: name, fill: fill }], {
        title: { text: title },
        // New York time; weekends and the night (no bar from 20:00 to 04:00) take no width.
        xaxis: { type: "date", title: { text: "New York time" },
          rangebreaks: [{ bounds: ["sat", "mon"] }, { bounds: [20, 4], pattern: "hour" }] },
        yaxis: { title: { text: name } },
        margin: { t: 40, l: 70, r: 20, b: 40 },
        height: 320,
      }, { responsive: true, displaylogo: false });
    });
  };
  draw(d);
  const box = document.getElementById("performance");
  if (!box || !box.dataset.events || typeof EventSource === "undefined") { return; }
  const src = new EventSource(box.dataset.events);
  src.addEventListener("performance", (e) => {
    const u = JSON.parse(e.data);
    if (u.reset) {
      draw(u.curves);
    } else if (u.curves.time.length > 0) {
      charts.forEach(([id, key]) => {
        const div = document.getElementById(id);
        if (div) { Plotly.extendTraces(div, { x: [u.curves.time.map(nyTime)], y: [u.curves[key]] }, [0]); }
      });
    }
    setText("perf-bars", String(u.bars));
    const body = document.querySelector("#metrics tbody");
    u.metrics.forEach((m) => {
      let td = document.getElementById("m-" + m.id);
      if (!td && body) {
        const tr = document.createElement("tr");
        const th = document.createElement("th");
        th.textContent = m.label;
        td = document.createElement("td");
        td.className = "num";
        td.id = "m-" + m.id;
        tr.appendChild(th);
        tr.appendChild(td);
        body.appendChild(tr);
      }
      if (td) { td.textContent = m.value; }
    });
    const none = document.getElementById("no-metrics");
    if (none && u.metrics.length > 0) { none.remove(); }
  });
}

// The trades page: the round trips' P&L as a histogram, losses red and wins green (bins never
// straddle zero).
function setupPnl() {
  const el = document.getElementById("pnl-data");
  const div = document.getElementById("pnl-chart");
  if (!el || !div || typeof Plotly === "undefined") { return; }
  const h = JSON.parse(el.textContent);
  if (h.count.length === 0) {
    div.textContent = "No round trip yet: the distribution of their P&L shows here.";
    div.className = "note";
    return;
  }
  const mid = h.lo.map((lo) => lo + h.width / 2);
  Plotly.react(div, [{
    type: "bar", x: mid, y: h.count, width: h.width * 0.95,
    marker: { color: h.lo.map((lo) => (lo < 0 ? "#c0392b" : "#27ae60")) },
    hovertemplate: "%{customdata}<br>%{y} round trips<extra></extra>",
    customdata: h.lo.map((lo) => fmtMoney(lo) + " to " + fmtMoney(lo + h.width) + " $"),
  }], {
    title: { text: "P&L per round trip" },
    xaxis: { title: { text: "P&L, $" } },
    yaxis: { title: { text: "Round trips" } },
    bargap: 0,
    margin: { t: 40, l: 60, r: 20, b: 50 },
    height: 280,
  }, { responsive: true, displaylogo: false });
}

document.addEventListener("DOMContentLoaded", () => {
  setupPnl();
  setupPerformance();
  setupOverview();
  setupConfirms();
});
