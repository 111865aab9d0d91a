"""Alpaca's official Python SDK (alpaca-py) against the Vectura emulator, unchanged.

Usage: check.py BASE_URL KEY SECRET. Places, reads, lists and cancels orders with TradingClient and
receives their trade updates with TradingStream, both pointed at the emulator with url_override,
then prints one JSON object describing what it saw (the Rust test asserts it). Exits non-zero on
any unexpected exception.
"""

import json
import sys
import threading
import time

from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import GetOrdersRequest, LimitOrderRequest, MarketOrderRequest
from alpaca.trading.stream import TradingStream

base, key, secret = sys.argv[1], sys.argv[2], sys.argv[3]
ws_url = base.replace("http://", "ws://") + "/stream"
out = {"events": []}

stream = TradingStream(key, secret, paper=True, url_override=ws_url)


async def on_update(update):
    out["events"].append([str(update.event.value if hasattr(update.event, "value") else update.event),
                          update.order.client_order_id, update.order.status.value,
                          update.timestamp.isoformat()])


stream.subscribe_trade_updates(on_update)
thread = threading.Thread(target=stream.run, daemon=True)
thread.start()
deadline = time.time() + 20
while not stream._running and time.time() < deadline:
    time.sleep(0.05)
out["stream_running"] = bool(stream._running)
time.sleep(0.5)  # the listen message reaches the emulator

client = TradingClient(key, secret, paper=True, url_override=base)
account = client.get_account()
out["account_number"] = account.account_number
out["cash"] = account.cash
out["status"] = account.status.value
clock = client.get_clock()
out["clock_is_open"] = clock.is_open

order = client.submit_order(MarketOrderRequest(symbol="SPY", qty=1, side=OrderSide.BUY,
                                               time_in_force=TimeInForce.DAY, client_order_id="py-1"))
out["submitted_status"] = order.status.value
by_id = client.get_order_by_id(order.id)
out["filled_status"] = by_id.status.value
out["filled_avg_price"] = by_id.filled_avg_price
out["filled_qty"] = by_id.filled_qty
by_client = client.get_order_by_client_id("py-1")
out["same_order_by_client_id"] = str(by_client.id) == str(order.id)
try:
    client.submit_order(MarketOrderRequest(symbol="SPY", qty=1, side=OrderSide.BUY,
                                           time_in_force=TimeInForce.DAY, client_order_id="py-1"))
    out["duplicate_error"] = None
except APIError as e:
    out["duplicate_error"] = {"status": e.status_code, "code": e.code, "message": e.message}

limit = client.submit_order(LimitOrderRequest(symbol="SPY", qty=2, side=OrderSide.BUY, limit_price=1.0,
                                              time_in_force=TimeInForce.GTC, client_order_id="py-2"))
client.cancel_order_by_id(limit.id)
out["canceled_status"] = client.get_order_by_id(limit.id).status.value
client.submit_order(LimitOrderRequest(symbol="SPY", qty=1, side=OrderSide.BUY, limit_price=1.5,
                                      time_in_force=TimeInForce.DAY, client_order_id="py-3"))
out["cancel_all"] = [r.status for r in client.cancel_orders()]
listed = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, limit=50))
out["listed"] = sorted(o.client_order_id for o in listed)
out["positions"] = [[p.symbol, p.qty, p.avg_entry_price] for p in client.get_all_positions()]
out["position_spy_qty"] = client.get_open_position("SPY").qty
acts = client.get(f"/account/activities/FILL")
out["fills"] = len(acts)

deadline = time.time() + 20
while len(out["events"]) < 6 and time.time() < deadline:
    time.sleep(0.05)
stream.stop()
print(json.dumps(out))
