//! `trello-sim` binary: runs the simulator until Ctrl-C.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use trello_sim::{SimConfig, SimServer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Seed {
    /// The standard world (board "Security Remediation", members, tokens).
    Standard,
    /// An empty world.
    None,
}

/// A local Trello REST API simulator on 127.0.0.1.
///
/// Prints one JSON line `{"base_url": ..., "fixture": ...}` on stdout, logs
/// requests to stderr (tokens redacted) and runs until Ctrl-C.
#[derive(Debug, Parser)]
#[command(name = "trello-sim", version)]
struct Args {
    /// Port to listen on; 0 picks a free port. Example: --port 8089
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Latency added to every response, in milliseconds. Example: --latency-ms 150
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Rate-limit window in milliseconds (Trello: 10000); the /1/members
    /// window scales with it. Example: --window-ms 1000
    #[arg(long, default_value_t = 10_000)]
    window_ms: u64,
    /// World to build at start. Example: --seed none
    #[arg(long, value_enum, default_value_t = Seed::Standard)]
    seed: Seed,
    /// Waits before the 3 retries of a failed webhook delivery, in milliseconds
    /// (Trello: 30 s, 60 s, 120 s). Example: --webhook-retry-ms 100,200,400
    #[arg(long, value_delimiter = ',', default_values_t = [30_000u64, 60_000, 120_000])]
    webhook_retry_ms: Vec<u64>,
    /// The application secret of the standard world's API key (it signs webhooks and
    /// OAuth 1.0); random when absent. Example: --api-secret "$TRELLO_API_SECRET"
    #[arg(long, env = "TRELLO_SIM_API_SECRET", hide_env_values = true)]
    api_secret: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = SimConfig {
        port: args.port,
        latency: Duration::from_millis(args.latency_ms),
        window: Duration::from_millis(args.window_ms),
        webhook_retry_delays: args
            .webhook_retry_ms
            .iter()
            .map(|ms| Duration::from_millis(*ms))
            .collect(),
        ..SimConfig::default()
    };
    let server = SimServer::start(config)
        .await
        .context("starting the simulator")?;
    let fixture = match args.seed {
        Seed::Standard => {
            let mut fx = server.handle().seed_standard();
            if let Some(secret) = &args.api_secret {
                server.handle().set_api_secret(&fx.api_key, secret);
                fx.api_secret.clone_from(secret);
            }
            serde_json::to_value(fx)?
        }
        Seed::None => serde_json::Value::Null,
    };
    let line = serde_json::json!({ "base_url": server.base_url(), "fixture": fixture });
    println!("{line}");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for ctrl-c")?;
    server.shutdown().await;
    Ok(())
}
