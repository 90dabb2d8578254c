//! Slow, idle and greedy clients, on real TCP sockets: a slow head or body is cut off and its
//! connection closed, an idle connection is closed, one address holds a bounded number of
//! connections, each route takes the body it needs and no more, and request bodies together
//! hold no more memory than the budget (measured on the real server program).
//!
//! The timeouts are configured short (a second or two) so that the whole module runs in a few
//! seconds; the clients pace their own writes, and every wait on the server is bounded.
//! `FIELDSYNC_SOAK_ROUNDS=N` repeats the memory attack N times (a soak).

use std::path::Path;
use std::time::{Duration, Instant};

use fieldsync_tests::harness::{TestServer, error_code, spawn_server};
use server::store::prelude::*;
use server::store::sqlite::SqliteStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PASSWORD: &str = "correct horse battery";

/// The longest any test here waits for the server to do something.
const BOUND: Duration = Duration::from_secs(20);

fn address(server: &TestServer) -> String {
    server.base.trim_start_matches("http://").to_string()
}

/// What a raw client saw: the server's answer (possibly empty) and when the connection closed,
/// counted from the client's start.
struct Seen {
    answer: String,
    closed_after: Duration,
}

/// Connects, sends `head` at once, then `drip` one byte every `pace` until the server answers
/// or closes; reads until the server closes (at most [`BOUND`]).
async fn slow_client(address: &str, head: Vec<u8>, drip: Vec<u8>, pace: Duration) -> Seen {
    let started = Instant::now();
    let stream = TcpStream::connect(address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let (answered, mut heard) = tokio::sync::watch::channel(false);
    let writing = tokio::spawn(async move {
        if writer.write_all(&head).await.is_err() {
            return;
        }
        for byte in drip {
            tokio::select! {
                _ = heard.changed() => return,
                () = tokio::time::sleep(pace) => {}
            }
            if writer.write_all(&[byte]).await.is_err() {
                return;
            }
        }
        // Everything sent: keep the connection open, and let the server decide.
        let _ = heard.changed().await;
    });
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let reading = async {
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    answer.extend_from_slice(&buffer[..n]);
                    let _ = answered.send(true);
                }
            }
        }
    };
    tokio::time::timeout(BOUND, reading).await.expect("the server closes the connection");
    let closed_after = started.elapsed();
    writing.abort();
    Seen { answer: String::from_utf8_lossy(&answer).into_owned(), closed_after }
}

/// Sends one request on a kept-alive connection and reads its whole answer (by its
/// `Content-Length`).
async fn exchange(stream: &mut TcpStream, request: &str) -> String {
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let read = async {
        loop {
            let n = stream.read(&mut buffer).await.unwrap();
            assert!(n > 0, "closed before answering: {}", String::from_utf8_lossy(&answer));
            answer.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&answer).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length: usize = text[..end]
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                    .map_or(0, |v| v.parse().unwrap());
                if answer.len() >= end + 4 + length {
                    return text;
                }
            }
        }
    };
    tokio::time::timeout(BOUND, read).await.expect("an answer")
}

const HEALTH: &str = "GET /healthz HTTP/1.1\r\nHost: fieldsync\r\n\r\n";

