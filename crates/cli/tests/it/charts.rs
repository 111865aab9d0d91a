//! What a reader sees in the HTML reports, drawn by a real headless chromium: the backtest chart and
//! trade table in New York time across a DST change (and the UTC toggle), the sweep heat maps with
//! evenly sized cells for listed values, each cell's value on hover and as a label, and one colour
//! scale shared by several markets.
//!
//! Each page is copied with a probe script appended; chromium runs the page's own scripts and the
//! probe, and `--dump-dom` prints the document with the probe's findings in `<pre id="probe">`.

use crate::common::{scratch, vectura};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The chromium binary, from VECTURA_CHROMIUM or PATH. Its tests are ignored unless asked for; asked
/// for, a missing browser fails them rather than passing by skipping.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("VECTURA_CHROMIUM") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "VECTURA_CHROMIUM={} is not a file: run scripts/test (it installs chromium)",
            p.display()
        );
        return p;
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("chromium"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!("chromium is not installed: run scripts/test (it installs it), or set VECTURA_CHROMIUM")
        })
}

/// Opens `page` in headless chromium with `probe` (JavaScript that ends by calling
/// `report(value)`) run after the page's scripts, and returns what the probe reported.
fn probe(page: &Path, probe: &str) -> Value {
    let html = std::fs::read_to_string(page).unwrap();
    let at = html.rfind("</body>").expect("</body>");
    let script = format!(
        "<script>function report(v) {{ var p = document.createElement('pre'); p.id = 'probe'; \
         p.textContent = encodeURIComponent(JSON.stringify(v)); document.body.appendChild(p); }}\n\
         setTimeout(function () {{ try {{ {probe} }} catch (e) {{ report({{ error: String(e) }}); }} }}, 1500);</script>"
    );
    let probed = page.with_extension("probe.html");
    std::fs::write(&probed, format!("{}{script}{}", &html[..at], &html[at..])).unwrap();
    let profile = probed.with_extension("profile");
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            // No reaching out: nothing outside the page is needed, and the network here is closed.
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1400,1000",
            "--virtual-time-budget=20000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("file://{}", probed.display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom
        .find("<pre id=\"probe\">")
        .unwrap_or_else(|| panic!("no probe output: {}", String::from_utf8_lossy(&out.stderr)))
        + "<pre id=\"probe\">".len();
    let end = start + dom[start..].find("</pre>").unwrap();
    let v: Value = serde_json::from_str(&percent_decode(&dom[start..end])).unwrap();
    assert!(v.get("error").is_none(), "probe failed: {v}");
    v
}

