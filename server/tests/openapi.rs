//! `GET /openapi.json` describes every route of the router: the test lists the routes each
//! `routes::*::router()` registers, checks that the router answers each of them, and that the
//! document describes exactly these operations, each with its error responses and the error body.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::Value;
use server::store::Store;
use server::store::sqlite::SqliteStore;
use tower::ServiceExt;

/// Every method and path the JSON API registers, as in each `routes::*::router()` (the console's
/// HTML pages, `http::console`, are not operations of the API and not in its document).
const ROUTES: &[(&str, &str)] = &[
    // ops
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    // auth
    ("post", "/v1/auth/login"),
    ("post", "/v1/auth/challenge"),
    ("post", "/v1/auth/refresh"),
    ("post", "/v1/auth/logout"),
    ("post", "/v1/auth/password"),
    // devices
    ("post", "/v1/devices/challenge"),
    ("post", "/v1/devices"),
    ("get", "/v1/devices"),
    ("post", "/v1/devices/{device_id}/revoke"),
    // admin
    ("post", "/v1/admin/officers"),
    ("get", "/v1/admin/officers"),
    ("post", "/v1/admin/roles"),
    ("delete", "/v1/admin/roles"),
    ("post", "/v1/admin/certificates"),
    ("get", "/v1/admin/certificates"),
    ("post", "/v1/admin/certificates/{number}/renew"),
    ("post", "/v1/admin/certificates/{number}/status"),
    ("post", "/v1/admin/certificates/{number}/surrender"),
    ("post", "/v1/admin/certificates/{number}/review"),
    ("get", "/v1/admin/certificates/review-due"),
    ("get", "/v1/admin/certificates/{number}/affected"),
    ("post", "/v1/admin/entities"),
    ("post", "/v1/admin/recusals"),
    // tasks
    ("post", "/v1/tasks"),
    ("get", "/v1/tasks"),
    ("get", "/v1/tasks/{task_id}"),
    ("get", "/v1/tasks/{task_id}/team"),
    // records
    ("get", "/v1/records"),
    ("get", "/v1/records/{record_id}"),
    ("get", "/v1/records/{record_id}/history"),
    ("get", "/v1/records/{record_id}/held"),
    ("post", "/v1/records/{record_id}/held/{change_hash}"),
    ("get", "/v1/recusals/tasks"),
    ("get", "/v1/quarantine"),
    // sync
    ("post", "/v1/sync"),
    // blobs
    ("post", "/v1/uploads"),
    ("get", "/v1/uploads/{upload_id}"),
    ("head", "/v1/uploads/{upload_id}"),
    ("patch", "/v1/uploads/{upload_id}"),
    ("post", "/v1/uploads/{upload_id}/finish"),
    ("get", "/v1/blobs/{sha256}"),
    ("get", "/v1/blobs/{sha256}/metadata"),
    ("get", "/v1/blobs/{sha256}/thumbnail"),
    ("get", "/v1/records/{record_id}/missing-blobs"),
    // log
    ("post", "/v1/log/entries"),
    ("get", "/v1/log/checkpoint"),
    ("get", "/v1/log/key"),
    ("get", "/v1/log/proofs/inclusion"),
    ("get", "/v1/log/proofs/consistency"),
    ("get", "/v1/records/{record_id}/log"),
    ("get", "/v1/records/{record_id}/evidence"),
    ("get", "/v1/admin/check"),
    ("post", "/v1/admin/backup"),
    // campaigns
    ("get", "/v1/public/matters"),
    ("post", "/v1/admin/matters"),
    ("get", "/v1/admin/entities/{entity_id}/history"),
    ("get", "/v1/admin/calendar/{year}"),
    ("put", "/v1/admin/calendar/{year}"),
    ("get", "/v1/inspectors"),
    ("post", "/v1/campaigns"),
    ("get", "/v1/campaigns"),
    ("get", "/v1/campaigns/overdue"),
    ("get", "/v1/campaigns/{campaign_id}"),
    ("post", "/v1/campaigns/{campaign_id}/draw"),
    ("post", "/v1/campaigns/{campaign_id}/results/{task_id}/publish"),
    ("get", "/v1/public/campaigns"),
    ("get", "/v1/public/campaigns/{campaign_id}"),
];

/// The 401 codes of every operation that takes an access token.
const CALLER_CODES: &[&str] = &["missing_token", "invalid_token", "token_expired", "device_revoked", "session_revoked"];

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// The router over a fresh SQLite store; the folder must outlive it.
fn app() -> (Router, Arc<SqliteStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = server::Config::new(dir.path().to_path_buf());
    let store = SqliteStore::open(&server::store::sqlite::database_path(&config.data_dir)).unwrap();
    let state = server::AppState::new(config, store.clone() as Arc<dyn Store>);
    (server::app(state), store, dir)
}

fn request(method: &str, path: &str) -> Request<Body> {
    let mut request =
        Request::builder().method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap()).uri(path);
    // Login and refresh read the client's address, as `server::run` provides it.
    request = request.extension(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    request.body(Body::empty()).unwrap()
}

/// A path of a route with its parameters filled in: `/v1/tasks/{task_id}` becomes `/v1/tasks/task_id`.
fn concrete(path: &str) -> String {
    path.replace(['{', '}'], "")
}

async fn document(app: &Router) -> Value {
    let response = app.clone().oneshot(request("get", "/openapi.json")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    serde_json::from_slice(&body).unwrap()
}

/// Every operation of the document, as (method, path).
fn operations(document: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys().filter(|key| METHODS.contains(&key.as_str())) {
            operations.insert((method.clone(), path.clone()));
        }
    }
    operations
}

