use clap::Parser;

use activity_gateway::cli;
use activity_gateway::config::{Cli, Command, KeysCommand};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "activity_gateway=info,tower_http=info,warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Serve(args) => cli::serve(args).await,
        Command::Migrate(args) => cli::migrate(&args.database_url).await,
        Command::Seed(args) => cli::seed(&args).await,
        Command::Export(args) => cli::export(&args).await,
        Command::Openapi => {
            println!("{}", activity_gateway::rest::openapi::json());
            Ok(())
        }
        Command::Schema => {
            print!("{}", activity_gateway::graphql::sdl());
            Ok(())
        }
        Command::Permissions => {
            print!("{}", activity_gateway::docs::permission_table());
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Create(args),
        } => cli::create_key(&args).await,
        Command::Keys {
            command: KeysCommand::Revoke { database, key_id },
        } => cli::revoke_key(&database.database_url, &key_id).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
