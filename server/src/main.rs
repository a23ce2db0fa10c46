//! The `diffcopy` program: `diffcopy serve` hosts a directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use diffcopy::{AppState, ServerConfig};

#[derive(Debug, Parser)]
#[command(name = "diffcopy", version, about = "Fast, safe, differential transfer of large files over HTTP")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// More log output (repeatable).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Less log output (repeatable).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    quiet: u8,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a directory over HTTP: API v1, pdiffcopy's endpoints and the uploader page.
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on (IP:PORT, or a port for 127.0.0.1).
    #[arg(short, long, default_value = "127.0.0.1:8080", value_parser = parse_listen)]
    listen: SocketAddr,
    /// Directory to serve (created if missing).
    #[arg(long, default_value = "diffcopy-data")]
    root: PathBuf,
    /// Require `Authorization: Bearer TOKEN` on every API request.
    #[arg(long, env = "DIFFCOPY_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Refuse every write.
    #[arg(long)]
    read_only: bool,
    /// Allow browser pages from this origin to call the API (repeatable).
    #[arg(long = "cors-origin")]
    cors_origins: Vec<String>,
    /// Largest file an upload may create, in bytes.
    #[arg(long, default_value_t = 1 << 40)]
    max_file_size: u64,
    /// Upload sessions open at once.
    #[arg(long, default_value_t = 64)]
    max_uploads: usize,
    /// Seconds an idle upload session lives.
    #[arg(long, default_value_t = 3600)]
    upload_ttl: u64,
    /// Signatures computed at once.
    #[arg(long, default_value_t = 4)]
    max_hash_jobs: usize,
    /// Serve the page from this directory (development) instead of the embedded copy.
    #[arg(long)]
    assets_dir: Option<PathBuf>,
}

fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse().map_err(|_| format!("{text:?} is not IP:PORT or a port number"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match i16::from(cli.verbose) - i16::from(cli.quiet) {
        ..=-2 => tracing::Level::ERROR,
        -1 => tracing::Level::WARN,
        0 => tracing::Level::INFO,
        1 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    tracing_subscriber::fmt().with_max_level(level).with_writer(std::io::stderr).init();
    match cli.command {
        Command::Serve(args) => serve(args),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let config = ServerConfig {
        listen: args.listen,
        root: args.root,
        token: args.token,
        read_only: args.read_only,
        cors_origins: args.cors_origins,
        max_file_size: args.max_file_size,
        max_uploads: args.max_uploads,
        upload_ttl: Duration::from_secs(args.upload_ttl),
        max_hash_jobs: args.max_hash_jobs,
        assets_dir: args.assets_dir,
        ..ServerConfig::default()
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("diffcopy: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let state = match AppState::new(config.clone()) {
            Ok(state) => state,
            Err(e) => {
                eprintln!("diffcopy: cannot serve {}: {e}", config.root.display());
                return ExitCode::from(1);
            }
        };
        let listener = match tokio::net::TcpListener::bind(config.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("diffcopy: cannot listen on {}: {e}", config.listen);
                return ExitCode::from(1);
            }
        };
        let addr = listener.local_addr().unwrap_or(config.listen);
        tracing::info!("serving {} at http://{addr}/", state.root.path().display());
        match diffcopy::run(listener, state, diffcopy::shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("diffcopy: server error: {e}");
                ExitCode::from(1)
            }
        }
    })
}
