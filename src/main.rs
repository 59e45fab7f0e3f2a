//! The `splitrail` command line: parse arguments, load the config, run.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use splitrail::config::{Config, Role};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "splitrail",
    version,
    about = "MySQL read/write-splitting proxy"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    Serve {
        /// Config file; without it, the embedded default for the script lab
        /// (listen 127.0.0.1:6033, nodes on 127.0.0.1:33061-33064).
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Validate a config file and print the topology it describes.
    Check {
        #[arg(short, long)]
        config: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => {
            let config = match config {
                Some(path) => {
                    Config::load(&path).with_context(|| format!("loading {}", path.display()))?
                }
                None => Config::embedded_default(),
            };
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(splitrail::run(config, shutdown_signal()))?;
        }
        Command::Check { config } => {
            let cfg =
                Config::load(&config).with_context(|| format!("checking {}", config.display()))?;
            println!("{}: OK", config.display());
            println!("listen {}", cfg.proxy.listen);
            for node in &cfg.nodes {
                let role = match node.role {
                    Role::Master => "master",
                    Role::Replica => "replica",
                };
                println!("  {:<12} {:<8} {}", node.name, role, node.addr);
            }
        }
    }
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
