//! The `diffcopy` program: `diffcopy SOURCE TARGET` syncs a file,
//! `diffcopy serve` hosts a directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use std::io::IsTerminal;

use clap::{Parser, Subcommand};
use diffcopy::client::{
    ClientError, Location, Progress, ProtocolChoice, RsyncPeer, SyncOptions, TreeOptions, parse_size,
    run_benchmark, sync, sync_tree, table,
};
use diffcopy::limits::{DEFAULT_BLOCK_SIZE, check_block_size};
use diffcopy::{
    AppState, BucketState, CommitMode, FaultHook, HookTarget, ServerConfig, StoreUrl, TlsFiles, defaults,
};
use diffcopy_core::HashAlgorithm;

#[derive(Debug, Parser)]
#[command(
    name = "diffcopy",
    version,
    about = "Fast, safe, differential transfer of large files over HTTP",
    after_help = "Each of SOURCE and TARGET is a local path or http[s]://host[:port]/path.\n\
                  Exit codes: 0 done, 1 error, 2 bad arguments, 3 server unreachable, \
                  4 refused (401/403), 5 source missing, 6 conflict (target changed), \
                  7 TLS refused (certificate or handshake), 8 some files of a tree (-r) failed, \
                  130 interrupted."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    sync: SyncArgs,
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
    Serve(Box<ServeArgs>),
    /// Print a scoped token (a JWT signed HS256) for `diffcopy serve
    /// --jwt-secret-file` with the same file: for scripts and tests
    /// (docs/embedding.md).
    Token(TokenArgs),
}

#[derive(Debug, clap::Args)]
struct TokenArgs {
    /// The shared secret: the file's bytes, one trailing newline removed (at least 32 bytes).
    #[arg(long, value_name = "FILE")]
    jwt_secret_file: PathBuf,
    /// A file (users/42/a.bin) or a folder ending in / (users/42/; / is
    /// everything); repeatable.
    #[arg(long = "path", value_name = "PATH", required = true)]
    paths: Vec<String>,
    /// What the token allows: upload, download, list, delete (comma-separated).
    #[arg(long, value_name = "LIST", value_delimiter = ',', required = true)]
    allow: Vec<diffcopy::token::Permission>,
    /// How long it lasts: 90s, 15m, 2h, 7d.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = diffcopy::token::parse_lifetime)]
    expires: u64,
    /// Who: in the server's logs, stats and hooks; uploads it opens are its own.
    #[arg(long)]
    sub: Option<String>,
    /// The largest file it may upload: 10GiB, 500MB or bytes.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_size: Option<u64>,
}

