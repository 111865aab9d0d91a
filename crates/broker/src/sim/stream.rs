//! The simulated broker's streams: each subscriber is one connection with its own faults (drops,
//! duplicates, reordering), as separate WebSocket connections to Alpaca would be.
//!
//! Channels are bounded and never block the broker: a consumer that falls so far behind that its buffer
//! fills is treated as a slow connection the server closed. It loses events until there is room again
//! at a later bar, then gets `Disconnected` and `Connected { reconnect: true }` and must backfill.

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use vectura_core::Bar;

use super::faults::{Fault, Faults};
use crate::types::TradeEvent;
use crate::venue::{BarEvent, StreamEvent};

const DROP_REASON: &str = "simulated drop of the stream";
const SLOW_REASON: &str = "the consumer fell behind and the stream was closed";

struct Conn<T> {
    id: u64,
    tx: mpsc::Sender<T>,
    /// Disconnected: events are lost until the reconnect.
    down: bool,
    /// The `Disconnected` notice could not be sent yet (the buffer was full).
    owe_notice: bool,
    closed: bool,
}

impl<T> Conn<T> {
    /// Sends or, when the buffer is full, takes the connection down.
    fn send(&mut self, msg: T) -> bool {
        match self.tx.try_send(msg) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.down = true;
                self.owe_notice = true;
                false
            }
            Err(TrySendError::Closed(_)) => {
                self.closed = true;
                false
            }
        }
    }

    fn room(&self) -> usize {
        self.tx.capacity()
    }
}

struct TradeConn {
    conn: Conn<StreamEvent>,
    /// Events held back by the reorder fault, delivered after the next one.
    held: Vec<StreamEvent>,
}

struct BarConn {
    conn: Conn<BarEvent>,
    /// Symbols subscribed (empty or `*`: all).
    symbols: Vec<String>,
    /// Bars still to lose in the current gap.
    lost_left: u32,
}

/// Every open stream of the simulated broker.
pub(crate) struct Streams {
    capacity: usize,
    next_id: u64,
    trades: Vec<TradeConn>,
    bars: Vec<BarConn>,
}

impl Streams {
    pub(crate) fn new(capacity: usize) -> Streams {
        Streams {
            capacity,
            next_id: 0,
            trades: Vec::new(),
            bars: Vec::new(),
        }
    }

    /// A new order-stream connection (already connected).
    pub(crate) fn subscribe_trades(&mut self) -> mpsc::Receiver<StreamEvent> {
        let (tx, rx) = mpsc::channel(self.capacity);
        let mut conn = Conn {
            id: self.next_id,
            tx,
            down: false,
            owe_notice: false,
            closed: false,
        };
        self.next_id += 1;
        conn.send(StreamEvent::Connected { reconnect: false });
        self.trades.push(TradeConn {
            conn,
            held: Vec::new(),
        });
        rx
    }

    /// A new bar-stream connection for `symbols` (empty or `*`: all).
    pub(crate) fn subscribe_bars(&mut self, symbols: &[String]) -> mpsc::Receiver<BarEvent> {
        let (tx, rx) = mpsc::channel(self.capacity);
        let mut conn = Conn {
            id: self.next_id,
            tx,
            down: false,
            owe_notice: false,
            closed: false,
        };
        self.next_id += 1;
        conn.send(BarEvent::Connected { reconnect: false });
        self.bars.push(BarConn {
            conn,
            symbols: symbols.iter().map(|s| s.to_ascii_uppercase()).collect(),
            lost_left: 0,
        });
        rx
    }

    /// Delivers one order event (number `seq`) to every order-stream connection, with the faults.
    pub(crate) fn publish_trade(&mut self, faults: &Faults, seq: u64, ev: &TradeEvent) {
        for t in &mut self.trades {
            let c = &mut t.conn;
            if c.down || c.closed {
                continue;
            }
            let key = [c.id, seq];
            if faults.hit(Fault::DropTradeStream, &key) {
                t.held.clear();
                c.down = true;
                c.send(StreamEvent::Disconnected {
                    reason: DROP_REASON.into(),
                    fatal: false,
                });
                continue;
            }
            let msg = StreamEvent::Event(Box::new(ev.clone()));
            if faults.hit(Fault::ReorderEvent, &key) {
                t.held.push(msg);
                continue;
            }
            let dup = faults.hit(Fault::DuplicateEvent, &key);
            if c.send(msg.clone()) && dup {
                c.send(msg);
            }
            for h in std::mem::take(&mut t.held) {
                if !c.down {
                    c.send(h);
                }
            }
        }
        self.trades.retain(|t| !t.conn.closed);
    }

    /// The end of a bar: events still held back are delivered.
    pub(crate) fn flush(&mut self) {
        for t in &mut self.trades {
            for h in std::mem::take(&mut t.held) {
                if !t.conn.down {
                    t.conn.send(h);
                }
            }
        }
    }

    /// Time has passed (a new bar): dropped order streams reconnect, when their buffer has room.
    pub(crate) fn reconnect(&mut self) {
        for t in &mut self.trades {
            let c = &mut t.conn;
            if !c.down || c.closed || c.room() < 2 {
                continue;
            }
            if c.owe_notice {
                c.owe_notice = false;
                c.send(StreamEvent::Disconnected {
                    reason: SLOW_REASON.into(),
                    fatal: false,
                });
            }
            c.down = false;
            c.send(StreamEvent::Connected { reconnect: true });
        }
        self.trades.retain(|t| !t.conn.closed);
    }

    /// Delivers a closed bar (number `seq`) to every bar-stream connection subscribed to `symbol`.
    pub(crate) fn publish_bar(&mut self, faults: &Faults, seq: u64, symbol: &str, bar: &Bar) {
        for b in &mut self.bars {
            if !(b.symbols.is_empty() || b.symbols.iter().any(|s| s == "*" || s == symbol)) {
                continue;
            }
            let c = &mut b.conn;
            if c.closed {
                continue;
            }
            if c.down {
                if b.lost_left > 0 {
                    b.lost_left -= 1;
                    continue;
                }
                if c.room() < 3 {
                    continue;
                }
                if c.owe_notice {
                    c.owe_notice = false;
                    c.send(BarEvent::Disconnected {
                        reason: SLOW_REASON.into(),
                        fatal: false,
                    });
                }
                c.down = false;
                c.send(BarEvent::Connected { reconnect: true });
            }
            let key = [c.id, seq];
            if faults.hit(Fault::DropBarStream, &key) {
                c.down = true;
                let gap =
                    1 + faults.pick(Fault::DropBarStream, &key, 0, faults.max_gap_bars as u64);
                b.lost_left = (gap - 1) as u32;
                c.send(BarEvent::Disconnected {
                    reason: DROP_REASON.into(),
                    fatal: false,
                });
                continue;
            }
            c.send(BarEvent::Bar {
                symbol: symbol.to_string(),
                bar: *bar,
            });
        }
        self.bars.retain(|b| !b.conn.closed);
    }
}
