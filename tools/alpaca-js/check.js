// Alpaca's official TypeScript SDK against vectura-emulator, unchanged: outside the test suite
// (issue 15: "other official clients are checked the same way outside the suite"; the suite runs
// alpaca-py, crates/emulator/tests/alpaca_py). Needs Node 20+ and the SDK from npm:
//
//   mkdir -p /tmp/alpaca-js && cd /tmp/alpaca-js && npm install @alpacahq/alpaca-trade-api@4.0.2
//   target/debug/vectura-emulator --now 1719842400 --key PKJS:js-secret &   # prints its port
//   NODE_PATH=/tmp/alpaca-js/node_modules node tools/alpaca-js/check.js http://127.0.0.1:PORT PKJS js-secret
//
// Through the SDK's generated REST classes (basePath = the emulator, paths carry /v2) and its
// TradingStream (url = ws://…/stream): account, v2 clock and calendar, a market order (filled at
// the next request), its lookup by id and client order id, the 422 of a reused client order id,
// a limit order, open/all lists, its cancel, positions, FILL activities, and the trade_updates
// events of both orders. Prints what it saw as JSON, then exits 1 if anything differs from what
// the emulator's books imply. The v3 clock (ClockApi.clock) is tried and reported, not required:
// the emulator serves v2 only.
const { trading, streaming } = require("@alpacahq/alpaca-trade-api");
const [base, keyId, secret] = process.argv.slice(2);
const out = { events: [], errors: [] };
const cfg = new trading.Configuration({ keyId, secret, basePath: base });
const orders = new trading.OrdersApi(cfg);
const accounts = new trading.AccountsApi(cfg);
const clock = new trading.ClockApi(cfg);
const positions = new trading.PositionsApi(cfg);
const activities = new trading.AccountActivitiesApi(cfg);

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

async function step(name, f) {
  try { out[name] = await f(); } catch (e) {
    let body = "";
    try { body = e.response ? await e.response.text() : ""; } catch (_) {}
    out.errors.push({ step: name, error: String(e && e.message || e), body });
  }
}

(async () => {
  const ws = base.replace("http://", "ws://") + "/stream";
  const s = new streaming.TradingStream({ credentials: { keyId, secret }, url: ws, reconnect: false });
  s.onTradeUpdate((u) => out.events.push([u.event, u.order && u.order.clientOrderId, u.order && u.order.status, u.timestamp && u.timestamp.toISOString(), u.executionId || null, u.price || null, u.qty || null]));
  s.onError((e) => out.errors.push({ step: "stream", error: String(e) }));
  s.onStateChange((st) => { (out.states = out.states || []).push(st); });
  s.onConnect(() => s.subscribeTradeUpdates());
  s.connect();
  for (let i = 0; i < 100 && !(out.states || []).includes("authenticated"); i++) await sleep(50);
  await sleep(500);
  await step("account", async () => { const a = await accounts.getAccount(); return { number: a.accountNumber, cash: a.cash, status: a.status, buyingPower: a.buyingPower }; });
  await step("clock", async () => { const c = await clock.legacyClock(); return { isOpen: c.isOpen, timestamp: String(c.timestamp), nextOpen: String(c.nextOpen), nextClose: String(c.nextClose) }; });
  await step("calendar", async () => { const c = await new trading.CalendarApi(cfg).legacyCalendar({ start: new Date("2024-07-01"), end: new Date("2024-07-05") }); return c.map((d) => [d.date, d.open, d.close]); });
  await step("clock_v3", async () => { const c = await clock.clock(); return c; });
  await step("market", async () => { const o = await orders.postOrder({ postOrderRequest: { symbol: "SPY", qty: "1", side: "buy", type: "market", timeInForce: "day", clientOrderId: "js-1" } }); return { id: o.id, status: o.status, qty: o.qty }; });
  await step("market_by_id", async () => { const o = await orders.getOrderByOrderID({ orderId: out.market.id }); return { status: o.status, filledQty: o.filledQty, filledAvgPrice: o.filledAvgPrice, filledAt: String(o.filledAt) }; });
  await step("by_client_id", async () => { const o = await orders.getOrderByClientOrderId({ clientOrderId: "js-1" }); return { id: o.id }; });
  await step("duplicate", async () => {
    try { await orders.postOrder({ postOrderRequest: { symbol: "SPY", qty: "1", side: "buy", type: "market", timeInForce: "day", clientOrderId: "js-1" } }); return "accepted?!"; }
    catch (e) { return { status: e.response && e.response.status, body: e.response ? await e.response.text() : String(e) }; }
  });
  await step("limit", async () => { const o = await orders.postOrder({ postOrderRequest: { symbol: "SPY", qty: "2", side: "buy", type: "limit", limitPrice: "1.00", timeInForce: "gtc", clientOrderId: "js-2" } }); return { id: o.id, status: o.status, limitPrice: o.limitPrice }; });
  await step("open", async () => (await orders.getAllOrders({ status: "open" })).map((o) => o.clientOrderId));
  await step("all", async () => (await orders.getAllOrders({ status: "all", limit: 50 })).map((o) => [o.clientOrderId, o.status]));
  await step("cancel", async () => { await orders.deleteOrderByOrderID({ orderId: out.limit.id }); return "ok"; });
  await sleep(300);
  await step("cancelled", async () => (await orders.getOrderByOrderID({ orderId: out.limit.id })).status);
  await step("positions", async () => (await positions.getAllOpenPositions()).map((p) => [p.symbol, p.qty, p.avgEntryPrice]));
  await step("fills", async () => { const r = await activities.getAccountActivitiesByActivityType({ activityType: "FILL" }); return r.length; });
  await sleep(1000);
  s.disconnect();
  console.log(JSON.stringify(out, null, 1));
  const fail = [];
  const want = (ok, what) => { if (!ok) fail.push(what); };
  const ev = (coid) => out.events.filter((e) => e[1] === coid).map((e) => e[0]).join(",");
  want(out.errors.every((e) => e.step === "clock_v3"), "no step failed but the v3 clock");
  want(out.account && out.account.status === "ACTIVE" && out.account.cash === "100000", "account");
  want(out.clock && out.clock.isOpen === true, "v2 clock open");
  want(out.calendar && out.calendar.length === 4 && out.calendar[2][2] === "13:00", "calendar with the early close");
  want(out.market && out.market.status === "new", "market order accepted as new");
  want(out.market_by_id && out.market_by_id.status === "filled" && out.market_by_id.filledQty === "1", "market order filled");
  want(out.by_client_id && out.market && out.by_client_id.id === out.market.id, "lookup by client order id");
  want(out.duplicate && out.duplicate.status === 422, "a reused client order id is a 422");
  want(JSON.stringify(out.open) === JSON.stringify(["js-2"]), "open orders: the limit order");
  want(out.cancelled === "canceled", "the limit order cancelled");
  want(out.positions && out.positions.length === 1 && out.positions[0][1] === "1" && out.positions[0][2] === out.market_by_id.filledAvgPrice, "the position at the fill price");
  want(out.fills === 1, "one FILL activity");
  want(ev("js-1") === "new,fill" && ev("js-2") === "new,canceled", "trade_updates of both orders: " + ev("js-1") + " / " + ev("js-2"));
  if (fail.length) { console.error("differs: " + fail.join("; ")); process.exit(1); }
  console.error("ok: the SDK placed, read, listed and cancelled orders and received their trade updates");
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