#[derive(Debug, clap::Args)]
struct SyncArgs {
    /// Where the data comes from: a local path or http[s]://host[:port]/path
    /// (port 8080 for http, 443 for https when omitted).
    source: Option<String>,
    /// Where it goes: a local path or http[s]://host[:port]/path.
    target: Option<String>,
    /// Also trust the CA certificates in this PEM file for https:// (a
    /// private CA; the system's roots stay trusted).
    #[arg(long, value_name = "FILE", env = "DIFFCOPY_CACERT")]
    cacert: Option<PathBuf>,
    /// Block size: 1MiB, 64K (K, M, G are powers of 1024; KB, MB, GB of 1000) or bytes.
    #[arg(short, long, default_value_t = DEFAULT_BLOCK_SIZE, value_parser = parse_block_size)]
    block_size: u32,
    /// Block hash: sha1, sha256 or blake3.
    #[arg(short = 'm', long = "hash-method", default_value = "sha1")]
    hash_method: HashAlgorithm,
    /// Send every block without comparing.
    #[arg(short = 'W', long)]
    whole_file: bool,
    /// Blocks in flight at once.
    #[arg(short, long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
    /// Compare and report the similarity and the bytes to send; write nothing.
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// How long to keep trying an upload the server cannot take now (503
    /// with Retry-After, as when its object store is down); 0: never.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    retry_for: u64,
    /// Bearer token for the server.
    #[arg(long, env = "DIFFCOPY_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print the final summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// The server's protocol.
    #[arg(long, value_enum, default_value_t = ProtocolChoice::Auto)]
    protocol: ProtocolChoice,
    /// Deprecated: the same as `--protocol pdiffcopy` (in place, not
    /// atomic). The server's default commit already costs what changed.
    #[arg(long, conflicts_with = "protocol", hide = true)]
    inplace: bool,
    /// A directory tree: SOURCE's files below TARGET (SOURCE/ with a
    /// trailing slash: its contents), compared by size and time.
    #[arg(short = 'r', long)]
    recursive: bool,
    /// With -r: remove target files the source lacks (local targets).
    #[arg(long, requires = "recursive")]
    delete: bool,
    /// With -r: leave out paths matching this gitignore-style pattern (repeatable).
    #[arg(long, value_name = "PATTERN", requires = "recursive")]
    exclude: Vec<String>,
    /// With -r: compare content (protocol v2's hashes), not size and time.
    #[arg(long, requires = "recursive")]
    checksum: bool,
    /// With -r: send every file by itself, never small new ones many to a request.
    #[arg(long, requires = "recursive")]
    no_batch: bool,
    /// With -r: files synced at once.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    files_in_flight: u16,
    /// Benchmark: mutate the local TARGET COUNT times by a growing share
    /// (100/COUNT*i %), resync each time and print a table.
    #[arg(short = 'B', long, value_name = "COUNT", value_parser = clap::value_parser!(u32).range(1..=100))]
    benchmark: Option<u32>,
    /// Benchmark without asking before the target is mutated (or DIFFCOPY_BENCHMARK=allowed).
    #[arg(long)]
    yes: bool,
    /// rsync daemon host[:port] to time beside diffcopy in benchmark mode.
    #[arg(long, env = "DIFFCOPY_BENCHMARK_RSYNC_SERVER")]
    rsync_server: Option<String>,
    /// The rsync daemon's module.
    #[arg(long, env = "DIFFCOPY_BENCHMARK_RSYNC_MODULE")]
    rsync_module: Option<String>,
    /// The local directory the rsync module serves (for a local SOURCE).
    #[arg(long, env = "DIFFCOPY_BENCHMARK_RSYNC_ROOT", default_value = "/")]
    rsync_root: PathBuf,
}