/// Undoes `encodeURIComponent` (UTF-8 bytes as `%XX`).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Backtest report on the bundled SPY (January and March 2011; DST began on 13 March 2011).
#[test]
#[ignore = "needs chromium: run scripts/test"]
fn backtest_report_shows_new_york_time_across_a_dst_change_and_toggles_to_utc() {
    let d = scratch("charts-backtest");
    let page = d.join("report.html");
    let json = d.join("run.json");
    // An active set, so that trades fall on both sides of the change.
    let o = vectura(&[
        "backtest",
        "--buy-below-pct",
        "0.3",
        "--sell-above-pct",
        "0.5",
        "--buy-after-sell-pct",
        "0.5",
        "--order-gap-pct",
        "0.2",
        "--capital-pct",
        "20",
        "--report",
        page.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::write(&json, &o.stdout).unwrap();
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let v = probe(
        &page,
        r#"
        var gd = document.getElementById('chart');
        var cells = function () { return Array.prototype.map.call(document.querySelectorAll('table.trades time'), function (t) { return t.textContent; }); };
        var title = function () { return document.querySelector('.g-xtitle').textContent; };
        var ticks = function () { return Array.prototype.map.call(gd.querySelectorAll('.xaxislayer-above .xtick text'), function (t) { return t.textContent; }); };
        var dd = gd._fullData.filter(function (t) { return t.name === 'Drawdown'; })[0];
        var price = gd._fullData.filter(function (t) { return t.name === 'Price'; })[0];
        var before = { title: title(), cells: cells(), x0: price.x[0], xn: price.x[price.x.length - 1], ticks: ticks(),
                       dd_min: Math.min.apply(null, dd.y), yrange3: gd._fullLayout.yaxis3.range };
        document.getElementById('utc').click();
        setTimeout(function () {
          var p2 = gd._fullData.filter(function (t) { return t.name === 'Price'; })[0];
          report({ before: before, after: { title: title(), cells: cells(), x0: p2.x[0] } });
        }, 300);
        "#,
    );
    let (b, a) = (&v["before"], &v["after"]);
    assert_eq!(b["title"], "time (New York)");
    assert_eq!(a["title"], "time (UTC)");
    // The first bar, 2011-01-03 14:30 UTC, is 09:30 EST on the axis; the toggle shows it in UTC.
    assert_eq!(b["x0"], "2011-01-03 09:30:00", "{b}");
    assert_eq!(a["x0"], "2011-01-03 14:30:00", "{a}");
    // The last bar, 2011-03-31 19:59 UTC, is 15:59 EDT.
    assert_eq!(b["xn"], "2011-03-31 15:59:00", "{b}");
    // The trade table: every time in New York with its zone, EST before 13 March and EDT after.
    let cells: Vec<&str> = b["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let trades = r["trades"].as_array().unwrap();
    assert!(!cells.is_empty() && cells.len() == trades.len().min(500));
    let dst = crate::common::secs("2011-03-13T07:00:00Z");
    let (mut est, mut edt) = (0, 0);
    for (c, t) in cells.iter().zip(trades) {
        let utc = crate::common::secs(t["time"].as_str().unwrap());
        let (zone, hours) = if utc < dst { ("EST", 5) } else { ("EDT", 4) };
        let ny = chrono::DateTime::from_timestamp(utc - hours * 3600, 0).unwrap();
        assert_eq!(
            *c,
            format!("{} {zone}", ny.format("%Y-%m-%d %H:%M")),
            "trade at {utc}"
        );
        if utc < dst {
            est += 1;
        } else {
            edt += 1;
        }
    }
    assert!(
        est > 0 && edt > 0,
        "trades on both sides of the change: {est} EST, {edt} EDT"
    );
    // With the toggle, the table reads UTC.
    let after: Vec<&str> = a["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let t0 = crate::common::secs(trades[0]["time"].as_str().unwrap());
    assert_eq!(
        after[0],
        format!(
            "{} UTC",
            chrono::DateTime::from_timestamp(t0, 0)
                .unwrap()
                .format("%Y-%m-%d %H:%M")
        )
    );
    // The drawdown panel's lowest point is the max-drawdown metric.
    let metric = f(&r["metrics"]["maximum_drawdown_pct"]);
    assert_eq!(f(&b["dd_min"]), -metric);
    assert!(f(&b["yrange3"][0]) <= -metric);
}

/// A heat map over listed values `0.5,1,3,10` × `5,10` for two markets.
#[test]
#[ignore = "needs chromium: run scripts/test"]
fn heat_maps_have_even_cells_values_on_hover_and_labels_and_one_colour_scale() {
    let d = scratch("charts-heat");
    let page = d.join("heat.html");
    let daily = crate::common::fixtures().join("daily");
    let mut text = String::from("symbol,date,open,high,low,close,volume\n");
    for (sym, file) in [
        ("AAPL", "AAPL_2000_2013_quandl_wiki.csv"),
        ("MSFT", "MSFT_2000_2013_quandl_wiki.csv"),
    ] {
        for line in std::fs::read_to_string(daily.join(file))
            .unwrap()
            .lines()
            .skip(1)
        {
            let c: Vec<&str> = line.split(',').collect();
            if c[0].starts_with("2011-") {
                text.push_str(&format!("{sym},{}\n", c[..6].join(",")));
            }
        }
    }
    let bars = d.join("two.csv");
    std::fs::write(&bars, text).unwrap();
    let o = vectura(&[
        "sweep",
        "--data",
        bars.to_str().unwrap(),
        "--symbol",
        "MSFT",
        "--symbol",
        "AAPL",
        "--param",
        "buy_below_pct=0.5,1,3,10",
        "--param",
        "sell_above_pct=5,10",
        "--rank-by",
        "total_return_pct",
        "--no-db",
        "--report",
        page.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = probe(
        &page,
        r#"
        var out = [];
        [0, 1].forEach(function (i) {
          var gd = document.getElementById('heat-' + i);
          var pos = Array.prototype.map.call(gd.querySelectorAll('.xaxislayer-above g.xtick'), function (t) {
            return { x: parseFloat(/translate\(([-0-9.e]+)/.exec(t.querySelector('text').getAttribute('transform'))[1]), text: t.textContent };
          });
          var ypos = Array.prototype.map.call(gd.querySelectorAll('.yaxislayer-above g.ytick'), function (t) {
            return parseFloat(/translate\([-0-9.e]+,\s*([-0-9.e]+)/.exec(t.querySelector('text').getAttribute('transform'))[1]);
          });
          var t = gd._fullData[0];
          var colorbar = Array.prototype.map.call(gd.querySelectorAll('.colorbar .ytick text, .colorbar .cbaxis text'), function (e) { return e.textContent; });
          var labels = Array.prototype.map.call(gd.querySelectorAll('.hm text'), function (e) { return e.textContent; });
          Plotly.Fx.hover(gd, [{ curveNumber: 0, pointNumber: [1, 2] }]);
          var hover = gd.querySelector('.hovertext');
          out.push({ ticks: pos, yticks: ypos, zmin: t.zmin, zmax: t.zmax, z: gd.data[0].z, colorbar: colorbar, labels: labels,
                     hover: hover ? hover.textContent : null, xtype: gd._fullLayout.xaxis.type });
        });
        var cb = document.querySelector('input.show-labels[data-chart="heat-0"]');
        cb.click();
        setTimeout(function () {
          var gd = document.getElementById('heat-0');
          report({ maps: out, labels_after_uncheck: gd.querySelectorAll('.hm text').length });
        }, 300);
        "#,
    );
    let maps = v["maps"].as_array().unwrap();
    assert_eq!(maps.len(), 2);
    let all_z: Vec<f64> = maps
        .iter()
        .flat_map(|m| m["z"].as_array().unwrap().clone())
        .flat_map(|row| row.as_array().unwrap().clone())
        .filter_map(|z| z.as_f64())
        .collect();
    let (lo, hi) = all_z
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &z| {
            (l.min(z), h.max(z))
        });
    assert!(lo < hi, "the maps have different values: {all_z:?}");
    for (i, m) in maps.iter().enumerate() {
        assert_eq!(m["xtype"], "category");
        // Four listed values, four ticks in value order, evenly spaced: the cells are equally wide.
        let ticks = m["ticks"].as_array().unwrap();
        let names: Vec<&str> = ticks.iter().map(|t| t["text"].as_str().unwrap()).collect();
        assert_eq!(names, ["0.5", "1", "3", "10"], "map {i}");
        let xs: Vec<f64> = ticks.iter().map(|t| f(&t["x"])).collect();
        let w = xs[1] - xs[0];
        assert!(w > 50.0, "map {i}: cells {w} px wide");
        for p in xs.windows(2) {
            assert!(
                (p[1] - p[0] - w).abs() < 0.5,
                "map {i}: uneven cells {xs:?}"
            );
        }
        let ys: Vec<f64> = m["yticks"].as_array().unwrap().iter().map(f).collect();
        assert_eq!(ys.len(), 2, "map {i}: {ys:?}");
        // One colour scale for both markets: the range of every value of both maps.
        assert_eq!((f(&m["zmin"]), f(&m["zmax"])), (lo, hi), "map {i}");
        assert!(
            !m["colorbar"].as_array().unwrap().is_empty(),
            "map {i}: a colour bar"
        );
        assert_eq!(
            m["colorbar"], maps[0]["colorbar"],
            "map {i}: the colour bars read alike"
        );
        // 8 cells: each shows its value (two decimals).
        let z = &m["z"];
        let labels = m["labels"].as_array().unwrap();
        assert_eq!(labels.len(), 8, "map {i}: {labels:?}");
        let want = format!("{:.2}", f(&z[0][0]));
        assert!(
            labels.iter().any(|l| l == want.as_str()),
            "map {i}: {want} in {labels:?}"
        );
        // Hover on the cell sell_above_pct=10 (row 1), buy_below_pct=3 (column 2): its value.
        let hover = m["hover"].as_str().expect("a hover label");
        assert!(
            hover.contains("buy_below_pct 3")
                && hover.contains("sell_above_pct 10")
                && hover.contains(&format!("{:.4}", f(&z[1][2]))),
            "map {i}: {hover}"
        );
    }
    assert_eq!(
        v["labels_after_uncheck"], 0,
        "the checkbox hides the labels"
    );
}
