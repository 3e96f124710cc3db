//! The `pushgate` command: parse arguments, load the configuration, set up
//! logging, call the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use pushgate::config::{Config, LogFormat};
use pushgate::{cli, daemon};
use sd_notify::NotifyState;

#[derive(Parser)]
#[command(
    name = "pushgate",
    version,
    about = "DICOM gateway beside the PACS: intake, push authorizations, DICOMweb, gateway push"
)]
struct Args {
    /// Configuration file (TOML); every key is optional. Default:
    /// /etc/pushgate/pushgate.toml if it exists (the Debian package's),
    /// else the embedded defaults.
    #[arg(long, global = true, env = "PUSHGATE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run; the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
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
    /// Share a study: a link and a code for one recipient (asks the daemon).
    Share {
        /// Study Instance UID (or give --accession for a study still to come).
        study_uid: Option<String>,
        /// Accession Number of a study that has not arrived yet.
        #[arg(long, conflicts_with = "study_uid")]
        accession: Option<String>,
        /// With --accession: the patient's ID (Patient ID) the study must
        /// carry (or --bsn; accession numbers repeat across senders).
        #[arg(long = "patient-id", value_name = "ID", requires = "accession")]
        patient_id: Option<String>,
        /// With --accession: the patient's BSN the study must carry.
        #[arg(long, value_name = "BSN", requires = "accession")]
        bsn: Option<String>,
        /// With --accession: the calling AE title the study must come from.
        #[arg(long = "source-ae", value_name = "AE", requires = "accession")]
        source_ae: Option<String>,
        /// Only these series (repeat).
        #[arg(long = "series", value_name = "UID")]
        series: Vec<String>,
        /// Leave out a modality, e.g. PR (repeat).
        #[arg(long = "exclude-modality", value_name = "MODALITY")]
        exclude_modality: Vec<String>,
        /// Leave out a SOP class (repeat).
        #[arg(long = "exclude-sop-class", value_name = "UID")]
        exclude_sop_class: Vec<String>,
        /// Only a UZI card of this organization (URA) may open it.
        #[arg(long = "to-ura", value_name = "URA")]
        to_ura: Option<String>,
        /// …with one of these UZI role codes, e.g. 01.039 (repeat).
        #[arg(long = "role", value_name = "CODE", requires = "to_ura")]
        role: Vec<String>,
        /// How long it is valid, e.g. 7d (default grants.default_ttl).
        #[arg(long)]
        expires: Option<String>,
        /// For the recipient: reason for referral, for whom.
        #[arg(long)]
        message: Option<String>,
        /// How often it may be passed on (doorautoriseren); 0: never.
        #[arg(long = "delegation-depth", value_name = "N")]
        delegation_depth: Option<u8>,
        /// Why it may be shared: `referral` (a referral, consent presumed)
        /// or `explicit-consent` (with --consent-note). Required.
        #[arg(long = "legal-basis", value_name = "BASIS",
              value_parser = ["referral", "explicit-consent", "explicit_consent"])]
        legal_basis: String,
        /// Who consented and how (with --legal-basis explicit-consent).
        #[arg(long = "consent-note", value_name = "TEXT")]
        consent_note: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List grants and their state (asks the daemon).
    Grants {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a grant and everything passed on from it (asks the daemon).
    Revoke {
        grant_id: String,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The console's local accounts (asks the daemon): add one (prints its
    /// enrolment link), list, disable, reset (a new enrolment link).
    Users {
        #[command(subcommand)]
        command: UsersCommand,
        #[arg(long, global = true)]
        json: bool,
    },
    /// The audit trail: verify its chain, or export it for an auditor or SIEM.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Push a study to another organization's gateway, OpenPGP-encrypted
    /// (asks the daemon; the outbox delivers it).
    Send {
        study_uid: String,
        /// The receiving organization (its gateway is in the address book).
        #[arg(long = "to-ura", value_name = "URA")]
        to_ura: String,
        /// For the recipient: reason for referral, for whom.
        #[arg(long)]
        message: Option<String>,
        /// "spoed" goes before everything routine.
        #[arg(long, value_parser = ["spoed", "routine"])]
        priority: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Pushes to other gateways: pending, sent (with receipt), failed.
    Outbox {
        #[arg(long)]
        json: bool,
    },
    /// The work queue: every push and forward with its attempts, next
    /// attempt and last error.
    Queue {
        #[arg(long)]
        json: bool,
    },
    /// The local PACS (`[pacs] address`): search it with C-FIND.
    Pacs {
        #[command(subcommand)]
        command: PacsCommand,
    },
    /// The gateway's own OpenPGP key.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Rebuild the index from the instance files and the grants from the
    /// journal (daemon stopped).
    Reindex,
    /// Make the data directory, admin token, TLS certificate and OpenPGP key
    /// where missing; never replaces one that exists.
    Init,
    /// The configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// A new account; prints the one-time enrolment link (24 hours).
    Add {
        /// Login name: a-z, 0-9, '.', '-', '_'.
        name: String,
        #[arg(long, value_parser = ["user", "admin"])]
        role: String,
        /// The name colleagues read in the console and the journal.
        #[arg(long)]
        display_name: Option<String>,
    },
    List,
    /// End an account and its sessions.
    Disable {
        name: String,
    },
    /// A new enrolment link (new password and TOTP); ends its sessions.
    Reset {
        name: String,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration (file, then PUSHGATE__SECTION__KEY
    /// variables) and what it refers to; print the effective configuration.
    Check {
        /// The file to check (default: --config / PUSHGATE_CONFIG).
        file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PacsCommand {
    /// Studies in the PACS (C-FIND, study level); with --series-of, the
    /// series of one study. Conditions combine; `*` and `?` are wildcards
    /// in --name.
    Find {
        #[command(flatten)]
        args: cli::pacs::FindArgs,
        /// One JSON array on stdout.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make the key (serve makes one on first start if there is none).
    Init {
        /// cv25519 (Ed25519 signing, Curve25519 encryption) or rsa4096.
        #[arg(long, default_value = "cv25519")]
        algorithm: String,
    },
    /// Print the fingerprint and the TLS pin peers put in their address book.
    Show {
        /// The ASCII-armored public certificate instead.
        #[arg(long)]
        armor: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain from its genesis; names the first record that
    /// breaks it and every record missing.
    Verify {
        /// A head written down earlier (`SEQ:HASH`, as verify prints it):
        /// that record must still be in the chain with that hash. Repeatable.
        #[arg(long, value_name = "SEQ:HASH")]
        anchor: Vec<String>,
    },
    /// Print records as JSON lines.
    Export {
        /// From this time (2026-11-01T08:00:00Z) or this long ago (24h).
        #[arg(long)]
        since: Option<String>,
    },
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
        Err(e) if e.downcast_ref::<WorkersFailed>().is_some() => {
            eprintln!("pushgate: {e:#}");
            ExitCode::from(EXIT_WORKER_FAILED)
        }
        Err(e) => {
            eprintln!("pushgate: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Exit status after a worker failed (EX_SOFTWARE): systemd's
/// `Restart=on-failure` starts the daemon again.
const EXIT_WORKER_FAILED: u8 = 70;

/// How long the daemon goes on serving after a worker failed, before it
/// drains: long enough for a probe of /readyz or a scrape to see why, short
/// enough that it and the drain (25 s) stay within the unit's
/// WatchdogSec=30s, counted from the last ping.
const FAILURE_GRACE: std::time::Duration = std::time::Duration::from_secs(4);

/// The daemon drained and stopped because these workers failed.
#[derive(Debug)]
struct WorkersFailed(Vec<(&'static str, String)>);

impl std::fmt::Display for WorkersFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let named: Vec<String> = self
            .0
            .iter()
            .map(|(name, why)| format!("worker {name} failed: {why}"))
            .collect();
        write!(f, "stopped: {}", named.join("; "))
    }
}

impl std::error::Error for WorkersFailed {}

/// The Debian package's configuration: what the service runs with, so a
/// command typed on that host (where `sudo` drops PUSHGATE_CONFIG) talks to
/// that daemon.
const INSTALLED_CONFIG: &str = "/etc/pushgate/pushgate.toml";

fn run(mut args: Args) -> anyhow::Result<()> {
    if args.config.is_none() && std::path::Path::new(INSTALLED_CONFIG).exists() {
        args.config = Some(PathBuf::from(INSTALLED_CONFIG));
    }
    // Responses are streamed by blocking-pool threads in 256 KiB chunks;
    // glibc gives each thread its own arena (up to 8 per core) and keeps
    // what they free, which grew the RSS of 8 concurrent downloads past
    // 100 MB. Four arenas hold it well under that at no measured cost.
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only tunes the allocator; called before any thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
    // Everything pushgate writes holds patient data: never world-readable.
    // SAFETY: umask only sets the process's file mode creation mask.
    unsafe {
        libc::umask(0o027);
    }
    if let Command::Config {
        command: ConfigCommand::Check { file },
    } = &args.command
    {
        return config_check(file.as_deref().or(args.config.as_deref()));
    }
    let (config, effective) = Config::load_effective(args.config.as_deref())?;
    init_logging(config.log.format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match args.command {
        Command::Serve => runtime.block_on(serve(config, effective, args.config)),
        Command::Studies { json } => {
            runtime.block_on(cli::print_studies(&config, json, &mut std::io::stdout()))?;
            Ok(())
        }
        Command::Share {
            study_uid,
            accession,
            patient_id,
            bsn,
            source_ae,
            series,
            exclude_modality,
            exclude_sop_class,
            to_ura,
            role,
            expires,
            message,
            delegation_depth,
            legal_basis,
            consent_note,
            json,
        } => {
            let args = cli::ShareArgs {
                legal_basis,
                consent_note,
                study_uid,
                accession,
                patient_id,
                bsn,
                source_ae,
                series,
                exclude_modalities: exclude_modality,
                exclude_sop_classes: exclude_sop_class,
                to_ura,
                roles: role,
                expires,
                message,
                delegation_depth,
            };
            if args.study_uid.is_none() && args.accession.is_none() {
                anyhow::bail!(
                    "name the study: STUDY_UID, or --accession for a study still to come"
                );
            }
            runtime.block_on(cli::share(&config, args, json, &mut std::io::stdout()))?;
            Ok(())
        }
        Command::Pacs {
            command: PacsCommand::Find { args, json },
        } => runtime.block_on(cli::pacs::find(&config, args, json, &mut std::io::stdout())),
        Command::Users { command, json } => {
            let action = match command {
                UsersCommand::Add {
                    name,
                    role,
                    display_name,
                } => cli::UsersAction::Add {
                    name,
                    role,
                    display_name,
                },
                UsersCommand::List => cli::UsersAction::List,
                UsersCommand::Disable { name } => cli::UsersAction::Disable(name),
                UsersCommand::Reset { name } => cli::UsersAction::Reset(name),
            };
            runtime.block_on(cli::users(&config, action, json, &mut std::io::stdout()))?;
            Ok(())
        }
        Command::Grants { json } => {
            runtime.block_on(cli::list_grants(&config, json, &mut std::io::stdout()))?;
            Ok(())
        }
        Command::Revoke {
            grant_id,
            reason,
            json,
        } => {
            let reason = reason.unwrap_or_default();
            runtime.block_on(cli::revoke(
                &config,
                &grant_id,
                &reason,
                json,
                &mut std::io::stdout(),
            ))?;
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Verify { anchor },
        } => {
            let anchors = anchor
                .iter()
                .map(|a| cli::audit::parse_anchor(a))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow::anyhow!("--anchor: {e}"))?;
            if !cli::audit::verify(&config, &anchors, &mut std::io::stdout())? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Export { since },
        } => {
            let since = since
                .map(|s| cli::audit::parse_since(&s))
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let count = cli::audit::export(&config, since, &mut std::io::stdout().lock())?;
            eprintln!("{count} record(s)");
            Ok(())
        }
        Command::Send {
            study_uid,
            to_ura,
            message,
            priority,
            json,
        } => {
            let args = cli::relay::SendArgs {
                study_uid,
                to_ura,
                message,
                priority,
            };
            runtime.block_on(cli::relay::send(
                &config,
                args,
                json,
                &mut std::io::stdout(),
            ))?;
            Ok(())
        }
        Command::Outbox { json } => {
            runtime.block_on(cli::relay::outbox(&config, json, &mut std::io::stdout()))?;
            Ok(())
        }
        Command::Queue { json } => {
            runtime.block_on(cli::relay::queue(&config, json, &mut std::io::stdout()))?;
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Init { algorithm },
        } => {
            let algorithm = algorithm
                .parse()
                .map_err(|e| anyhow::anyhow!("--algorithm: {e}"))?;
            cli::relay::keys_init(&config, algorithm, &mut std::io::stdout())?;
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Show { armor },
        } => {
            cli::relay::keys_show(&config, armor, &mut std::io::stdout())?;
            Ok(())
        }
        Command::Init => {
            cli::init::init(&config, &mut std::io::stdout())?;
            Ok(())
        }
        Command::Config { .. } => unreachable!("handled before the configuration is loaded"),
        Command::Reindex => {
            let report = cli::reindex(&config)?;
            for (path, reason) in &report.problems {
                eprintln!("not indexed: {}: {reason}", path.display());
            }
            for path in &report.orphaned {
                eprintln!("older duplicate moved aside: {}", path.display());
            }
            println!(
                "reindex: {} instance(s) indexed, {} file(s) with problems; {}",
                report.indexed,
                report.problems.len(),
                report.extra
            );
            Ok(())
        }
    }
}

/// Prints the effective configuration on stdout, problems on stderr; fails
/// if there is any.
fn config_check(file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let (config, effective) = Config::load_effective(file)?;
    let problems = cli::init::check_references(&config);
    println!(
        "# effective configuration: embedded defaults < {} < PUSHGATE__* environment\n{effective}",
        file.map_or("(no file)".to_string(), |p| p.display().to_string())
    );
    if problems.is_empty() {
        eprintln!("configuration OK");
        Ok(())
    } else {
        for p in &problems {
            eprintln!("problem: {p}");
        }
        anyhow::bail!("{} problem(s) in the configuration", problems.len())
    }
}

/// `started`: the effective configuration it starts on, what a reload
/// compares with.
async fn serve(
    config: Config,
    started: String,
    config_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    pushgate::console::remember_effective(started.clone());
    let mut signals = daemon::Signals::new().context("cannot listen for signals")?;
    // A stop asked for during start-up (the index check after a crash can
    // take minutes) is honoured at once, not after it.
    let mut running = tokio::select! {
        started = daemon::start(config.clone()) => started?,
        () = signals.stop() => {
            tracing::info!("stopped during start-up");
            return Ok(());
        }
    };
    println!(
        "pushgate {} ready\n  config      {}\n  data        {}\n  DICOM       {} (AE title {}){}\n  HTTPS       https://{}  (health: /healthz)\n  console     https://{}/console/  (and the admin API)\n  links       {}/s/…\n  TLS cert    {}\n              SHA-256 {}\n  admin token {}{}",
        env!("CARGO_PKG_VERSION"),
        config_file
            .as_ref()
            .map_or("embedded defaults".to_string(), |p| p.display().to_string()),
        config.data_dir.display(),
        running.dicom_addr,
        config.dicom.ae_title,
        if config.dicom.allowed_calling_aes.is_empty() {
            String::new()
        } else {
            format!(
                ", calling AEs {}",
                config
                    .dicom
                    .allowed_calling_aes
                    .iter()
                    .map(|ae| ae.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        },
        running.http_addr,
        running.console_addr,
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
        "pushgate listening dicom={} http={} console={}",
        running.dicom_addr, running.http_addr, running.console_addr
    );
    notify(&[NotifyState::Ready, NotifyState::Status("serving")]);
    let health = running.health();
    let watchdog = tokio::spawn(watchdog(health.clone()));
    loop {
        let signal = tokio::select! {
            signal = signals.next() => signal,
            () = health.first_failure() => {
                let failed = health.failed();
                let names: Vec<&str> = failed.iter().map(|(name, _)| *name).collect();
                tracing::error!(workers = ?names, "a worker failed: draining, then exiting for a restart");
                notify(&[
                    NotifyState::Stopping,
                    NotifyState::Status(&format!("worker {} failed; stopping", names.join(", "))),
                ]);
                // Still serving for a moment, so that whoever watches
                // /readyz and /metrics sees which worker failed before the
                // listeners close; a SIGTERM meanwhile cuts it short.
                tokio::select! {
                    () = tokio::time::sleep(FAILURE_GRACE) => {}
                    () = signals.stop() => {}
                }
                break;
            }
        };
        match signal {
            daemon::Signal::Stop => break,
            daemon::Signal::Reload => {
                // MONOTONIC_USEC lets a Type=notify-reload unit (systemd
                // 253+) match the reload; older versions ignore it.
                match NotifyState::monotonic_usec_now() {
                    Ok(now) => notify(&[NotifyState::Reloading, now]),
                    Err(_) => notify(&[NotifyState::Reloading]),
                }
                let status = reload(&mut running, config_file.as_deref(), &started).await;
                notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
            }
        }
    }
    if health.failed().is_empty() {
        notify(&[
            NotifyState::Stopping,
            NotifyState::Status("draining transfers"),
        ]);
    }
    let failed = running.stop().await?;
    watchdog.abort();
    if !failed.is_empty() {
        return Err(WorkersFailed(failed).into());
    }
    tracing::info!("stopped");
    Ok(())
}

/// Re-reads the configuration and applies what can change while running;
/// a bad file leaves everything as it was, and says why.
/// Returns the status line for the service manager (`systemctl status`).
async fn reload(
    running: &mut daemon::Running,
    config_file: Option<&std::path::Path>,
    started: &str,
) -> String {
    use pushgate::metrics::{METRICS, StateLabel};
    let result = match Config::load_effective(config_file) {
        Ok((config, effective)) => {
            let changed = pushgate::config::changed_keys(started, &effective);
            running
                .reload(config, &changed)
                .await
                .map_err(anyhow::Error::from)
        }
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(reloaded) => {
            METRICS
                .reloads
                .get_or_create(&StateLabel { state: "ok" })
                .inc();
            tracing::info!(
                book_entries = reloaded.book_entries,
                "reloaded: TLS certificate, client CAs and CRLs, allowed calling AE titles, address book"
            );
            if reloaded.need_restart.is_empty() {
                "serving (reloaded)".to_string()
            } else {
                let keys = reloaded.need_restart.join(", ");
                tracing::warn!("changed, but applied only by a restart: {keys}");
                format!("serving; restart to apply {keys}")
            }
        }
        Err(e) => {
            METRICS
                .reloads
                .get_or_create(&StateLabel { state: "failed" })
                .inc();
            tracing::error!("reload failed, nothing changed: {e:#}");
            format!("serving; reload failed, nothing changed: {e:#}")
        }
    }
}

/// Tells systemd (Type=notify) where we are; nothing without NOTIFY_SOCKET.
fn notify(state: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(false, state) {
        tracing::warn!("cannot notify the service manager: {e}");
    }
}

/// WATCHDOG=1 at half the interval systemd asked for, from the runtime the
/// daemon runs on: if the runtime stalls, the pings stop and systemd
/// restarts the service. They stop too once a worker failed: a gateway
/// that stopped part of its work must not look alive (and if the drain
/// hangs, systemd's watchdog ends it).
async fn watchdog(health: std::sync::Arc<pushgate::worker::Health>) {
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return;
    }
    let every = std::time::Duration::from_micros(usec / 2);
    tracing::info!(every = ?every, "watchdog pings");
    loop {
        if !health.failed().is_empty() {
            tracing::warn!("watchdog pings stopped: a worker failed");
            return;
        }
        notify(&[NotifyState::Watchdog]);
        tokio::time::sleep(every).await;
    }
}
