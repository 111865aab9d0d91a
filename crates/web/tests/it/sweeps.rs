//! The sweeps pages over stored runs: the list, one run's heat maps (one per market, one colour
//! scale) and best sets, and bad choices answered with the field.

use reqwest::StatusCode;
use serde_json::{json, Value};
use vectura_store::{NewSweepRun, SweepResult, SweepStatus};

use crate::support::{start, Client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_sweep_shows_heat_maps_on_one_scale_and_its_best_sets() {
    let s = start().await;
    let id = s
        .store
        .create_sweep_run(&NewSweepRun {
            symbols: vec!["SPY".into(), "QQQ".into()],
            start_date: None,
            end_date: None,
            fill: "NextOpen".into(),
            plan: json!({"grid": true}),
            set_count: 8,
        })
        .await
        .unwrap();
    let mut rows = Vec::new();
    for (m, sym) in ["SPY", "QQQ"].iter().enumerate() {
        for (i, (bb, sa)) in [(1.0, 10.0), (1.0, 20.0), (2.5, 10.0), (2.5, 20.0)]
            .iter()
            .enumerate()
        {
            let set = (m * 4 + i) as u64;
            rows.push(SweepResult {
                set_index: set,
                params: json!({"symbol": sym, "set": i, "buy_below_pct": bb, "sell_above_pct": sa, "capital_pct": 60.0}),
                metrics: json!({"total_return_pct": (set as f64) * 1.5 - (m as f64) * 10.0, "trades": set}),
            });
        }
    }
    s.store.append_sweep_results(&id, &rows).await.unwrap();
    s.store
        .finish_sweep_run(&id, SweepStatus::Done, None)
        .await
        .unwrap();

    let mut c = Client::new(&s.base);
    c.login().await;
    let list = c.get("/sweeps").await.text().await.unwrap();
    assert!(
        list.contains(&format!("/sweeps/{id}")) && list.contains("8 / 8"),
        "{list}"
    );
    let d: Value = c
        .get(&format!("/api/v1/sweeps/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        d["params"],
        json!(["buy_below_pct", "sell_above_pct"]),
        "capital_pct does not vary"
    );
    assert_eq!(d["x"], "buy_below_pct");
    assert_eq!(d["y"], "sell_above_pct");
    assert_eq!(d["metric"], "total_return_pct");
    assert_eq!(d["x_values"], json!([1.0, 2.5]));
    assert_eq!(d["y_values"], json!([10.0, 20.0]));
    let maps = d["maps"].as_array().unwrap();
    assert_eq!(maps.len(), 2);
    assert_eq!(maps[0]["market"], "QQQ");
    // QQQ sets 4..7: 1.5*set - 10; z[y][x]: y=sell_above index, x=buy_below index.
    assert_eq!(maps[0]["z"], json!([[-4.0, -1.0], [-2.5, 0.5]]));
    assert_eq!(maps[0]["set"], json!([[4, 6], [5, 7]]));
    assert_eq!(d["z_min"], json!(-4.0), "one scale over both markets");
    assert_eq!(d["z_max"], json!(4.5));
    assert_eq!(d["top"][0]["set_index"], 3);
    assert_eq!(d["top"][0]["value"], 4.5);
    // The best sets come from the stored columns; their parameters from their own rows.
    let top: Vec<u64> = d["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["set_index"].as_u64().unwrap())
        .collect();
    assert_eq!(top, [3, 2, 1, 7, 0, 6, 5, 4]);
    assert_eq!(d["top"][0]["params"], rows[3].params);
    assert_eq!(d["top"][3]["params"], rows[7].params);
    assert_eq!(d["top"][3]["market"], "QQQ");
    // The same detail as computed from every row.
    let run = s.store.sweep_run(&id).await.unwrap().unwrap();
    let from_rows = vectura_web::sweeps::detail(&run, &rows, &Default::default()).unwrap();
    assert_eq!(serde_json::to_value(&from_rows).unwrap(), d);
    let page = c.get(&format!("/sweeps/{id}")).await.text().await.unwrap();
    assert!(page.contains("id=\"sweep-data\"") && page.contains("/static/plotly-"));
    assert!(
        !page.contains("<script type=\"application/json\" id=\"sweep-data\">{\"run\":{\"id\":\"<")
    );

    let r = c.get(&format!("/api/v1/sweeps/{id}?metric=nope")).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["field"], "metric");
    assert!(b["error"].as_str().unwrap().contains("total_return_pct"));
    let r = c.get(&format!("/api/v1/sweeps/{id}?x=capital_pct")).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = c.get(&format!("/api/v1/sweeps/{id}?top=-1")).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = c.get("/api/v1/sweeps/unknown").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
