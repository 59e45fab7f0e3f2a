//! The `splitrail` command line: parse arguments, then hand over to the
//! library (`splitrail::run` for the proxy, `splitrail::cli` for the
//! operator commands).

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use splitrail::cli::{self, AdminTarget};
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

/// How to reach running proxies' admin endpoints.
#[derive(clap::Args)]
struct AdminArgs {
    /// Admin endpoint(s), comma-separated host:port (default: the config's
    /// [admin] listen, else 127.0.0.1:6034).
    #[arg(long, value_name = "ADDR[,ADDR…]")]
    admin: Option<String>,
    /// Admin token (default: $SPLITRAIL_ADMIN_TOKEN, else the config's).
    #[arg(long)]
    token: Option<String>,
    /// Config file to read the admin address and token from.
    #[arg(short, long)]
    config: Option<PathBuf>,
}

impl AdminArgs {
    fn target(&self) -> anyhow::Result<AdminTarget> {
        Ok(AdminTarget::resolve(
            self.admin.as_deref(),
            self.token.as_deref(),
            self.config.as_deref(),
        )?)
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Action {
    /// No new statements; sessions move away at their next transaction boundary.
    Down,
    /// No new sessions; running ones finish.
    Drain,
    /// Clear the mark.
    Up,
    /// Make this master the writer.
    Promote,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    Serve {
        /// Config file; without it, the embedded default for the script lab
        /// (listen 127.0.0.1:6033, admin 127.0.0.1:6034, nodes on 127.0.0.1:13301-13304).
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Validate a config file and print the topology it describes.
    Check {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Show the nodes as a running proxy sees them.
    Nodes {
        #[command(flatten)]
        admin: AdminArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Mark a node down, drain it, clear its mark, or promote a master.
    Node {
        #[arg(value_enum)]
        action: Action,
        /// Node name, as in the config.
        name: String,
        /// promote: even a master with errant transactions (GTIDs of its
        /// own that the writer lacks); they become the truth.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Make running proxies re-read their config file (users, weights, lag limit).
    Reload {
        #[command(flatten)]
        admin: AdminArgs,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve(config),
        Command::Check { config } => check(config),
        Command::Nodes { admin, json } => {
            print!("{}", cli::nodes(&admin.target()?, json)?);
            Ok(())
        }
        Command::Node {
            action,
            name,
            force,
            admin,
        } => {
            let action = match action {
                Action::Down => "down",
                Action::Drain => "drain",
                Action::Up => "up",
                Action::Promote => "promote",
            };
            print!(
                "{}",
                cli::node_action(&admin.target()?, action, &name, force)?
            );
            Ok(())
        }
        Command::Reload { admin } => {
            print!("{}", cli::reload(&admin.target()?)?);
            Ok(())
        }
    }
}

fn serve(config: Option<PathBuf>) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = match config {
        Some(path) => Config::load(&path).with_context(|| format!("loading {}", path.display()))?,
        None => Config::embedded_default(),
    };
    // `proxy.threads = 1`: one current-thread runtime, no cross-thread
    // wakeups; otherwise a multi-thread runtime with that many workers
    // (0 = one per core). See docs/benchmarks.md for the measured choice.
    let runtime = match config.proxy.threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        0 => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?,
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build()?,
    };
    runtime.block_on(splitrail::run(config, shutdown_signal()))?;
    Ok(())
}

fn check(config: PathBuf) -> anyhow::Result<()> {
    let cfg = Config::load(&config).with_context(|| format!("checking {}", config.display()))?;
    println!("{}: OK", config.display());
    println!("listen {}  admin {}", cfg.proxy.listen, cfg.admin.listen);
    for node in &cfg.nodes {
        let role = match node.role {
            Role::Master => "master",
            Role::Replica => "replica",
        };
        println!("  {:<12} {:<8} {}", node.name, role, node.addr);
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