fn parse_block_size(text: &str) -> Result<u32, String> {
    let size = parse_size(text)?;
    let size = u32::try_from(size).unwrap_or(u32::MAX);
    check_block_size(size).map_err(|e| format!("{text}: {e}"))?;
    Ok(size)
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on (IP:PORT, or a port for 127.0.0.1).
    #[arg(short, long, default_value_t = defaults::LISTEN, value_parser = parse_listen)]
    listen: SocketAddr,
    /// Serve HTTPS (HTTP/2 and HTTP/1.1) with this PEM certificate chain,
    /// the server's certificate first; reread on SIGHUP.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert; reread on SIGHUP.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Directory to serve (created if missing).
    #[arg(long, default_value = defaults::ROOT, conflicts_with = "store")]
    root: PathBuf,
    /// Serve the files of an S3-compatible bucket instead of a directory
    /// (s3://BUCKET[/PREFIX]); several servers may share it. Credentials
    /// from AWS's chain: environment, ~/.aws files (profile AWS_PROFILE,
    /// credential_process, SSO), web identity, container, EC2 IMDSv2.
    #[arg(long, value_name = "s3://BUCKET[/PREFIX]", value_parser = StoreUrl::parse)]
    store: Option<StoreUrl>,
    /// The S3 endpoint, http(s)://host[:port] (default: AWS's for the
    /// region); ignored without --store.
    #[arg(long, value_name = "URL", env = "DIFFCOPY_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    /// The S3 region (default: AWS_REGION, ~/.aws/config, else us-east-1).
    #[arg(long, value_name = "REGION", requires = "store")]
    s3_region: Option<String>,
    /// How the bucket is named in requests: virtual (BUCKET.HOST/KEY) or
    /// path (HOST/BUCKET/KEY); default virtual for AWS, path otherwise.
    #[arg(long, value_name = "STYLE", requires = "store")]
    s3_addressing: Option<diffcopy::Addressing>,
    /// Require `Authorization: Bearer TOKEN` on every API request.
    #[arg(long, env = "DIFFCOPY_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Also take scoped tokens: JWTs signed HS256 with the secret in this
    /// file (its bytes, one trailing newline removed; at least 32 bytes).
    #[arg(long, value_name = "FILE")]
    jwt_secret_file: Option<PathBuf>,
    /// Also take scoped tokens signed EdDSA (Ed25519) or ES256 (P-256)
    /// with the private half of this public key (PEM).
    #[arg(long, value_name = "FILE")]
    jwt_public_key: Option<PathBuf>,
    /// After each commit, POST a JSON event here, signed with the
    /// --hook-secret-file (docs/embedding.md).
    #[arg(long, value_name = "URL", requires = "hook_secret_file")]
    hook_url: Option<String>,
    /// The webhook's HMAC-SHA256 key: the file's bytes, one trailing newline
    /// removed (at least 16 bytes).
    #[arg(long, value_name = "FILE", requires = "hook_url")]
    hook_secret_file: Option<PathBuf>,
    /// Seconds a scoped token is still taken after its exp (and before its nbf).
    #[arg(long, value_name = "SECS", default_value_t = diffcopy::token::LEEWAY,
        value_parser = clap::value_parser!(u64).range(0..=3600))]
    jwt_leeway: u64,
    /// Refuse every write.
    #[arg(long)]
    read_only: bool,
    /// Allow browser pages from this origin to call the API (repeatable).
    #[arg(long = "cors-origin")]
    cors_origins: Vec<String>,
    /// Largest file an upload may create, in bytes.
    #[arg(long, default_value_t = defaults::MAX_FILE_SIZE)]
    max_file_size: u64,
    /// Upload sessions open at once.
    #[arg(long, default_value_t = defaults::MAX_UPLOADS)]
    max_uploads: usize,
    /// Seconds an idle upload session lives.
    #[arg(long, default_value_t = defaults::UPLOAD_TTL_SECS)]
    upload_ttl: u64,
    /// Signatures computed at once.
    #[arg(long, default_value_t = defaults::MAX_HASH_JOBS)]
    max_hash_jobs: usize,
    /// Serve the page from this directory (development) instead of the embedded copy.
    #[arg(long)]
    assets_dir: Option<PathBuf>,
    /// Seconds a client may take to send a request's headers (the connection is closed after).
    #[arg(long, default_value_t = defaults::HEADER_TIMEOUT_SECS)]
    header_timeout: u64,
    /// Seconds a client may take to send a request body (408 after).
    #[arg(long, default_value_t = defaults::BODY_TIMEOUT_SECS)]
    body_timeout: u64,
    /// How a commit becomes the target: `auto` clones where the file system
    /// can (XFS, Btrfs), else journals in place when that writes less, else
    /// replaces; `reflink`, `journal` and `replace` insist on one way. Every
    /// way is crash-safe: after a crash the target is the old version or
    /// the new one.
    #[arg(long, value_enum, default_value_t = defaults::COMMIT)]
    commit: CommitMode,
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
        Some(Command::Serve(args)) => serve(*args),
        Some(Command::Token(args)) => token(&args),
        None => run_sync(cli.sync, cli.quiet > 0),
    }
}

