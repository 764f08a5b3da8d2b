//! `linear-sim` binary: runs the simulator until Ctrl-C.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use linear_sim::{SimConfig, SimServer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Seed {
    /// The standard world (teams ENG and OPS, users, API keys, an OAuth client).
    Standard,
    /// An empty world.
    None,
}

/// A local Linear GraphQL API simulator on 127.0.0.1.
///
/// Prints one JSON line `{"base_url": ..., "root_url": ..., "fixture": ...}` on
/// stdout, logs requests to stderr (no credentials) and runs until Ctrl-C.
#[derive(Debug, Parser)]
#[command(name = "linear-sim", version)]
struct Args {
    /// Port to listen on; 0 picks a free port. Example: --port 8090
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Latency added to every response, in milliseconds. Example: --latency-ms 150
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Rate-limit period in milliseconds (Linear: 3600000). Example: --period-ms 60000
    #[arg(long, default_value_t = 3_600_000)]
    period_ms: u64,
    /// World to build at start. Example: --seed none
    #[arg(long, value_enum, default_value_t = Seed::Standard)]
    seed: Seed,
    /// Waits before the 3 retries of a failed webhook delivery, in milliseconds
    /// (Linear: 1 min, 1 h, 6 h). Example: --webhook-retry-ms 100,200,400
    #[arg(long, value_delimiter = ',', default_values_t = [60_000u64, 3_600_000, 21_600_000])]
    webhook_retry_ms: Vec<u64>,
    /// Accept http:// webhook URLs on 127.0.0.1/localhost (Linear wants public HTTPS).
    #[arg(long)]
    allow_loopback_webhooks: bool,
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
        period: Duration::from_millis(args.period_ms),
        webhook_retry_delays: args
            .webhook_retry_ms
            .iter()
            .map(|ms| Duration::from_millis(*ms))
            .collect(),
        allow_loopback_webhooks: args.allow_loopback_webhooks,
        ..SimConfig::default()
    };
    let server = SimServer::start(config)
        .await
        .context("starting the simulator")?;
    let fixture = match args.seed {
        Seed::Standard => serde_json::to_value(server.handle().seed_standard())?,
        Seed::None => serde_json::Value::Null,
    };
    let line = serde_json::json!({
        "base_url": server.base_url(),
        "root_url": server.root_url(),
        "fixture": fixture,
    });
    println!("{line}");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for ctrl-c")?;
    server.shutdown().await;
    Ok(())
}
