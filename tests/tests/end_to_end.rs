//! End-to-end tests: the real server on a real port, real HTTP clients.
//!
//! Modules:
//! - `health`: the server starts on the embedded default and answers.

mod health {
    use std::sync::Arc;

    #[tokio::test]
    async fn server_answers_healthz_on_a_real_port_and_stops_on_shutdown() {
        let data = std::env::temp_dir().join(format!("fieldsync-e2e-{}", std::process::id()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = server::AppState { config: Arc::new(server::Config { data_dir: data.clone() }) };
        let serving = tokio::spawn(server::run(listener, state, async {
            let _ = stopped.await;
        }));
        let body: serde_json::Value =
            reqwest::get(format!("http://{address}/healthz")).await.unwrap().json().await.unwrap();
        assert_eq!(body["status"], "ok");
        assert!(data.is_dir(), "the data folder is created");
        stop.send(()).unwrap();
        serving.await.unwrap().unwrap();
        assert!(reqwest::get(format!("http://{address}/healthz")).await.is_err(), "stopped serving");
        let _ = std::fs::remove_dir_all(data);
    }
}
