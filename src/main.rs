use activity_gateway::cli;
use activity_gateway::config::{Cli, Command, KeysCommand, LogFormat, RetentionCommand};

/// mimalloc instead of the system allocator: a page of 50 allocates tens of
/// thousands of small values, and glibc's malloc spent a quarter of the
/// gateway's CPU on them (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    use std::io::IsTerminal as _;
    let cli = Cli::from_env();
    let traces = activity_gateway::telemetry::otlp_tracer();
    {
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        use tracing_subscriber::Layer as _;
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| "activity_gateway=info,tower_http=info,warn".into());
        let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
        let logs = match cli.log_format {
            LogFormat::Json => logs.json().boxed(),
            // Colours only for a person at a terminal, and never under NO_COLOR.
            LogFormat::Text => logs
                .with_ansi(
                    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
                )
                .boxed(),
        };
        // Traces get the request spans and, inside them, SeaORM's span of
        // every database query, whatever the log filter says.
        let spans = traces.as_ref().map(|(_, tracer)| {
            tracing_opentelemetry::layer()
                .with_tracer(tracer.clone())
                .with_filter(
                    tracing_subscriber::filter::Targets::new()
                        .with_target("activity_gateway", tracing::Level::INFO)
                        .with_target("sea_orm", tracing::Level::INFO)
                        .with_default(tracing::Level::WARN),
                )
        });
        tracing_subscriber::registry()
            .with(logs.with_filter(filter))
            .with(spans)
            .with(activity_gateway::telemetry::PoolAcquisitions::layer())
            .init();
    }
    let result = match cli.command {
        Command::Serve(args) => cli::serve(args).await,
        Command::Migrate(args) => cli::migrate(&args.database_url).await,
        Command::Seed(args) => cli::seed(&args).await,
        Command::Export(args) => cli::export(&args).await,
        Command::LogKey(args) => cli::log_key(&args).await,
        Command::Verify(args) => cli::verify(&args).await,
        Command::Openapi => print_out(&format!("{}\n", activity_gateway::rest::openapi::json())),
        Command::Schema => print_out(&activity_gateway::graphql::sdl()),
        Command::Permissions => print_out(&activity_gateway::docs::permission_table()),
        Command::Keys {
            command: KeysCommand::Create(args),
        } => cli::create_key(&args).await,
        Command::Keys {
            command: KeysCommand::Revoke { database, key_id },
        } => cli::revoke_key(&database.database_url, &key_id).await,
        Command::Retention {
            command: RetentionCommand::Set(args),
        } => cli::set_retention(&args).await,
        Command::Streams { command } => cli::streams(command).await,
        Command::Retention {
            command: RetentionCommand::Purge(args),
        } => cli::purge(&args.database_url).await,
    };
    // Spans still buffered go out before the process ends.
    if let Some((provider, _)) = traces {
        if let Err(e) = provider.shutdown() {
            eprintln!("warning: traces not all exported: {e}");
        }
    }
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Prints to stdout; a reader that went away (`| head`) ends the output
/// quietly, as a well-behaved command-line tool does.
fn print_out(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
