//! The `pushgate` command: parse arguments, load the configuration, set up
//! logging, call the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use pushgate::config::{Config, LogFormat};
use pushgate::{cli, daemon};

#[derive(Parser)]
#[command(
    name = "pushgate",
    version,
    about = "DICOM gateway beside the PACS: intake, push authorizations, DICOMweb, gateway push"
)]
struct Args {
    /// Configuration file (TOML); every key is optional. Default: embedded defaults.
    #[arg(long, global = true, env = "PUSHGATE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (DICOM intake, HTTPS, drop folder).
    Serve,
    /// List the studies that have arrived (asks the running daemon).
    Studies {
        /// One JSON array on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild the index from the instance files (daemon stopped).
    Reindex,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Plain => builder.init(),
    }
    std::panic::set_hook(Box::new(|info| {
        tracing::error!("panic: {info}");
    }));
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pushgate: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    // Everything pushgate writes holds patient data: never world-readable.
    // SAFETY: umask only sets the process's file mode creation mask.
    unsafe {
        libc::umask(0o027);
    }
    let config = Config::load(args.config.as_deref())?;
    init_logging(config.log.format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match args.command {
        Command::Serve => runtime.block_on(serve(config, args.config)),
        Command::Studies { json } => {
            runtime.block_on(cli::print_studies(&config, json, &mut std::io::stdout()))?;
            Ok(())
        }
        Command::Reindex => {
            let report = cli::reindex(&config)?;
            for (path, reason) in &report.problems {
                eprintln!("not indexed: {}: {reason}", path.display());
            }
            for path in &report.orphaned {
                eprintln!("older duplicate moved aside: {}", path.display());
            }
            println!(
                "reindex: {} instance(s) indexed, {} file(s) with problems",
                report.indexed,
                report.problems.len()
            );
            Ok(())
        }
    }
}

async fn serve(config: Config, config_file: Option<PathBuf>) -> anyhow::Result<()> {
    let running = daemon::start(config.clone()).await?;
    println!(
        "pushgate {} ready\n  config      {}\n  data        {}\n  DICOM       {} (AE title {}){}\n  HTTPS       https://{}  (health: /healthz)\n  links       {}/s/…\n  TLS cert    {}\n              SHA-256 {}\n  admin token {}{}",
        env!("CARGO_PKG_VERSION"),
        config_file.map_or("embedded defaults".to_string(), |p| p.display().to_string()),
        config.data_dir.display(),
        running.dicom_addr,
        config.dicom.ae_title,
        if config.dicom.allowed_calling_aes.is_empty() {
            String::new()
        } else {
            format!(
                ", calling AEs {}",
                config.dicom.allowed_calling_aes.join(" ")
            )
        },
        running.http_addr,
        config.public_url,
        running.cert_path.display(),
        running.cert_fingerprint,
        config.admin.token_file.display(),
        config
            .import
            .watch_dir
            .as_ref()
            .map_or(String::new(), |d| format!(
                "\n  drop folder {}",
                d.display()
            )),
    );
    // One line for scripts and tests to wait on.
    println!(
        "pushgate listening dicom={} http={}",
        running.dicom_addr, running.http_addr
    );
    daemon::stop_signal().await;
    running.stop().await?;
    tracing::info!("stopped");
    Ok(())
}
