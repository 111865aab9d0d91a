//! The WebSocket streams' protocol, as Alpaca's clients expect it: the trade stream's single
//! authorization reply and listen acknowledgement, the market-data stream's connected → auth →
//! subscribe sequence, its error codes, bars as their minute closes, and MessagePack.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use vectura_emulator::{Config, Emulator};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws(emu: &Emulator, path: &str, msgpack: bool) -> Ws {
    let mut req = format!("ws://{}{path}", emu.addr())
        .into_client_request()
        .unwrap();
    if msgpack {
        req.headers_mut()
            .insert("Content-Type", "application/msgpack".parse().unwrap());
    }
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

async fn recv(ws: &mut Ws) -> Message {
    tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a frame within 10 s")
        .expect("open")
        .expect("a frame")
}

async fn json(ws: &mut Ws) -> Value {
    match recv(ws).await {
        Message::Text(t) => serde_json::from_str(t.as_str()).unwrap(),
        Message::Binary(b) => serde_json::from_slice(&b).unwrap(),
        other => panic!("{other:?}"),
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

async fn emulator(tweak: impl FnOnce(&mut Config)) -> Emulator {
    let mut c = Config {
        now: Some(1_719_842_400), // 2024-07-01 14:00Z, in the session
        keys: Some(vec![("K1".into(), "S1".into()), ("K2".into(), "S2".into())]),
        ..Config::default()
    };
    tweak(&mut c);
    Emulator::start(c).await.unwrap()
}

#[tokio::test]
async fn the_trade_stream_answers_authentication_once_and_acknowledges_listen() {
    let emu = emulator(|_| {}).await;
    let mut w = ws(&emu, "/stream", false).await;
    send(
        &mut w,
        json!({"action":"authenticate","data":{"key_id":"K1","secret_key":"S1"}}),
    )
    .await;
    let m = recv(&mut w).await;
    assert!(
        matches!(m, Message::Binary(_)),
        "paper's binary frames by default: {m:?}"
    );
    let Message::Binary(b) = m else {
        unreachable!()
    };
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(
        v,
        json!({"stream":"authorization","data":{"action":"authenticate","status":"authorized"}})
    );
    send(
        &mut w,
        json!({"action":"listen","data":{"streams":["trade_updates","nonsense"]}}),
    )
    .await;
    assert_eq!(
        json(&mut w).await,
        json!({"stream":"listening","data":{"streams":["trade_updates"]}})
    );
    assert_eq!(emu.handle().trade_stream_count("K1"), 1);
    // Wrong keys: one unauthorized reply, then the socket closes.
    let mut w = ws(&emu, "/stream", false).await;
    send(&mut w, json!({"action":"auth","key":"K1","secret":"nope"})).await;
    assert_eq!(json(&mut w).await["data"]["status"], "unauthorized");
    assert!(matches!(recv(&mut w).await, Message::Close(_)));
}

#[tokio::test]
async fn text_frames_on_request_and_events_only_for_the_keys_account() {
    let emu = emulator(|c| c.trading.binary_frames = false).await;
    let mut w1 = ws(&emu, "/stream", false).await;
    send(&mut w1, json!({"action":"auth","key":"K1","secret":"S1"})).await;
    assert!(matches!(recv(&mut w1).await, Message::Text(_)));
    send(
        &mut w1,
        json!({"action":"listen","data":{"streams":["trade_updates"]}}),
    )
    .await;
    json(&mut w1).await;
    let http = reqwest::Client::new();
    for (k, s) in [("K2", "S2"), ("K1", "S1")] {
        http.post(format!("{}/v2/orders", emu.base_url()))
            .header("APCA-API-KEY-ID", k)
            .header("APCA-API-SECRET-KEY", s)
            .json(&json!({"symbol":"SPY","qty":"1","side":"buy","type":"market","time_in_force":"day","client_order_id":format!("{k}-1")}))
            .send()
            .await
            .unwrap();
    }
    let e = json(&mut w1).await;
    assert_eq!(
        e["data"]["order"]["client_order_id"], "K1-1",
        "K2's order is not on K1's stream"
    );
    assert_eq!(e["data"]["event"], "new");
}

#[tokio::test]
async fn market_data_connects_authenticates_subscribes_and_streams_bars_as_minutes_close() {
    let emu = emulator(|_| {}).await;
    let mut w = ws(&emu, "/v2/iex", false).await;
    assert_eq!(
        json(&mut w).await,
        json!([{"T":"success","msg":"connected"}])
    );
    send(&mut w, json!({"action":"subscribe","bars":["SPY"]})).await;
    assert_eq!(
        json(&mut w).await,
        json!([{"T":"error","code":401,"msg":"not authenticated"}])
    );
    send(&mut w, json!({"action":"auth","key":"K1","secret":"S1"})).await;
    assert_eq!(
        json(&mut w).await,
        json!([{"T":"success","msg":"authenticated"}])
    );
    send(
        &mut w,
        json!({"action":"subscribe","bars":["spy","QQQ"],"trades":["SPY"]}),
    )
    .await;
    let ack = json(&mut w).await;
    assert_eq!(ack[0]["T"], "subscription");
    assert_eq!(ack[0]["bars"], json!(["QQQ", "SPY"]));
    assert_eq!(ack[0]["trades"], json!(["SPY"]));
    emu.handle().step();
    let bars = json(&mut w).await;
    let arr = bars.as_array().unwrap();
    assert_eq!(
        arr.len(),
        2,
        "both symbols' 14:00 bars in one array: {bars}"
    );
    for b in arr {
        assert_eq!(b["T"], "b");
        assert_eq!(b["t"], "2024-07-01T14:00:00Z");
        for k in ["o", "h", "l", "c", "v", "n", "vw"] {
            assert!(b[k].is_number(), "{k}: {b}");
        }
    }
    // The same bar as the REST endpoint (IEX volume).
    let rest: Value = reqwest::Client::new()
        .get(format!("{}/v2/stocks/SPY/bars?timeframe=1Min&start=2024-07-01T14:00:00Z&end=2024-07-01T14:00:00Z&feed=iex", emu.base_url()))
        .header("APCA-API-KEY-ID", "K1")
        .header("APCA-API-SECRET-KEY", "S1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let spy = arr.iter().find(|b| b["S"] == "SPY").unwrap();
    for k in ["o", "h", "l", "c", "v"] {
        assert_eq!(spy[k], rest["bars"][0][k], "{k}");
    }
}

#[tokio::test]
async fn market_data_errors_402_406_409() {
    let emu = emulator(|c| c.trading.faults.sip_not_in_plan = true).await;
    let mut w = ws(&emu, "/v2/iex", false).await;
    json(&mut w).await;
    send(&mut w, json!({"action":"auth","key":"K1","secret":"bad"})).await;
    assert_eq!(
        json(&mut w).await,
        json!([{"T":"error","code":402,"msg":"auth failed"}])
    );
    let mut first = ws(&emu, "/v2/iex", false).await;
    json(&mut first).await;
    send(
        &mut first,
        json!({"action":"auth","key":"K1","secret":"S1"}),
    )
    .await;
    assert_eq!(json(&mut first).await[0]["msg"], "authenticated");
    let mut second = ws(&emu, "/v2/iex", false).await;
    json(&mut second).await;
    send(
        &mut second,
        json!({"action":"auth","key":"K1","secret":"S1"}),
    )
    .await;
    assert_eq!(
        json(&mut second).await,
        json!([{"T":"error","code":406,"msg":"connection limit exceeded"}])
    );
    let mut sip = ws(&emu, "/v2/sip", false).await;
    json(&mut sip).await;
    send(&mut sip, json!({"action":"auth","key":"K2","secret":"S2"})).await;
    assert_eq!(
        json(&mut sip).await,
        json!([{"T":"error","code":409,"msg":"insufficient subscription"}])
    );
    assert_eq!(emu.handle().data_stream_count("K1"), 1);
}

#[tokio::test]
async fn msgpack_clients_get_msgpack_frames_with_timestamp_bar_times() {
    let emu = emulator(|_| {}).await;
    let mut w = ws(&emu, "/v2/sip", true).await;
    let unpack = |m: Message| -> rmpv::Value {
        let Message::Binary(b) = m else {
            panic!("binary frames: {m:?}")
        };
        rmpv::decode::read_value(&mut &b[..]).unwrap()
    };
    let pack = |v: rmpv::Value| {
        let mut buf = Vec::new();
        rmpv::encode::write_value(&mut buf, &v).unwrap();
        Message::Binary(buf.into())
    };
    let hello = unpack(recv(&mut w).await);
    assert_eq!(hello[0]["msg"].as_str(), Some("connected"));
    use rmpv::Value as V;
    let map = |kv: Vec<(&str, V)>| V::Map(kv.into_iter().map(|(k, v)| (V::from(k), v)).collect());
    w.send(pack(map(vec![
        ("action", V::from("auth")),
        ("key", V::from("K1")),
        ("secret", V::from("S1")),
    ])))
    .await
    .unwrap();
    assert_eq!(
        unpack(recv(&mut w).await)[0]["msg"].as_str(),
        Some("authenticated")
    );
    w.send(pack(map(vec![
        ("action", V::from("subscribe")),
        ("bars", V::Array(vec![V::from("SPY")])),
    ])))
    .await
    .unwrap();
    assert_eq!(
        unpack(recv(&mut w).await)[0]["T"].as_str(),
        Some("subscription")
    );
    emu.handle().step();
    let bars = unpack(recv(&mut w).await);
    let V::Ext(-1, data) = &bars[0]["t"] else {
        panic!("a MessagePack timestamp: {:?}", bars[0]["t"])
    };
    let raw = u64::from_be_bytes(data[..].try_into().unwrap());
    assert_eq!(raw & ((1 << 34) - 1), 1_719_842_400);
    assert!(bars[0]["o"].as_f64().is_some());
}

#[tokio::test]
async fn a_dropped_connection_still_counts_for_a_while_when_the_fault_is_on() {
    let emu = emulator(|c| c.trading.faults.stale_after_drop = Some(Duration::from_secs(60))).await;
    let mut w = ws(&emu, "/v2/iex", false).await;
    json(&mut w).await;
    send(&mut w, json!({"action":"auth","key":"K1","secret":"S1"})).await;
    json(&mut w).await;
    assert_eq!(emu.handle().drop_data_streams(), 1);
    let mut again = ws(&emu, "/v2/iex", false).await;
    json(&mut again).await;
    send(
        &mut again,
        json!({"action":"auth","key":"K1","secret":"S1"}),
    )
    .await;
    assert_eq!(json(&mut again).await[0]["code"], 406);
    // Another key is not affected.
    let mut other = ws(&emu, "/v2/iex", false).await;
    json(&mut other).await;
    send(
        &mut other,
        json!({"action":"auth","key":"K2","secret":"S2"}),
    )
    .await;
    assert_eq!(json(&mut other).await[0]["msg"], "authenticated");
}