fn run_sync(args: SyncArgs, quiet: bool) -> ExitCode {
    let (Some(source), Some(target)) = (args.source.as_deref(), args.target.as_deref()) else {
        eprintln!("diffcopy: give SOURCE and TARGET, or `diffcopy serve` (see --help)");
        return ExitCode::from(2);
    };
    let parse = if args.recursive { Location::parse_dir } else { Location::parse };
    let contents = source.ends_with('/');
    let locations = parse(source).and_then(|s| Ok((s, parse(target)?)));
    let (source, target) = match locations {
        Ok(pair) => pair,
        Err(e) => return fail(&e),
    };
    if args.inplace && !target.is_remote() {
        return fail(&ClientError::Usage("--inplace applies to uploads (a remote TARGET)".into()));
    }
    if args.inplace {
        tracing::warn!("--inplace is deprecated: it means --protocol pdiffcopy (in place, not atomic)");
    }
    let options = SyncOptions {
        source,
        target,
        block_size: args.block_size,
        algorithm: args.hash_method,
        whole_file: args.whole_file,
        concurrency: usize::from(args.concurrency),
        dry_run: args.dry_run,
        retry_for: Duration::from_secs(args.retry_for),
        token: args.token.clone(),
        cacert: args.cacert.clone(),
        protocol: if args.inplace { ProtocolChoice::Pdiffcopy } else { args.protocol },
        progress: Progress::new(!quiet && std::io::stderr().is_terminal()),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&ClientError::Local(format!("cannot start the async runtime: {e}"))),
    };
    if let Some(count) = args.benchmark {
        return benchmark(&runtime, &options, count, &args);
    }
    if args.recursive {
        let tree = TreeOptions {
            sync: options,
            contents,
            delete: args.delete,
            excludes: args.exclude.clone(),
            checksum: args.checksum,
            files_in_flight: usize::from(args.files_in_flight),
            json: args.json,
            no_batch: args.no_batch,
        };
        return run_tree(&runtime, &tree, args.json, quiet);
    }
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = sync(&options) => Some(outcome),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    match outcome {
        Some(Ok(summary)) => {
            if args.json {
                println!("{}", serde_json::to_string(&summary).unwrap_or_default());
            } else if !quiet {
                eprintln!("{}", summary.line());
            }
            ExitCode::SUCCESS
        }
        Some(Err(e)) => fail(&e),
        None => {
            let note = match options.target {
                Location::Remote { .. } => "an upload to a diffcopy server resumes on the next run",
                Location::Local(_) => "the target is untouched",
            };
            eprintln!("diffcopy: interrupted; {note}");
            ExitCode::from(130)
        }
    }
}

/// `diffcopy -r`: exit 0 when every file synced, 8 when some failed.
fn run_tree(runtime: &tokio::runtime::Runtime, tree: &TreeOptions, json: bool, quiet: bool) -> ExitCode {
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = sync_tree(tree) => Some(outcome),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    match outcome {
        Some(Ok(summary)) => {
            if json {
                let mut line = serde_json::to_value(&summary).unwrap_or_default();
                line["type"] = "summary".into();
                println!("{line}");
            } else if !quiet {
                eprintln!("{}", summary.line());
            }
            if summary.files_failed > 0 { ExitCode::from(8) } else { ExitCode::SUCCESS }
        }
        Some(Err(e)) => fail(&e),
        None => {
            eprintln!("diffcopy: interrupted; every file is its old or its new version, and a rerun goes on");
            ExitCode::from(130)
        }
    }
}