#[tokio::test]
async fn every_route_the_router_serves_is_in_the_document_and_nothing_else() {
    let (app, store, _dir) = app();
    // Each listed route is served: not the fallback's 404 (a public route may answer 404 for what
    // it does not hold, naming it), not a 405 for a method the path lacks.
    for (method, path) in ROUTES {
        let response = app.clone().oneshot(request(method, &concrete(path))).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let message = serde_json::from_slice::<Value>(&body).unwrap_or_default()["message"].clone();
        let fallback = status == StatusCode::NOT_FOUND && message == "route not found";
        assert!(
            status != StatusCode::METHOD_NOT_ALLOWED && !fallback,
            "{method} {path} is not a route: {status} {message}"
        );
    }
    let document = document(&app).await;
    assert_eq!(document["openapi"].as_str().unwrap_or_default(), "3.1.0");
    let listed: BTreeSet<(String, String)> =
        ROUTES.iter().map(|(method, path)| (method.to_string(), path.to_string())).collect();
    let described = operations(&document);
    let missing: Vec<_> = listed.difference(&described).collect();
    let unknown: Vec<_> = described.difference(&listed).collect();
    assert!(missing.is_empty(), "routes the document does not describe: {missing:?}");
    assert!(unknown.is_empty(), "operations the router does not serve: {unknown:?}");
    store.close();
}

#[tokio::test]
async fn the_error_body_is_described_as_the_schemas_crate_defines_it() {
    let (app, store, _dir) = app();
    let document = document(&app).await;
    let error_body = &document["components"]["schemas"]["ErrorBody"];
    let properties: BTreeSet<&str> =
        error_body["properties"].as_object().expect("ErrorBody has properties").keys().map(String::as_str).collect();
    assert_eq!(properties, BTreeSet::from(["code", "message", "details"]));
    let required: BTreeSet<&str> =
        error_body["required"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(required, BTreeSet::from(["code", "message"]));
    let (_, schemars) = schemas::json_schemas().into_iter().find(|(file, _)| *file == "error_body.json").unwrap();
    assert_eq!(error_body["properties"], schemars["properties"]);
    store.close();
}

#[tokio::test]
async fn every_operation_describes_its_answers_and_error_codes() {
    let (app, store, _dir) = app();
    let document = document(&app).await;
    let error_body = Value::from("#/components/schemas/ErrorBody");
    for (method, path) in operations(&document) {
        let operation = &document["paths"][&path][&method];
        let responses = operation["responses"].as_object().unwrap_or_else(|| panic!("{method} {path}: responses"));
        assert!(responses.keys().any(|status| status.starts_with('2')), "{method} {path}: no success answer");
        for (status, response) in responses.iter().filter(|(status, _)| status.starts_with('3')) {
            // A 304 of a validated read: no body, said so.
            assert_eq!(status, "304", "{method} {path}: only 304 among the 3xx answers");
            assert!(response.get("content").is_none(), "{method} {path} 304: no body");
            let description = response["description"].as_str().unwrap_or_default();
            assert!(description.contains("`ETag`"), "{method} {path} 304: {description}");
        }
        for (status, response) in
            responses.iter().filter(|(status, _)| !status.starts_with('2') && !status.starts_with('3'))
        {
            let description = response["description"].as_str().unwrap_or_default();
            let content = response["content"].as_object().unwrap_or_else(|| panic!("{method} {path} {status}"));
            if content.contains_key("text/plain") {
                // The answers of axum's own extractors, described as such.
                assert!(description.contains("plain-text"), "{method} {path} {status}: {description}");
                continue;
            }
            assert_eq!(
                content["application/json"]["schema"]["$ref"], error_body,
                "{method} {path} {status}: the error body"
            );
            assert!(description.contains('`'), "{method} {path} {status}: no stable code in {description:?}");
        }
        if operation.get("security").is_some() {
            let unauthorized = responses["401"]["description"].as_str().unwrap_or_default();
            for code in CALLER_CODES {
                assert!(unauthorized.contains(&format!("`{code}`")), "{method} {path}: 401 lacks {code}");
            }
        }
    }
    let sync = &document["paths"]["/v1/sync"]["post"];
    for content_type in ["application/cbor", "application/json"] {
        assert_eq!(
            sync["requestBody"]["content"][content_type]["schema"]["$ref"], "#/components/schemas/SyncRequest",
            "{content_type}"
        );
        assert_eq!(
            sync["responses"]["200"]["content"][content_type]["schema"]["$ref"], "#/components/schemas/SyncResponse",
            "{content_type}"
        );
    }
    store.close();
}

#[tokio::test]
async fn the_operations_that_take_a_token_say_so() {
    let (app, store, _dir) = app();
    let document = document(&app).await;
    let public: BTreeSet<&str> = [
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/v1/auth/login",
        "/v1/auth/challenge",
        "/v1/auth/refresh",
        "/v1/log/checkpoint",
        "/v1/log/key",
        "/v1/log/proofs/consistency",
        "/v1/public/matters",
        "/v1/public/campaigns",
        "/v1/public/campaigns/{campaign_id}",
    ]
    .into();
    for (method, path) in ROUTES {
        let secured = document["paths"][path][method].get("security").is_some();
        assert_eq!(secured, !public.contains(path), "{method} {path}");
        // What the document says is what the router does: a protected route refuses a request
        // without a token.
        if secured {
            let response = app.clone().oneshot(request(method, &concrete(path))).await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        }
    }
    store.close();
}
