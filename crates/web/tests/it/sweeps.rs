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

/// Waits for a job's end through the API (its status once final).
pub async fn job_end(c: &mut Client, id: &str) -> Value {
    for _ in 0..1200 {
        let j: Value = c
            .get(&format!("/api/v1/jobs/{id}"))
            .await
            .json()
            .await
            .unwrap();
        if matches!(j["status"].as_str(), Some("done" | "failed" | "cancelled")) {
            return j;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("job {id} did not end in 120 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_started_through_the_api_runs_as_a_job_and_is_stored_with_its_rows() {
    let s = start().await;
    let mut c = Client::new(&s.base);
    c.login().await;
    let body = json!({
        "name": "API sweep",
        "start_date": "2011-01-03",
        "end_date": "2011-01-31",
        "params": {"buy_below_pct": "1:3:1", "sell_above_pct": "10,20"},
        "rank_by": "total_return_pct",
    });
    let r = c
        .with_csrf(reqwest::Method::POST, "/api/v1/sweeps")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let j = job_end(&mut c, &id).await;
    assert_eq!(j["status"], "done", "{j}");
    assert_eq!(j["kind"], "sweep");
    let run_id = j["result"]["sweep_run"].as_str().unwrap().to_string();
    assert_eq!(j["result"]["link"], format!("/sweeps/{run_id}"));
    let run = s.store.sweep_run(&run_id).await.unwrap().unwrap();
    assert_eq!(run.set_count, 6);
    assert_eq!(run.rows_stored, 6);
    assert_eq!(run.status, SweepStatus::Done);
    let results = s.store.sweep_results(&run_id).await.unwrap();
    assert_eq!(results.len(), 6);
    // Its heat map over the two varied parameters.
    let d: Value = c
        .get(&format!("/api/v1/sweeps/{run_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(d["x_values"], json!([1.0, 2.0, 3.0]));
    assert_eq!(d["y_values"], json!([10.0, 20.0]));
    // The progress was streamed: rows done of all, then completed.
    let stages: Vec<&str> = j["progress"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["stage"].as_str())
        .collect();
    assert!(
        stages.contains(&"working_on_chunk") && stages.last() == Some(&"completed"),
        "{stages:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_sweep_field_is_refused_naming_it_and_starts_nothing() {
    let s = start().await;
    let mut c = Client::new(&s.base);
    c.login().await;
    for (body, field) in [
        (json!({}), "params"),
        (
            json!({"params": {"buy_below_pct": "3:1:1"}}),
            "params.buy_below_pct",
        ),
        (json!({"params": {"nope": "1"}}), "params"),
        (
            json!({"params": {"buy_below_pct": "1,2"}, "sampling": "random"}),
            "random_sets",
        ),
        (
            json!({"params": {"buy_below_pct": "1,2"}, "sampling": "random", "random_sets": 5}),
            "random_sets",
        ),
        (
            json!({"params": {"buy_below_pct": "1,2"}, "walk_forward": "x"}),
            "walk_forward",
        ),
        (
            json!({"params": {"buy_below_pct": "1,2"}, "rank_by": "luck"}),
            "rank_by",
        ),
        (
            json!({"params": {"buy_below_pct": "1,2"}, "source": "store"}),
            "symbols",
        ),
        (
            json!({"params": {"buy_below_pct": "1,2"}, "ranges": "2011-01-03"}),
            "ranges",
        ),
        (
            json!({"params": {"buy_below_pct": "1,2"}, "fill": "magic"}),
            "fill",
        ),
        (json!({"params": {"buy_below_pct": "1,2"}, "top": 0}), "top"),
        (
            json!({"params": {"buy_below_pct": "1:1000:1", "sell_above_pct": "1:10000:1"}}),
            "params",
        ),
        (json!({"bogus": 1}), "bogus"),
    ] {
        let r = c
            .with_csrf(reqwest::Method::POST, "/api/v1/sweeps")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["field"], field, "{body}: {e}");
        assert!(!e["error"].as_str().unwrap().is_empty());
    }
    assert!(s.store.jobs("sweep", 10).await.unwrap().is_empty());
    assert!(s.store.sweep_runs().await.unwrap().is_empty());
}
