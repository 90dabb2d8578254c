//! The entity registry imported as bureaus have it: a spreadsheet's CSV export in UTF-8 (with or
//! without a byte-order mark) or GB18030, CRLF line ends, and quoted fields holding commas,
//! quotes and line breaks; every bad line refused with its line and column, and nothing imported.

use fieldsync_tests::harness::TestServer;
use serde_json::Value;

const PASSWORD: &str = "correct horse battery";

/// The header of `../shared/data/entities.csv`.
const HEADER: &str = "id,name,credit_code,division_code,division,industry,tier,legal_representative,address,latitude,longitude,discharge_permit";

/// Quotes a field as a spreadsheet does: only when it holds a comma, a quote or a line break,
/// with inner quotes doubled.
fn quoted(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// One row as a spreadsheet writes it, fields quoted where they need it.
fn row(fields: &[&str]) -> String {
    fields.iter().map(|f| quoted(f)).collect::<Vec<_>>().join(",")
}

/// Three entities whose names and addresses hold what splitting on commas breaks on.
fn rows() -> Vec<[&'static str; 12]> {
    vec![
        [
            "E90001",
            "柳州市\"泰信\"汽车零部件有限责任公司",
            "91450223416G3QBX69",
            "450223",
            "鹿寨县",
            "auto parts",
            "key",
            "蒙静军",
            "广西壮族自治区柳州市鹿寨县通江路749号, 2栋",
            "24.297723",
            "109.637874",
            "",
        ],
        [
            "E90002",
            "柳州市利昌制糖有限责任公司",
            "914502031PKA2P7X87",
            "450203",
            "鱼峰区",
            "sugar refining",
            "general",
            "覃军燕",
            "广西壮族自治区柳州市鱼峰区泰和路574号,“东门”",
            "24.47524",
            "109.143239",
            "",
        ],
        [
            "E90003",
            "Liuzhou \"Great River\", Ltd.",
            "914502232QW0G5BC7X",
            "450223",
            "鹿寨县",
            "auto parts",
            "general",
            "蒙静军",
            "1 River Road, Suite \"B\"",
            "24.3",
            "109.6",
            "",
        ],
    ]
}

/// A registry file as a spreadsheet exports it: header and rows, CRLF line ends.
fn spreadsheet(rows: &[[&str; 12]]) -> String {
    let mut text = format!("{HEADER}\r\n");
    for fields in rows {
        text.push_str(&row(fields));
        text.push_str("\r\n");
    }
    text
}

async fn import(server: &TestServer, token: &str, body: Vec<u8>) -> reqwest::Response {
    server
        .client
        .post(server.url("/v1/admin/entities"))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// The stored entities, as (id, name, address).
fn stored(server: &TestServer) -> Vec<Vec<String>> {
    server.query("SELECT entity_id, name, address FROM entities ORDER BY entity_id")
}

#[tokio::test]
async fn a_spreadsheet_export_in_utf8_with_a_bom_or_gb18030_imports_with_its_quotes_and_commas() {
    let server = TestServer::start().await;
    server.account("ADM", PASSWORD, &["admin"]);
    let admin = server.token("ADM", PASSWORD).await;
    let entities = rows();
    let text = spreadsheet(&entities);
    let expected: Vec<Vec<String>> =
        entities.iter().map(|e| vec![e[0].to_string(), e[1].to_string(), e[8].to_string()]).collect();
    let mut with_bom = b"\xEF\xBB\xBF".to_vec();
    with_bom.extend_from_slice(text.as_bytes());
    let (gb18030, _, unmappable) = encoding_rs::GB18030.encode(&text);
    assert!(!unmappable, "every character has a GB18030 form");
    assert!(std::str::from_utf8(&gb18030).is_err(), "the GB18030 bytes are not UTF-8");
    for (what, body) in
        [("UTF-8", text.clone().into_bytes()), ("UTF-8 with a BOM", with_bom), ("GB18030", gb18030.into_owned())]
    {
        let response = import(&server, &admin, body).await;
        assert_eq!(response.status(), 200, "{what}: {}", response.text().await.unwrap());
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["imported"], entities.len(), "{what}");
        assert_eq!(stored(&server), expected, "{what}: names and addresses whole, quotes undoubled");
    }
}

#[tokio::test]
async fn bad_lines_are_each_named_by_line_and_column_and_nothing_is_imported() {
    let server = TestServer::start().await;
    server.account("ADM", PASSWORD, &["admin"]);
    let admin = server.token("ADM", PASSWORD).await;
    let mut entities = rows();
    entities.truncate(2);
    // Line 2 spans two lines (a quoted line break in a cell, as Alt+Enter makes), so the second
    // entity starts on line 4; its latitude is out of range (column 10).
    entities[0][5] = "auto parts\nand moulds";
    entities[1][9] = "91.5";
    let mut text = spreadsheet(&entities);
    // Line 5: a row with a field missing.
    text.push_str("E90009,只有名字\r\n");
    // Line 6: the first entity's id again (column 1), with a bad credit code (column 3).
    text.push_str(&row(&[
        "E90001",
        "某公司",
        "91450223416G3QBX60",
        "450223",
        "鹿寨县",
        "x",
        "key",
        "某人",
        "某地",
        "24.3",
        "109.6",
        "",
    ]));
    text.push_str("\r\n");
    let (gb18030, _, _) = encoding_rs::GB18030.encode(&text);
    let before = server.snapshot();
    let response = import(&server, &admin, gb18030.into_owned()).await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "invalid_csv", "{body}");
    let problems: Vec<(u64, Option<u64>, Option<String>)> = body["details"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["line"].as_u64().unwrap(), p["column"].as_u64(), p["field"].as_str().map(str::to_string)))
        .collect();
    assert_eq!(
        problems,
        [
            (4, Some(10), Some("latitude".to_string())),
            (5, None, None),
            (6, Some(3), Some("credit_code".to_string())),
            (6, Some(1), Some("id".to_string())),
        ],
        "{body}"
    );
    assert_eq!(server.snapshot(), before, "nothing imported");
    // Bytes that are neither UTF-8 nor GB18030: the line of the first bad byte.
    let mut garbled = format!("{HEADER}\r\n").into_bytes();
    garbled.extend_from_slice(b"E1,\xFF\xFF,x\r\n");
    let response = import(&server, &admin, garbled).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!((body["code"].as_str(), body["details"]["line"].as_u64()), (Some("invalid_csv_encoding"), Some(2)));
    assert_eq!(server.snapshot(), before, "nothing imported");
}
