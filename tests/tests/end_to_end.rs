//! End-to-end tests: the real server on a real port, real HTTP clients, a real SQLite file.
//!
//! Modules:
//! - `health`: the server starts on the embedded default, answers, and stops cleanly.

mod health {
    use std::sync::Arc;

    use server::store::sqlite::SqliteStore;

    #[tokio::test]
    async fn server_answers_on_a_real_port_and_stops_on_shutdown() {
        let data = tempfile::tempdir().unwrap();
        let config = server::Config::new(data.path().to_path_buf());
        let store = SqliteStore::open(&config.database_path()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = server::AppState::new(config, store.clone() as Arc<dyn server::store::Store>);
        let serving = tokio::spawn(server::run(listener, state, async {
            let _ = stopped.await;
        }));
        let body: serde_json::Value =
            reqwest::get(format!("http://{address}/healthz")).await.unwrap().json().await.unwrap();
        assert_eq!(body["status"], "ok");
        let ready = reqwest::get(format!("http://{address}/readyz")).await.unwrap();
        assert_eq!(ready.status(), 200);
        stop.send(()).unwrap();
        serving.await.unwrap().unwrap();
        assert!(reqwest::get(format!("http://{address}/healthz")).await.is_err(), "stopped serving");
    }
}
