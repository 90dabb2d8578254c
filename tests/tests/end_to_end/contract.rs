//! The OpenAPI document says what the server does. Each operation, asked by the administrator
//! (every operation's widest caller) with the values its parameters' schemas allow at their
//! bounds and just past them, answers only statuses the document lists for it, never 5xx, and
//! refuses a value its schema forbids; the mismatches a schema-driven fuzzer found (a 403 not
//! listed, `ratios: null` for an object, a `version` above its maximum) stay mended. The full
//! property-based run over the served document is `schemathesis` (in `schemathesis.rs`).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use fieldsync_tests::harness::{TestServer, error_code as code};

const PASSWORD: &str = "correct horse battery";
const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head"];

/// A request's parameters: name, place (`path` or `query`) and value.
type Case = Vec<(String, String, String)>;

async fn document(server: &TestServer) -> Value {
    server.client.get(server.url("/openapi.json")).send().await.unwrap().json().await.unwrap()
}

/// The statuses the document lists for an operation.
fn documented(document: &Value, method: &str, path: &str) -> BTreeSet<u16> {
    document["paths"][path][method]["responses"]
        .as_object()
        .unwrap()
        .keys()
        .filter_map(|status| status.parse().ok())
        .collect()
}

/// The values a parameter's schema allows at its bounds, and those it forbids just past them.
fn values(schema: &Value) -> (Vec<String>, Vec<String>) {
    let (mut allowed, mut forbidden) = (Vec::new(), Vec::new());
    match schema["type"].as_str() {
        Some("integer") => {
            let min = schema["minimum"].as_i64().unwrap_or(0);
            allowed.push(min.to_string());
            forbidden.push("x".into());
            if schema.get("minimum").is_some() {
                forbidden.push((min - 1).to_string());
            }
            if let Some(max) = schema["maximum"].as_i64() {
                allowed.push(max.to_string());
                forbidden.push((max + 1).to_string());
            }
        }
        _ => {
            if let Some(pattern) = schema["pattern"].as_str() {
                // The patterns here are alternatives of words: each word is allowed, another is not.
                let words = pattern.trim_start_matches("^(").trim_end_matches(")$");
                allowed.extend(words.split('|').map(str::to_string));
                forbidden.push("neither".into());
            } else {
                allowed.push("A1".into());
            }
        }
    }
    (allowed, forbidden)
}

#[tokio::test]
async fn every_operation_answers_only_what_its_document_lists() {
    let server = TestServer::start().await;
    server.account("ADM", PASSWORD, &["admin"]);
    let admin = server.token("ADM", PASSWORD).await;
    let document = document(&server).await;
    let mut problems = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap().iter().filter(|(m, _)| METHODS.contains(&m.as_str())) {
            // Ending the administrator's session or password would end the run.
            if path == "/v1/auth/logout" || path == "/v1/auth/password" {
                continue;
            }
            let listed = documented(&document, method, path);
            let parameters = operation["parameters"].as_array().cloned().unwrap_or_default();
            // One request with every parameter at an allowed value, then one per forbidden value.
            let mut cases: Vec<(Case, bool)> = Vec::new();
            let base: Case = parameters
                .iter()
                .map(|p| {
                    let (allowed, _) = values(&p["schema"]);
                    (p["name"].as_str().unwrap().into(), p["in"].as_str().unwrap().into(), allowed[0].clone())
                })
                .collect();
            cases.push((base.clone(), true));
            for (i, parameter) in parameters.iter().enumerate() {
                let (allowed, forbidden) = values(&parameter["schema"]);
                for value in allowed.into_iter().skip(1) {
                    let mut case = base.clone();
                    case[i].2 = value;
                    cases.push((case, true));
                }
                for value in forbidden {
                    let mut case = base.clone();
                    case[i].2 = value;
                    cases.push((case, false));
                }
            }
            for (case, allowed) in cases {
                let mut url = path.clone();
                let mut query = Vec::new();
                for (name, place, value) in &case {
                    match place.as_str() {
                        "path" => url = url.replace(&format!("{{{name}}}"), value),
                        _ => query.push(format!("{name}={value}")),
                    }
                }
                if !query.is_empty() {
                    url = format!("{url}?{}", query.join("&"));
                }
                let request = server
                    .client
                    .request(reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(), server.url(&url))
                    .bearer_auth(&admin);
                let request = if method == "get" || method == "head" { request } else { request.json(&json!({})) };
                let status = request.send().await.unwrap().status().as_u16();
                if status >= 500 || !listed.contains(&status) {
                    problems.push(format!("{method} {url}: {status}, listed {listed:?}"));
                }
                // A value the schema forbids is refused, whatever else the request lacks.
                if !allowed && (200..300).contains(&status) {
                    problems.push(format!("{method} {url}: accepted a value its schema forbids"));
                }
                // A value the schema allows is not refused as a bad query.
                if allowed && status == 400 && case.iter().any(|(_, place, _)| place == "query") {
                    problems.push(format!("{method} {url}: refused a query its schema allows"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn the_mismatches_a_fuzzer_found_stay_mended() {
    let server = TestServer::start().await;
    server.account("ADM", PASSWORD, &["admin"]);
    let admin = server.token("ADM", PASSWORD).await;
    let document = document(&server).await;

    // Enrolling needs the officer role, and both operations say so.
    let enrollment = json!({ "challenge": "", "public_key": "", "actor_id": "", "signature": "" });
    for (path, body) in [("/v1/devices/challenge", json!({})), ("/v1/devices", enrollment)] {
        assert!(documented(&document, "post", path).contains(&403), "{path}");
        assert_eq!(code(server.post(path, &admin, body).await).await, (403, "role_required".into()), "{path}");
    }

    // A matter list with no ratios answers them as the object its schema says.
    let schema = &document["components"]["schemas"]["MatterList"];
    assert_eq!(schema["properties"]["ratios"]["type"], "object");
    let list = json!({ "version": 1, "matters": [{
        "code": "M01", "zh": "排污许可证执行情况检查", "basis": "《排污许可管理条例》", "targets": ["key"],
    }] });
    assert_eq!(server.post("/v1/admin/matters", &admin, list).await.status(), 200);
    let served: Value = server.client.get(server.url("/v1/public/matters")).send().await.unwrap().json().await.unwrap();
    assert!(served["ratios"].is_object(), "{served}");

    // A version above the stated maximum, and ratios that are not an object, are refused and change nothing.
    let maximum = schema["properties"]["version"]["maximum"].as_u64().unwrap();
    let before = server.snapshot();
    for body in [
        json!({ "version": maximum + 1, "matters": [] }),
        json!({ "version": u32::MAX, "matters": [] }),
        json!({ "version": 1, "matters": [], "ratios": null }),
    ] {
        assert_eq!(
            code(server.post("/v1/admin/matters", &admin, body.clone()).await).await,
            (422, "invalid_matters".into()),
            "{body}"
        );
    }
    assert_eq!(server.snapshot(), before);
    // JSON Schema's integers include `1.0`: the server reads it as 1.
    let integral = json!({ "version": 1.0, "matters": [{
        "code": "M01", "zh": "排污许可证执行情况检查", "basis": "《排污许可管理条例》", "targets": ["key"],
    }] });
    assert_eq!(server.post("/v1/admin/matters", &admin, integral).await.status(), 200);
    let limit = server.get("/v1/records?limit=1001", &admin).await;
    assert_eq!(code(limit).await, (400, "invalid_query".into()));
}
