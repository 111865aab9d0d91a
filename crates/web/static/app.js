// Vectura dashboard: small progressive enhancements over server-rendered pages (no build step).
"use strict";

function csrfToken() {
  const m = document.querySelector('meta[name="csrf-token"]');
  return m ? m.getAttribute("content") : "";
}

// Shows `message` next to the form field named `field` (or in the form's status line).
function showFieldError(form, field, message) {
  const slot = field && form.querySelector('.field-error[data-for="' + field + '"]');
  if (slot) {
    slot.textContent = message;
    slot.hidden = false;
    const input = form.querySelector('[name="' + field + '"]');
    if (input) { input.setAttribute("aria-invalid", "true"); }
    return;
  }
  const status = form.querySelector(".status");
  if (status) { status.textContent = message; status.classList.add("error"); }
}

function clearErrors(form) {
  form.querySelectorAll(".field-error").forEach((e) => { e.hidden = true; e.textContent = ""; });
  form.querySelectorAll('[aria-invalid="true"]').forEach((e) => e.removeAttribute("aria-invalid"));
  const status = form.querySelector(".status");
  if (status) { status.textContent = ""; status.classList.remove("error"); }
}

// Sends a request with the CSRF header; resolves to {ok, status, body}.
async function send(method, url, body, contentType) {
  const headers = { "X-CSRF-Token": csrfToken(), "Accept": "application/json" };
  if (contentType) { headers["Content-Type"] = contentType; }
  const res = await fetch(url, { method, headers, body, credentials: "same-origin" });
  let data = null;
  try { data = await res.json(); } catch (_) { data = null; }
  return { ok: res.ok, status: res.status, body: data };
}

function setupImport() {
  const form = document.getElementById("import-form");
  if (!form) { return; }
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const symbol = form.elements.symbol.value.trim();
    const file = form.elements.file.files[0];
    if (!symbol) { showFieldError(form, "symbol", "give the symbol to store the bars under"); return; }
    if (!file) { showFieldError(form, "file", "choose a CSV or Parquet file"); return; }
    const q = new URLSearchParams({ filename: file.name });
    const tz = form.elements.tz.value.trim();
    if (tz) { q.set("tz", tz); }
    if (form.elements.strict.checked) { q.set("strict", "true"); }
    const status = form.querySelector(".status");
    status.textContent = "Importing " + file.name + "…";
    const url = form.dataset.api + encodeURIComponent(symbol) + "/import?" + q.toString();
    try {
      const r = await send("POST", url, file, "application/octet-stream");
      if (r.ok) {
        status.textContent = r.body.message;
        window.location.assign("/data");
      } else {
        const b = r.body || {};
        showFieldError(form, b.field, b.error || ("the import failed (HTTP " + r.status + ")"));
        if (status.textContent.startsWith("Importing")) { status.textContent = ""; }
      }
    } catch (e) {
      showFieldError(form, null, "the server cannot be reached: " + e);
    }
  });
}

function setupHeatmaps() {
  const el = document.getElementById("sweep-data");
  const box = document.getElementById("heatmaps");
  if (!el || !box || typeof Plotly === "undefined") { return; }
  const d = JSON.parse(el.textContent);
  const labels = document.getElementById("heat-labels");
  const draw = () => {
    box.innerHTML = "";
    d.maps.forEach((m, i) => {
      const div = document.createElement("div");
      div.className = "heatmap";
      div.id = "heatmap-" + i;
      box.appendChild(div);
      // Listed values as categories: every cell the same size whatever the spacing of the values.
      const trace = {
        type: "heatmap",
        x: d.x_values.map(String),
        y: d.y_values.map(String),
        z: m.z,
        customdata: m.set,
        zmin: d.z_min, zmax: d.z_max,
        colorscale: "Viridis",
        hovertemplate: d.x + " %{x}<br>" + d.y + " %{y}<br>" + d.metric + " %{z:.4g}<br>set %{customdata}<extra>" + m.market + "</extra>",
        showscale: i === 0,
      };
      if (labels && labels.checked) { trace.texttemplate = "%{z:.3g}"; }
      Plotly.newPlot(div, [trace], {
        title: { text: m.market },
        xaxis: { title: { text: d.x }, type: "category" },
        yaxis: { title: { text: d.y }, type: "category" },
        margin: { t: 40, l: 70, r: 20, b: 50 },
      }, { responsive: true, displaylogo: false });
      div.on("plotly_click", (ev) => {
        const p = ev.points && ev.points[0];
        if (p && p.customdata !== null && p.customdata !== undefined) {
          window.location.assign("/backtests?sweep=" + encodeURIComponent(d.run.id) + "&set=" + p.customdata);
        }
      });
    });
  };
  if (labels) { labels.addEventListener("change", draw); }
  draw();
}

// The progress card: one line per stage seen (§6.3), the latest with a bar and a percentage,
// fed by the stored events and then the live stream until the run ends.
function setupProgress() {
  const box = document.getElementById("progress");
  const list = document.getElementById("stages");
  if (!box || !list) { return; }
  const stages = new Map();
  const show = (ev) => {
    if (ev.kind !== "progress") { return; }
    let li = stages.get(ev.stage);
    if (!li) {
      // A later stage began: the earlier ones are over.
      stages.forEach((old) => {
        old.querySelector("progress").value = 100;
        old.querySelector(".pct").textContent = "100 %";
      });
      li = document.createElement("li");
      li.dataset.stage = ev.stage;
      li.innerHTML = '<span class="label"></span> <progress max="100"></progress> <span class="pct"></span> <span class="msg note"></span>';
      list.appendChild(li);
      stages.set(ev.stage, li);
    }
    li.querySelector(".label").textContent = ev.label;
    li.querySelector("progress").value = ev.progress;
    li.querySelector(".pct").textContent = ev.progress + " %";
    li.querySelector(".msg").textContent = ev.message;
  };
  const stored = document.getElementById("stored-events");
  if (stored) { JSON.parse(stored.textContent || "[]").forEach(show); }
  if (box.dataset.active !== "true" || typeof EventSource === "undefined") { return; }
  const src = new EventSource(box.dataset.events);
  src.addEventListener("progress", (e) => show(JSON.parse(e.data)));
  src.addEventListener("status", (e) => {
    const s = JSON.parse(e.data);
    const el = document.getElementById("run-status");
    if (el) { el.textContent = s.status; el.className = "status-" + s.status; }
  });
  src.addEventListener("end", (e) => {
    src.close();
    const s = JSON.parse(e.data);
    const el = document.getElementById("run-status");
    if (el) { el.textContent = s.status; el.className = "status-" + s.status; }
    // The page as stored now: the result, or the reason.
    window.setTimeout(() => window.location.reload(), 200);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setupImport();
  setupHeatmaps();
  setupProgress();
});
