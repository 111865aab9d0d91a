//! Every trading reply of the emulator (and the order inside every stream event) validates against
//! Alpaca's OpenAPI document, and declares no field the document does not know: the emulator cannot
//! drift from the real wire format. The pattern-day-trader fields are not required.

use serde_json::{json, Value};
use vectura_emulator::{Config, Emulator, TradingConfig};

use crate::openapi::{doc, errors, undeclared, validator};

pub struct Http {
    pub http: reqwest::Client,
    pub base: String,
}

impl Http {
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("APCA-API-KEY-ID", "PKSPEC")
            .header("APCA-API-SECRET-KEY", "secret");
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// 2024-07-01 14:00Z: a regular session.
pub const NOW: i64 = 1_719_842_400;

pub async fn start(tweak: impl FnOnce(&mut Config)) -> (Emulator, Http) {
    let mut c = Config {
        now: Some(NOW),
        ..Config::default()
    };
    tweak(&mut c);
    let emu = Emulator::start(c).await.unwrap();
    let http = Http {
        http: reqwest::Client::new(),
        base: emu.base_url(),
    };
    (emu, http)
}

fn check(
    doc: &Value,
    path: &str,
    method: &str,
    status: &str,
    body: &Value,
    schema: &str,
    allowed: &[&str],
) {
    let e = errors(doc, path, method, status, body);
    assert!(e.is_empty(), "{method} {path}: {e:?}\n{body:#}");
    let u = undeclared(doc, schema, body, allowed);
    assert!(
        u.is_empty(),
        "{method} {path} sends fields the document does not declare: {u:?}"
    );
}

#[tokio::test]
async fn every_trading_reply_validates_against_the_openapi_document() {
    use reqwest::Method as M;
    let doc = doc();
    let (emu, c) = start(|_| {}).await;
    let h = emu.handle();
    let (s, account) = c.call(M::GET, "/v2/account", None).await;
    assert_eq!(s, 200);
    check(&doc, "/v2/account", "get", "200", &account, "Account", &[]);
    for f in [
        "pattern_day_trader",
        "daytrade_count",
        "daytrading_buying_power",
        "pdt_check",
    ] {
        assert!(account.get(f).is_none(), "{f} is sent by default");
    }
    let (_, clock) = c.call(M::GET, "/v2/clock", None).await;
    check(&doc, "/v2/clock", "get", "200", &clock, "legacy_clock", &[]);
    let (_, cal) = c
        .call(M::GET, "/v2/calendar?start=2024-07-01&end=2024-07-10", None)
        .await;
    assert_eq!(cal.as_array().unwrap().len(), 7);
    check(
        &doc,
        "/v2/calendar",
        "get",
        "200",
        &cal,
        "legacy_calendar_day",
        &[],
    );
    let (_, assets) = c.call(M::GET, "/v2/assets", None).await;
    check(&doc, "/v2/assets", "get", "200", &assets, "Assets", &[]);
    let (_, asset) = c.call(M::GET, "/v2/assets/SPY", None).await;
    check(
        &doc,
        "/v2/assets/{symbol_or_asset_id}",
        "get",
        "200",
        &asset,
        "Assets",
        &[],
    );

    let (s, buy) = c
        .call(M::POST, "/v2/orders", Some(json!({"symbol":"SPY","qty":"1.5","side":"buy","type":"market","time_in_force":"day","client_order_id":"spec-1"})))
        .await;
    assert_eq!(s, 200, "{buy}");
    check(&doc, "/v2/orders", "post", "200", &buy, "Order", &[]);
    let (s, lim) = c
        .call(M::POST, "/v2/orders", Some(json!({"symbol":"SPY","qty":2,"side":"buy","type":"limit","limit_price":"1.25","time_in_force":"gtc"})))
        .await;
    assert_eq!(s, 200, "{lim}");
    check(&doc, "/v2/orders", "post", "200", &lim, "Order", &[]);
    h.step();
    let (_, list) = c
        .call(M::GET, "/v2/orders?status=all&direction=asc&limit=10", None)
        .await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    check(&doc, "/v2/orders", "get", "200", &list, "Order", &[]);
    let id = buy["id"].as_str().unwrap();
    let (_, one) = c.call(M::GET, &format!("/v2/orders/{id}"), None).await;
    assert_eq!(one["status"], "filled");
    check(
        &doc,
        "/v2/orders/{order_id}",
        "get",
        "200",
        &one,
        "Order",
        &[],
    );
    let (_, by) = c
        .call(
            M::GET,
            "/v2/orders:by_client_order_id?client_order_id=spec-1",
            None,
        )
        .await;
    check(
        &doc,
        "/v2/orders:by_client_order_id",
        "get",
        "200",
        &by,
        "Order",
        &[],
    );
    let (_, positions) = c.call(M::GET, "/v2/positions", None).await;
    assert_eq!(positions.as_array().unwrap().len(), 1);
    check(
        &doc,
        "/v2/positions",
        "get",
        "200",
        &positions,
        "Position",
        &[],
    );
    let (_, pos) = c.call(M::GET, "/v2/positions/SPY", None).await;
    check(
        &doc,
        "/v2/positions/{symbol_or_asset_id}",
        "get",
        "200",
        &pos,
        "Position",
        &[],
    );
    // alpaca-py's TradeActivity requires account_id, which the document does not list.
    let (_, fills) = c
        .call(M::GET, "/v2/account/activities/FILL?direction=asc", None)
        .await;
    assert_eq!(fills.as_array().unwrap().len(), 1);
    check(
        &doc,
        "/v2/account/activities/{activity_type}",
        "get",
        "200",
        &fills,
        "TradingActivities",
        &["account_id"],
    );
    let (_, acts) = c
        .call(M::GET, "/v2/account/activities?activity_types=FILL", None)
        .await;
    check(
        &doc,
        "/v2/account/activities",
        "get",
        "200",
        &acts,
        "TradingActivities",
        &["account_id"],
    );
    let (s, _) = c
        .call(
            M::DELETE,
            &format!("/v2/orders/{}", lim["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(s, 204);
    c.call(M::POST, "/v2/orders", Some(json!({"symbol":"SPY","qty":"1","side":"buy","type":"limit","limit_price":"1.10","time_in_force":"day"}))).await;
    let (s, all) = c.call(M::DELETE, "/v2/orders", None).await;
    assert_eq!(s, 207);
    assert_eq!(all.as_array().unwrap().len(), 1);
    check(
        &doc,
        "/v2/orders",
        "delete",
        "207",
        &all,
        "CanceledOrderResponse",
        &[],
    );
    let (s, close) = c
        .call(M::DELETE, "/v2/positions/SPY?percentage=50", None)
        .await;
    assert_eq!(s, 200, "{close}");
    check(
        &doc,
        "/v2/positions/{symbol_or_asset_id}",
        "delete",
        "200",
        &close,
        "Order",
        &[],
    );
    h.step();
    let (s, closed) = c.call(M::DELETE, "/v2/positions", None).await;
    assert_eq!(s, 207);
    check(
        &doc,
        "/v2/positions",
        "delete",
        "207",
        &closed,
        "PositionClosedReponse",
        &[],
    );
    check(
        &doc,
        "/v2/orders",
        "post",
        "200",
        &closed[0]["body"],
        "Order",
        &[],
    );
}

#[tokio::test]
async fn the_pdt_switch_sends_the_removed_fields_and_they_still_validate() {
    let doc = doc();
    let (_emu, c) = start(|c| {
        c.trading = TradingConfig {
            pdt_fields: true,
            ..TradingConfig::default()
        }
    })
    .await;
    let (_, account) = c.call(reqwest::Method::GET, "/v2/account", None).await;
    assert_eq!(account["pattern_day_trader"], false);
    assert_eq!(account["daytrade_count"], 0);
    check(&doc, "/v2/account", "get", "200", &account, "Account", &[]);
}

#[test]
fn the_validator_rejects_what_alpaca_would_not_send() {
    let doc = doc();
    let order = validator(&doc, &json!({"$ref": "#/components/schemas/Order"}));
    let good = json!({"id":"904837e3-3b76-47ec-b432-046db621571b","client_order_id":"x","created_at":"2024-07-01T14:00:00Z",
        "notional":null,"qty":"1","filled_qty":"0","type":"market","time_in_force":"day","side":"buy","status":"new",
        "order_class":"","filled_avg_price":null,"symbol":"SPY","extended_hours":false});
    assert!(
        order.is_valid(&good),
        "{:?}",
        order
            .iter_errors(&good)
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    );
    for (field, bad) in [
        ("time_in_force", Value::Null),
        ("status", json!("done")),
        ("created_at", json!("yesterday")),
        ("id", json!("not-a-uuid")),
        ("notional", json!(12.5)),
    ] {
        let mut v = good.clone();
        v[field] = bad.clone();
        assert!(!order.is_valid(&v), "{field} = {bad} passes");
    }
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("type");
    assert!(!order.is_valid(&missing), "a required field missing passes");
    assert_eq!(
        undeclared(
            &doc,
            "Order",
            &json!({"qty":"1","filled_avg_prices":"2"}),
            &[]
        ),
        vec!["Order.filled_avg_prices"]
    );
}

#[tokio::test]
async fn the_order_inside_every_trade_update_validates_too() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let doc = doc();
    let order = validator(&doc, &json!({"$ref": "#/components/schemas/Order"}));
    let (emu, c) = start(|c| c.trading.faults.partial_fills = Some(2)).await;
    let url = format!("ws://{}/stream", emu.addr());
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.send(Message::Text(
        json!({"action":"authenticate","data":{"key_id":"PKSPEC","secret_key":"secret"}})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    ws.next().await.unwrap().unwrap();
    ws.send(Message::Text(
        json!({"action":"listen","data":{"streams":["trade_updates"]}})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    ws.next().await.unwrap().unwrap();
    let (_, o) = c
        .call(reqwest::Method::POST, "/v2/orders", Some(json!({"symbol":"SPY","qty":"3","side":"buy","type":"market","time_in_force":"day"})))
        .await;
    emu.handle().step_bars(2);
    c.call(reqwest::Method::POST, "/v2/orders", Some(json!({"symbol":"SPY","qty":"1","side":"buy","type":"limit","limit_price":"1","time_in_force":"day"}))).await;
    c.call(reqwest::Method::DELETE, "/v2/orders", None).await;
    let mut events = Vec::new();
    while events.len() < 5 {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let Message::Binary(b) = msg else {
            panic!("paper sends binary frames: {msg:?}")
        };
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["stream"], "trade_updates");
        let d = &v["data"];
        let errs: Vec<String> = order
            .iter_errors(&d["order"])
            .map(|e| e.to_string())
            .collect();
        assert!(errs.is_empty(), "{}: {errs:?}", d["event"]);
        assert!(undeclared(&doc, "Order", &d["order"], &[]).is_empty());
        assert!(chrono::DateTime::parse_from_rfc3339(d["timestamp"].as_str().unwrap()).is_ok());
        events.push(d["event"].as_str().unwrap().to_string());
    }
    assert_eq!(
        events,
        vec!["new", "partial_fill", "fill", "new", "canceled"]
    );
    assert_eq!(o["status"], "new");
}

#[tokio::test]
async fn a_day_the_venue_closes_is_left_out_of_the_calendar_and_the_clock_says_closed() {
    use reqwest::Method as M;
    let doc = doc();
    // NOW is 2024-07-01 14:00Z, in that day's session; the venue closes it and 2024-07-02.
    let closed: std::collections::BTreeSet<_> = ["2024-07-01", "2024-07-02"]
        .iter()
        .map(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap())
        .collect();
    let (_emu, c) = start(|cfg| {
        cfg.trading = TradingConfig {
            closed_days: closed.clone(),
            ..TradingConfig::default()
        }
    })
    .await;
    let (_, cal) = c
        .call(M::GET, "/v2/calendar?start=2024-07-01&end=2024-07-10", None)
        .await;
    let dates: Vec<&str> = cal
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["date"].as_str().unwrap())
        .collect();
    assert_eq!(
        dates,
        [
            "2024-07-03",
            "2024-07-05",
            "2024-07-08",
            "2024-07-09",
            "2024-07-10"
        ]
    );
    check(
        &doc,
        "/v2/calendar",
        "get",
        "200",
        &cal,
        "legacy_calendar_day",
        &[],
    );
    let (_, clock) = c.call(M::GET, "/v2/clock", None).await;
    check(&doc, "/v2/clock", "get", "200", &clock, "legacy_clock", &[]);
    assert_eq!(clock["is_open"], false, "{clock}");
    assert!(
        clock["next_open"]
            .as_str()
            .unwrap()
            .starts_with("2024-07-03T09:30:00"),
        "{clock}"
    );
}
