#!/usr/bin/env python3
"""Cross-check `vectura backtest --strategy sma-cross` against backtesting.py on the same daily bars.

Outside the test suite (needs `pip install backtesting pandas`). Long only, whole shares, all in:
buy when SMA(fast) crosses above SMA(slow), close when it crosses below; no commission, no deposits.
Runs both fill models: `close` (backtesting.py trade_on_close=True) and `next-open` (trade_on_close=False).

  python3 tools/sma_crosscheck.py data/fixtures/daily/GOOG_2004_2013_backtestingpy.csv target/release/vectura
"""
import json
import subprocess
import sys

import pandas as pd
from backtesting import Backtest, Strategy
from backtesting.lib import crossover

FAST, SLOW, CASH = 10, 20, 10_000.0


def sma(x, n):
    return pd.Series(x).rolling(n).mean().to_numpy()


class SmaLong(Strategy):
    def init(self):
        self.f = self.I(sma, self.data.Close, FAST)
        self.s = self.I(sma, self.data.Close, SLOW)

    def next(self):
        if crossover(self.f, self.s):
            if not self.position:
                self.buy(size=0.999999999)  # all in, whole shares
        elif crossover(self.s, self.f):
            self.position.close()


def peer(csv, on_close):
    df = pd.read_csv(csv, index_col=0, parse_dates=True)
    df.columns = [c.capitalize() for c in df.columns]
    bt = Backtest(df, SmaLong, cash=CASH, commission=0.0, trade_on_close=on_close, exclusive_orders=False,
                  finalize_trades=False)
    st = bt.run()
    trades = [(str(t.EntryTime.date()), t.EntryPrice, t.Size, str(t.ExitTime.date()), t.ExitPrice)
              for t in st["_trades"].itertuples()]
    return st["Equity Final [$]"], trades


def ours(csv, exe, fill):
    out = subprocess.run([exe, "backtest", "--data", csv, "--strategy", "sma-cross", "--fast", str(FAST),
                          "--slow", str(SLOW), "--fill", fill, "--start-capital", str(CASH),
                          "--contribution-frequency-days", "0", "--pdt", "off", "--json"],
                         capture_output=True, text=True, check=True)
    r = json.loads(out.stdout)
    trades, entry = [], None
    for t in r["trades"]:
        if t["side"] == "buy":
            entry = t
        else:
            trades.append((entry["time"][:10], entry["price"], entry["shares"], t["time"][:10], t["price"]))
    return r["final_equity_post_trade"], trades


def main():
    csv, exe = sys.argv[1], sys.argv[2]
    ok = True
    for fill, on_close in [("close", True), ("next-open", False)]:
        pe, pt = peer(csv, on_close)
        oe, ot = ours(csv, exe, fill)
        closed_pt = [t for t in pt if t[3] != "NaT"]
        same = [a == b for a, b in zip(ot, closed_pt)]
        print(f"{fill:9s}: final equity ours {oe:.6f} backtesting.py {pe:.6f}; closed trades ours {len(ot)} "
              f"theirs {len(closed_pt)}; identical {sum(same)}")
        for a, b in zip(ot, closed_pt):
            if a != b:
                print("  first difference:", a, b)
                ok = False
                break
        if abs(oe - pe) > 1e-6 or len(ot) != len(closed_pt):
            ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
