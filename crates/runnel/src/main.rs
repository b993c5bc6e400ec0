//! The `runnel` binary. `runnel serve` runs a broker with everything embedded:
//! a local data directory and no other process to start.

mod bench;
mod client;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use runnel_broker::http::AdminState;
use runnel_broker::{Broker, BrokerConfig, Server, Source};
use tokio::signal::unix::{signal, SignalKind};

#[derive(Parser)]
#[command(
    name = "runnel",
    version,
    about = "Runnel: an event-streaming platform that speaks the Apache Kafka protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker.
    ///
    /// Example: `runnel serve --data-dir /var/lib/runnel --set num.partitions=3`
    Serve(ServeArgs),
    /// Generate load against a broker and measure throughput and latency.
    ///
    /// Example: `runnel bench produce --topic load --duration 20`
    Bench(bench::BenchArgs),
    // The client commands take their help, examples included, from the
    // doc comments of their argument structs.
    Topic(client::topic::TopicArgs),
    Produce(client::produce::ProduceArgs),
    Consume(client::consume::ConsumeArgs),
    Group(client::group::GroupArgs),
    Cluster(client::cluster::ClusterArgs),
    User(client::user::UserArgs),
    Quota(client::quota::QuotaArgs),
    Acl(client::acl::AclArgs),
    /// Print a shell completion script.
    ///
    /// Examples:
    ///   runnel completions bash > ~/.local/share/bash-completion/completions/runnel
    ///   runnel completions zsh > ~/.zfunc/_runnel
    ///   runnel completions fish > ~/.config/fish/completions/runnel.fish
    #[command(verbatim_doc_comment, about = "Print a shell completion script")]
    Completions(CompletionsArgs),
}

#[derive(clap::Args)]
struct CompletionsArgs {
    /// The shell the script is for.
    shell: clap_complete::Shell,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address the Kafka listener binds (port 0 picks a free port); `listeners` (several, TLS), when set, replaces it.
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Data directory (Kafka: log.dirs).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address of the HTTP admin endpoint: /metrics (Prometheus), /health, /ready.
    #[arg(long, value_name = "HOST:PORT")]
    http: Option<String>,
    /// Address put in Metadata responses, when clients reach the broker by another name.
    #[arg(long, value_name = "HOST:PORT")]
    advertise: Option<String>,
    /// TOML file of settings under Kafka's names, e.g. `num.partitions = 3`.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Override one setting; repeatable. Example: `--set log.segment.bytes=1048576`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Print the effective configuration with the source of each value (default, file, environment, --set, or a
    /// dynamic setting stored in the data directory), then exit.
    #[arg(long)]
    print_config: bool,
    /// Log output format (levels come from RUST_LOG, default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Bench(args) => bench::run(args),
        Command::Topic(args) => client::topic::run(args),
        Command::Produce(args) => client::produce::run(args),
        Command::Consume(args) => client::consume::run(args),
        Command::Group(args) => client::group::run(args),
        Command::Cluster(args) => client::cluster::run(args),
        Command::User(args) => client::user::run(args),
        Command::Quota(args) => client::quota::run(args),
        Command::Acl(args) => client::acl::run(args),
        Command::Completions(args) => {
            clap_complete::generate(args.shell, &mut Cli::command(), "runnel", &mut std::io::stdout());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("runnel: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(args: &ServeArgs) -> anyhow::Result<BrokerConfig> {
    let mut config = BrokerConfig::default();
    if let Some(path) = &args.config {
        config.apply_toml(path)?;
    }
    // Precedence, lowest first: defaults, the TOML file, RUNNEL_ variables, --set and the named flags.
    for name in config.apply_env(std::env::vars())? {
        eprintln!("runnel: ignoring environment variable {name}: it names no broker setting");
    }
    for item in &args.overrides {
        let (key, value) = item.split_once('=').with_context(|| format!("--set {item}: expected KEY=VALUE"))?;
        config.set(key.trim(), value, Source::Override)?;
    }
    if let Some(listen) = &args.listen {
        config.set("listen", listen, Source::Override)?;
    }
    if let Some(dir) = &args.data_dir {
        config.set("log.dirs", &dir.to_string_lossy(), Source::Override)?;
    }
    if let Some(http) = &args.http {
        config.set("http.listen", http, Source::Override)?;
    }
    if let Some(adv) = &args.advertise {
        config.set("advertised.listener", adv, Source::Override)?;
    }
    config.validate()?;
    Ok(config)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = load_config(&args)?;
    if args.print_config {
        // Dynamic settings altered at run time live in the data directory's metadata log.
        let config = match runnel_broker::meta::MetadataStore::read_image(&config.data_dir())? {
            Some(image) => {
                config.with_dynamic(&image.broker_configs(None), &image.broker_configs(Some(config.node_id())))
            }
            None => config,
        };
        for (key, value, source) in config.entries() {
            let value = if runnel_broker::config::is_sensitive(key) { runnel_broker::config::MASKED } else { value };
            println!("{key}={value}  # {source:?}");
        }
        return Ok(());
    }
    init_logging(args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        // Handlers go in before anything else, so a signal that arrives during
        // recovery or right after the readiness line still shuts down cleanly.
        let shutdown = shutdown_signal()?;
        // The admin endpoint comes up first, so /ready can say "not yet" during recovery.
        let admin = AdminState::new(runnel_broker::metrics::install());
        let http_addr = config.http_listen();
        let http_listener = runnel_broker::http::bind(http_addr)
            .await
            .with_context(|| format!("cannot bind the HTTP admin endpoint {http_addr}"))?;
        let http_addr = http_listener.local_addr()?;
        tokio::spawn(runnel_broker::http::serve(http_listener, admin.clone()));
        tracing::info!(%http_addr, "admin endpoint serving /metrics, /health, /ready");
        let broker = tokio::task::spawn_blocking(move || Broker::open(config)).await??;
        let server = Server::bind(broker.clone()).await.context("cannot set up the listeners")?;
        let addr = server.local_addr();
        for (listener, security_protocol, addr) in server.listener_addrs() {
            tracing::info!(%listener, %security_protocol, %addr, "listener bound");
        }
        admin.set_ready(broker);
        tracing::info!(%addr, "ready");
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "runnel listening on {addr}")?;
        stdout.flush()?;
        drop(stdout);
        let not_ready = admin.clone();
        server
            .run(async move {
                shutdown.await;
                not_ready.set_not_ready();
            })
            .await?;
        Ok(())
    })
}

/// Resolves on the first SIGINT or SIGTERM. A second signal exits at once:
/// acknowledged data is already as durable as the flush policy promised, and
/// the next start recovers the unflushed tail.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("shutdown requested; a second signal exits immediately");
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            eprintln!("runnel: second signal, exiting immediately");
            std::process::exit(130);
        });
    })
}
