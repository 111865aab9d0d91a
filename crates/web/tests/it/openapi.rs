//! The API's document against itself and the routes: what an OpenAPI client or fuzzer (schemathesis,
//! scripts/fuzz-api) reads must hold. Each rule here was broken once and found by schemathesis.

use serde_json::Value;

use crate::support::{start, Client};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_documents_its_parameters_and_refusals() {
    let s = start().await;
    let mut c = Client::new(&s.base);
    c.login().await;
    let doc: Value = c.get("/api/v1/openapi.json").await.json().await.unwrap();
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 20, "{} paths", paths.len());
    let mut ops = 0;
    for (path, item) in paths {
        let holes: Vec<&str> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for m in METHODS {
            let Some(op) = item.get(m) else { continue };
            ops += 1;
            let what = format!("{} {path}", m.to_uppercase());
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let in_path: Vec<&str> = params
                .iter()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str())
                .collect();
            let mut want = holes.clone();
            want.sort();
            let mut have = in_path.clone();
            have.sort();
            assert_eq!(have, want, "{what}: path parameters");
            for p in &params {
                if p["name"] == "symbol" && p["in"] == "path" {
                    assert!(p["schema"]["pattern"].is_string(), "{what}: symbol pattern");
                }
            }
            let responses = op["responses"].as_object().expect("responses");
            assert!(responses.contains_key("401"), "{what}: 401");
            let csrf = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("csrf").is_some()));
            if csrf {
                assert!(responses.contains_key("403"), "{what}: 403");
            }
            if op["requestBody"]["content"]
                .get("application/json")
                .is_some()
            {
                for code in ["400", "415", "422"] {
                    assert!(responses.contains_key(code), "{what}: {code}");
                }
            }
        }
    }
    assert!(ops >= 25, "{ops} operations");
    // A field the server may leave out or null is nullable in the document.
    let metrics = &doc["components"]["schemas"]["Performance"]["properties"]["metrics"];
    assert!(
        metrics["type"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "null"))
            || metrics["oneOf"].is_array(),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_bounds_are_the_servers() {
    let s = start().await;
    let mut c = Client::new(&s.base);
    c.login().await;
    // The trades' paging: the document says 1 to 1 000 000 and 1 to 500.
    for q in [
        "page=0",
        "page=1000001",
        "per_page=0",
        "per_page=501",
        "side=both",
    ] {
        let r = c.get(&format!("/api/v1/trades?{q}")).await;
        assert_eq!(r.status(), 422, "{q}");
    }
    for q in ["page=1", "page=1000000", "per_page=500", "side=%20sell%20"] {
        let r = c.get(&format!("/api/v1/trades?{q}")).await;
        assert_eq!(r.status(), 200, "{q}");
    }
}