#[tokio::test]
async fn a_slow_head_or_body_is_cut_off_and_its_connection_closed() {
    let server = TestServer::start_with(|c| {
        c.header_read_timeout = Duration::from_secs(1);
        c.body_read_timeout = Duration::from_secs(2);
    })
    .await;
    let address = address(&server);
    let pace = Duration::from_millis(300);
    // A byte every 300 ms for 30 s: without timeouts, held for all of it.
    let head = slow_client(
        &address,
        b"POST /v1/auth/login HTTP/1.1\r\nHost: fieldsync\r\nX-Slow: ".to_vec(),
        vec![b'a'; 100],
        pace,
    );
    let body_head = "POST /v1/auth/login HTTP/1.1\r\nHost: fieldsync\r\nContent-Type: application/json\r\n\
                     Content-Length: 100\r\n\r\n";
    let body = slow_client(&address, body_head.as_bytes().to_vec(), vec![b' '; 100], pace);
    let before = server.snapshot();
    let (head, body) = tokio::join!(head, body);
    assert!(head.closed_after >= Duration::from_millis(900), "not before its timeout: {:?}", head.closed_after);
    assert!(head.closed_after < Duration::from_secs(10), "a slow head is cut off: {:?}", head.closed_after);
    assert!(head.answer.is_empty() || head.answer.starts_with("HTTP/1.1 408"), "{}", head.answer);
    assert!(body.closed_after >= Duration::from_millis(1_900), "not before its timeout: {:?}", body.closed_after);
    assert!(body.closed_after < Duration::from_secs(10), "a slow body is cut off: {:?}", body.closed_after);
    assert!(body.answer.starts_with("HTTP/1.1 408"), "{}", body.answer);
    assert!(body.answer.contains(r#""code":"body_timeout""#), "{}", body.answer);
    assert_eq!(server.snapshot(), before, "nothing changed");
    assert_eq!(server.client.get(server.url("/healthz")).send().await.unwrap().status(), 200, "still serving");
}

#[tokio::test]
async fn an_idle_connection_is_closed() {
    let server = TestServer::start_with(|c| c.idle_timeout = Duration::from_secs(1)).await;
    let address = address(&server);
    // One that never sends a byte, and one kept alive after its request.
    let silent = slow_client(&address, Vec::new(), Vec::new(), Duration::ZERO);
    let kept = async {
        let started = Instant::now();
        let mut stream = TcpStream::connect(&address).await.unwrap();
        let answer = exchange(&mut stream, HEALTH).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let answered_after = started.elapsed();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(BOUND, stream.read_to_end(&mut rest)).await.expect("closed");
        assert!(closed.is_ok() && rest.is_empty(), "closed without another answer");
        started.elapsed() - answered_after
    };
    let (silent, kept_idle) = tokio::join!(silent, kept);
    for (what, idle) in [("a silent connection", silent.closed_after), ("a kept-alive connection", kept_idle)] {
        assert!(idle >= Duration::from_millis(900), "{what}: not before its timeout: {idle:?}");
        assert!(idle < Duration::from_secs(10), "{what}: closed: {idle:?}");
    }
    assert!(silent.answer.is_empty(), "{}", silent.answer);
}

#[tokio::test]
async fn one_address_holds_a_bounded_number_of_connections() {
    let server = TestServer::start_with(|c| c.max_connections_per_address = 3).await;
    let address = address(&server);
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        assert!(exchange(&mut stream, HEALTH).await.starts_with("HTTP/1.1 200"));
        open.push(stream);
    }
    // The fourth is closed as soon as it is accepted, without an answer.
    let fourth = slow_client(&address, HEALTH.as_bytes().to_vec(), Vec::new(), Duration::ZERO).await;
    assert!(fourth.answer.is_empty(), "{}", fourth.answer);
    assert!(fourth.closed_after < Duration::from_secs(5), "{:?}", fourth.closed_after);
    // Those open still serve.
    assert!(exchange(&mut open[0], HEALTH).await.starts_with("HTTP/1.1 200"));
    // Once one closes, another may open (the server notices the close a moment later).
    drop(open.pop());
    let deadline = Instant::now() + BOUND;
    loop {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        stream.write_all(HEALTH.as_bytes()).await.unwrap();
        let mut answer = vec![0u8; 16];
        if let Ok(Ok(n)) = tokio::time::timeout(BOUND, stream.read(&mut answer)).await
            && answer[..n].starts_with(b"HTTP/1.1 200")
        {
            break;
        }
        assert!(Instant::now() < deadline, "a place was given back");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn each_route_takes_the_body_it_needs() {
    let server = TestServer::start().await;
    server.account("ADM", PASSWORD, &["admin"]);
    let admin = server.token("ADM", PASSWORD).await;
    let before = server.snapshot();
    let padded = |bytes: usize| serde_json::json!({ "officer_id": "ADM", "password": "x".repeat(bytes) });
    let post = |path: &str, body: serde_json::Value| {
        server.client.post(server.url(path)).bearer_auth(&admin).json(&body).send()
    };
    for (path, body, limit) in [
        ("/v1/auth/login", padded(5_000), 4 << 10),
        ("/v1/auth/refresh", padded(5_000), 4 << 10),
        ("/v1/devices/challenge", padded(5_000), 4 << 10),
        ("/v1/devices", padded(5_000), 4 << 10),
        ("/v1/admin/recusals", padded(300_000), 256 << 10),
    ] {
        let response = post(path, body).await.unwrap();
        assert_eq!(response.status(), 413, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!((body["code"].as_str(), body["details"]["limit"].as_u64()), (Some("body_too_large"), Some(limit)));
    }
    // A few hundred bytes still log in; a sync body of a megabyte still reaches its handler.
    assert_eq!(server.login("ADM", PASSWORD, None).await.status(), 200);
    let sync = server.client.post(server.url("/v1/sync")).header("content-type", "application/cbor");
    let (status, code) = error_code(sync.body(vec![0u8; 1 << 20]).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (401, "missing_token"));
    // A declared length past the limit is refused before the body is sent.
    let head = "POST /v1/auth/login HTTP/1.1\r\nHost: fieldsync\r\nContent-Type: application/json\r\n\
                Content-Length: 100000000\r\n\r\n";
    let seen = slow_client(&address(&server), head.as_bytes().to_vec(), Vec::new(), Duration::ZERO).await;
    assert!(seen.answer.starts_with("HTTP/1.1 413"), "{}", seen.answer);
    assert!(seen.closed_after < Duration::from_secs(5), "{:?}", seen.closed_after);
    assert_eq!(server.snapshot(), before, "nothing changed");
}

#[tokio::test]
async fn request_bodies_together_stay_within_the_memory_budget() {
    let server = TestServer::start_with(|c| {
        c.max_body_memory_bytes = 10_000;
        c.body_read_timeout = Duration::from_secs(2);
    })
    .await;
    server.account("O1", PASSWORD, &["officer"]);
    let address = address(&server);
    // Three logins each send 3,500 of the 4,000 bytes they declare, then stall: two fit in the
    // budget (and time out), the third does not (and is told to come back).
    let head = "POST /v1/auth/login HTTP/1.1\r\nHost: fieldsync\r\nContent-Type: application/json\r\n\
                Content-Length: 4000\r\n\r\n";
    let stalled = || {
        let mut bytes = head.as_bytes().to_vec();
        bytes.extend(std::iter::repeat_n(b' ', 3_500));
        slow_client(&address, bytes, Vec::new(), Duration::ZERO)
    };
    let (a, b, c) = tokio::join!(stalled(), stalled(), stalled());
    let seen = [a, b, c];
    let mut codes: Vec<String> = seen
        .iter()
        .map(|s| {
            let code = s.answer.split(r#""code":""#).nth(1).and_then(|rest| rest.split('"').next()).unwrap_or("");
            format!("{} {code}", s.answer.get(9..12).unwrap_or(""))
        })
        .collect();
    codes.sort();
    assert_eq!(codes, ["408 body_timeout", "408 body_timeout", "503 server_busy"]);
    let busy = seen.iter().find(|s| s.answer.contains("server_busy")).unwrap();
    assert!(busy.answer.to_ascii_lowercase().contains("retry-after: 2"), "{}", busy.answer);
    assert!(busy.closed_after < Duration::from_millis(1_500), "refused at once: {:?}", busy.closed_after);
    // Their memory given back, a login goes through.
    assert_eq!(server.login("O1", PASSWORD, None).await.status(), 200);
}

/// A field of `/proc/<pid>/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("{field} in {status}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn many_stalled_bodies_hold_no_more_memory_than_the_budget() {
    const BUDGET_MIB: u64 = 8;
    const CLIENTS: usize = 40;
    const DECLARED: usize = 4 << 20;
    const SENT: usize = 3_500 << 10;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&server::store::sqlite::database_path(dir.path())).unwrap();
    store.add_signing_key(server::service::admin::new_signing_key(server::now_ms())).unwrap();
    let seeding = TestServer::external(String::new(), store, dir);
    seeding.account("ADM", PASSWORD, &["admin"]);
    let program = Path::new(env!("CARGO_BIN_EXE_e2e-fieldsync-server"));
    let budget = BUDGET_MIB.to_string();
    let arguments = ["--max-body-memory-mib", &budget, "--body-read-timeout-s", "3"];
    let (mut child, address) = spawn_server(program, seeding.dir.path(), "127.0.0.1:0", &arguments).expect("serves");
    let server = TestServer::external(format!("http://{address}"), seeding.store.clone(), tempfile::tempdir().unwrap());
    let admin = server.token("ADM", PASSWORD).await;
    let rounds: usize = std::env::var("FIELDSYNC_SOAK_ROUNDS").ok().and_then(|n| n.parse().ok()).unwrap_or(1);
    let resident_before = status_kib(child.id(), "VmRSS:");
    for round in 0..rounds {
        // Each client sends most of a registry import and stalls: 140 MiB in all, held for the
        // body timeout if nothing bounded them.
        let head = format!(
            "POST /v1/admin/entities HTTP/1.1\r\nHost: fieldsync\r\nAuthorization: Bearer {admin}\r\n\
             Content-Type: text/csv\r\nContent-Length: {DECLARED}\r\n\r\n"
        );
        let started = Instant::now();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (address, mut bytes) = (address.clone(), head.clone().into_bytes());
                bytes.extend(std::iter::repeat_n(b'x', SENT));
                tokio::spawn(async move { slow_client(&address, bytes, Vec::new(), Duration::ZERO).await })
            })
            .collect();
        let mut seen = Vec::new();
        for client in clients {
            seen.push(client.await.unwrap());
        }
        let (mut refused, mut timed_out) = (0, 0);
        for s in &seen {
            // A refused client may lose its answer to the reset that its unread bytes cause when
            // the server closes: an empty answer is a refusal too, and any other must be a code.
            if s.answer.is_empty() || s.answer.contains("server_busy") {
                refused += 1;
            } else if s.answer.contains("body_timeout") {
                timed_out += 1;
            } else {
                panic!("round {round}: {}", s.answer);
            }
        }
        let fit = (BUDGET_MIB << 20) as usize / SENT;
        assert!(timed_out <= fit, "round {round}: at most what fits was held ({timed_out})");
        assert!(refused >= CLIENTS - fit, "round {round}: the others were refused ({refused})");
        assert!(started.elapsed() < BOUND, "round {round}: every connection closed");
    }
    let peak = status_kib(child.id(), "VmHWM:");
    let grown_mib = peak.saturating_sub(resident_before) >> 10;
    eprintln!(
        "{CLIENTS} stalled bodies of {} KiB, {rounds} round(s): resident {} MiB before, peak {} MiB \
         (grew {grown_mib} MiB; budget {BUDGET_MIB} MiB)",
        SENT >> 10,
        resident_before >> 10,
        peak >> 10
    );
    // 140 MiB were sent; what the server held at its peak is the budget, the buffers of the
    // bodies being read and refused, and the allocator's slack.
    assert!(grown_mib < 5 * BUDGET_MIB, "grew {grown_mib} MiB");
    assert_eq!(server.get("/v1/admin/officers", &admin).await.status(), 200, "still serving");
    child.kill().unwrap();
    child.wait().unwrap();
}
