//! Every endpoint, for the roles allowed and each role refused.

use fieldsync_tests::harness::{TestServer, enroll};

const PASSWORD: &str = "correct horse battery";

/// Every protected endpoint, with a body, and the roles allowed (empty: any signed-in officer).
fn endpoints() -> Vec<(&'static str, &'static str, serde_json::Value, &'static [&'static str])> {
    let none = serde_json::Value::Null;
    vec![
        ("GET", "/v1/admin/officers", none.clone(), &["admin", "supervisor"]),
        ("POST", "/v1/admin/officers", serde_json::json!({"officer_id": "N1", "name": "新人"}), &["admin"]),
        ("POST", "/v1/admin/roles", serde_json::json!({"officer_id": "OFF", "role": "reviewer"}), &["admin"]),
        ("DELETE", "/v1/admin/roles", serde_json::json!({"officer_id": "OFF", "role": "reviewer"}), &["admin"]),
        ("GET", "/v1/admin/certificates", none.clone(), &["admin", "supervisor", "reviewer"]),
        (
            "POST",
            "/v1/admin/certificates",
            serde_json::json!({"number": "GX-N", "officer_id": "OFF", "issuing_authority": "厅", "valid_from_ms": 0,
                "valid_until_ms": 4_000_000_000_000i64, "status_history": []}),
            &["admin"],
        ),
        (
            "POST",
            "/v1/admin/certificates/GX-OFF/renew",
            serde_json::json!({"valid_until_ms": 4_000_000_000_000i64}),
            &["admin"],
        ),
        ("POST", "/v1/admin/certificates/GX-OFF/status", serde_json::json!({"status": "active"}), &["admin"]),
        ("POST", "/v1/admin/certificates/GX-OFF/review", serde_json::json!({}), &["admin"]),
        ("GET", "/v1/admin/certificates/GX-OFF/affected", none.clone(), &["admin"]),
        ("GET", "/v1/admin/certificates/review-due", none.clone(), &["admin", "supervisor"]),
        ("POST", "/v1/admin/certificates/GX-REV/surrender", serde_json::json!({}), &["admin"]),
        (
            "POST",
            "/v1/admin/recusals",
            serde_json::json!({"officer_id": "OFF", "entity_id": "E00002", "ground": "x"}),
            &["admin", "supervisor"],
        ),
        ("GET", "/v1/devices", none.clone(), &["admin"]),
        ("POST", "/v1/devices/D-none/revoke", none.clone(), &["admin"]),
        (
            "POST",
            "/v1/tasks",
            serde_json::json!({"entity_id": "E00001", "matter": "M01", "team": ["OFF", "SUP"],
            "window_start_ms": 0, "window_end_ms": 4_000_000_000_000i64}),
            &["supervisor"],
        ),
        ("GET", "/v1/tasks", none.clone(), &[]),
        ("GET", "/v1/tasks/T-none/team", none.clone(), &[]),
        ("GET", "/v1/records", none.clone(), &[]),
        ("GET", "/v1/quarantine", none.clone(), &["reviewer", "supervisor"]),
        ("POST", "/v1/devices/challenge", none.clone(), &["officer"]),
        (
            "POST",
            "/v1/admin/matters",
            serde_json::json!({"version": 1, "matters": [{"code": "M01", "zh": "排污许可证执行情况检查",
                "targets": ["key"], "basis": "排污许可管理条例"}]}),
            &["admin"],
        ),
        ("GET", "/v1/admin/entities/E00001/history", none.clone(), &["admin", "supervisor"]),
        ("GET", "/v1/admin/calendar/2026", none.clone(), &["admin", "supervisor"]),
        (
            "PUT",
            "/v1/admin/calendar/2026",
            serde_json::json!({"holidays": ["2026-10-01"], "working_weekends": []}),
            &["admin"],
        ),
        ("GET", "/v1/inspectors", none.clone(), &["supervisor"]),
        (
            "POST",
            "/v1/campaigns",
            serde_json::json!({"matter": "M01", "tiers": [{"tier": "key", "count": 1}], "period": "2026-Q4",
                "starts_on": "2026-10-01", "ends_on": "2026-12-31", "team_size": 2, "max_tasks_per_officer": 1}),
            &["supervisor"],
        ),
        ("GET", "/v1/campaigns", none.clone(), &["supervisor"]),
        ("GET", "/v1/campaigns/overdue", none.clone(), &["supervisor"]),
        ("GET", "/v1/campaigns/C-none", none.clone(), &["supervisor"]),
        ("POST", "/v1/campaigns/C-none/draw", serde_json::json!({}), &["supervisor"]),
        ("POST", "/v1/campaigns/C-none/results/T-none/publish", none.clone(), &["supervisor"]),
    ]
}

#[tokio::test]
async fn every_endpoint_admits_its_roles_and_refuses_the_others() {
    let server = TestServer::start().await;
    server.entities(3);
    let accounts = [("OFF", "officer"), ("SUP", "supervisor"), ("REV", "reviewer"), ("ADM", "admin")];
    for (id, role) in accounts {
        server.account(id, PASSWORD, &[role]);
        server.certificate(id);
    }
    let mut tokens = Vec::new();
    for (id, role) in accounts {
        tokens.push((role, Some(server.token(id, PASSWORD).await)));
    }
    tokens.push(("anonymous", None));
    for (method, path, body, allowed) in endpoints() {
        for (role, token) in &tokens {
            let mut request = server.client.request(method.parse().unwrap(), server.url(path));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if !body.is_null() {
                request = request.json(&body);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let code = response.json::<serde_json::Value>().await.unwrap_or_default()["code"].clone();
            let admitted = token.is_some() && (allowed.is_empty() || allowed.contains(role));
            if admitted {
                assert!(status != 401 && status != 403, "{method} {path} as {role}: {status} {code}");
            } else if token.is_none() {
                assert_eq!((status, code.as_str().unwrap()), (401, "missing_token"), "{method} {path} anonymous");
            } else {
                assert_eq!((status, code.as_str().unwrap()), (403, "role_required"), "{method} {path} as {role}");
            }
        }
    }
    // Sync takes a device token only.
    let officer = server.token("OFF", PASSWORD).await;
    let response =
        server.post_sync(&officer, "application/json", r#"{"protocol":1,"since":null,"documents":[]}"#).await;
    assert_eq!(response.status(), 403);
    let phone = enroll(&server, "OFF", PASSWORD).await;
    let response =
        server.post_sync(&phone.token, "application/json", r#"{"protocol":1,"since":null,"documents":[]}"#).await;
    assert_eq!(response.status(), 200);
}