fn benchmark(
    runtime: &tokio::runtime::Runtime,
    options: &SyncOptions,
    count: u32,
    args: &SyncArgs,
) -> ExitCode {
    let allowed = args.yes || std::env::var("DIFFCOPY_BENCHMARK").is_ok_and(|v| v == "allowed");
    if !allowed {
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "diffcopy: benchmark mode mutates {}; confirm with --yes or DIFFCOPY_BENCHMARK=allowed",
                options.target
            );
            return ExitCode::from(2);
        }
        eprint!("This mutates {} and then restores its contents. Continue? [y/N] ", options.target);
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !answer.trim().eq_ignore_ascii_case("y") {
            eprintln!("diffcopy: benchmark cancelled");
            return ExitCode::from(2);
        }
    }
    let rsync = match (&args.rsync_server, &args.rsync_module) {
        (Some(server), Some(module)) => {
            Some(RsyncPeer { server: server.clone(), module: module.clone(), root: args.rsync_root.clone() })
        }
        _ => None,
    };
    match runtime.block_on(run_benchmark(options, count, rsync.as_ref())) {
        Ok(rows) => {
            print!("{}", table(&rows));
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn fail(err: &ClientError) -> ExitCode {
    eprintln!("diffcopy: {err}");
    ExitCode::from(err.exit_code())
}

fn token(args: &TokenArgs) -> ExitCode {
    let now = diffcopy::token::now();
    let claims = diffcopy::token::Claims {
        exp: now + args.expires,
        nbf: None,
        iat: Some(now),
        sub: args.sub.clone(),
        paths: args.paths.clone(),
        allow: args.allow.clone(),
        max_size: args.max_size,
    };
    match diffcopy::token::mint(&args.jwt_secret_file, &claims) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("diffcopy: {e}");
            ExitCode::from(2)
        }
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    if args.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
        eprintln!("diffcopy: --token (or DIFFCOPY_TOKEN) is empty: give a token, or leave it out");
        return ExitCode::from(2);
    }
    let jwt = match diffcopy::token::Verifier::load(
        args.jwt_secret_file.as_deref(),
        args.jwt_public_key.as_deref(),
        args.jwt_leeway,
    ) {
        Ok(jwt) => jwt.map(std::sync::Arc::new),
        Err(e) => {
            eprintln!("diffcopy: {e}");
            return ExitCode::from(2);
        }
    };
    let hook = match (&args.hook_url, &args.hook_secret_file) {
        (Some(url), Some(secret)) => match HookTarget::new(url, secret) {
            Ok(target) => Some(target),
            Err(e) => {
                eprintln!("diffcopy: {e}");
                return ExitCode::from(2);
            }
        },
        _ => None,
    };
    let config = ServerConfig {
        jwt,
        hook,
        listen: args.listen,
        tls: args.tls_cert.zip(args.tls_key).map(|(cert, key)| TlsFiles { cert, key }),
        root: args.root,
        token: args.token.clone(),
        read_only: args.read_only,
        cors_origins: args.cors_origins,
        max_file_size: args.max_file_size,
        max_uploads: args.max_uploads,
        upload_ttl: Duration::from_secs(args.upload_ttl),
        max_hash_jobs: args.max_hash_jobs,
        assets_dir: args.assets_dir,
        header_timeout: Duration::from_secs(args.header_timeout.max(1)),
        body_timeout: Duration::from_secs(args.body_timeout.max(1)),
        commit: args.commit,
        fault_hook: FaultHook::from_env(),
        ..ServerConfig::default()
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("diffcopy: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(mut store) = args.store {
        store.endpoint = args.s3_endpoint;
        store.region = args.s3_region;
        store.addressing = args.s3_addressing;
        return runtime.block_on(serve_bucket(config, store));
    }
    runtime.block_on(async move {
        let state = match AppState::new(config.clone()) {
            Ok(state) => state,
            Err(e) => {
                eprintln!("diffcopy: cannot serve {}: {e}", config.root.display());
                return ExitCode::from(1);
            }
        };
        let (listener, addr) = match bind(&config).await {
            Ok(bound) => bound,
            Err(code) => return code,
        };
        let scheme = state.scheme();
        tracing::info!("serving {} at {scheme}://{addr}/", state.root_path().display());
        if config.tls.is_none() && !addr.ip().is_loopback() {
            tracing::warn!(
                "plain HTTP on {addr}: tokens and data cross the network readable; \
                 serve HTTPS with --tls-cert and --tls-key, or behind a TLS reverse proxy"
            );
        }
        served(diffcopy::run(listener, state, diffcopy::shutdown_signal()).await)
    })
}

/// The listening socket and its address; exit 1 if it cannot be had.
async fn bind(config: &ServerConfig) -> Result<(tokio::net::TcpListener, SocketAddr), ExitCode> {
    match tokio::net::TcpListener::bind(config.listen).await {
        Ok(listener) => {
            let addr = listener.local_addr().unwrap_or(config.listen);
            Ok((listener, addr))
        }
        Err(e) => {
            eprintln!("diffcopy: cannot listen on {}: {e}", config.listen);
            Err(ExitCode::from(1))
        }
    }
}

/// The exit code of a server that has stopped.
fn served(result: std::io::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("diffcopy: server error: {e}");
            ExitCode::from(1)
        }
    }
}

/// `diffcopy serve --store s3://...`.
async fn serve_bucket(config: ServerConfig, store: StoreUrl) -> ExitCode {
    let state = match BucketState::connect(config.clone(), &store).await {
        Ok(state) => state,
        Err(e) => {
            eprintln!("diffcopy: cannot serve s3://{}/{}: {e}", store.bucket, store.prefix);
            return ExitCode::from(1);
        }
    };
    let (listener, addr) = match bind(&config).await {
        Ok(bound) => bound,
        Err(code) => return code,
    };
    tracing::info!("serving s3://{}/{} at {}://{addr}/", store.bucket, store.prefix, state.scheme());
    served(diffcopy::run_bucket(listener, state, diffcopy::shutdown_signal()).await)
}
