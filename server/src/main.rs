//! `fieldsync-server`: the server binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "fieldsync-server", version, about = "The fieldsync server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API on the embedded default (SQLite and a blob folder under the data folder).
    Serve {
        /// Folder of the database and blobs.
        #[arg(long, env = "FIELDSYNC_DATA", default_value = "./data")]
        data: PathBuf,
        /// Address to listen on.
        #[arg(long, env = "FIELDSYNC_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    match Cli::parse().command {
        Command::Serve { data, listen } => {
            let listener = tokio::net::TcpListener::bind(listen).await?;
            let state = server::AppState { config: Arc::new(server::Config { data_dir: data }) };
            server::run(listener, state, shutdown_signal()).await?;
            tracing::info!("stopped");
        }
    }
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
