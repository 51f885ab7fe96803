//! `marketplace`: serve (default), migrate, create-admin, openapi, asyncapi, typescript.

use clap::{Parser, Subcommand};
use marketplace_api::{Config, telemetry};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "marketplace",
    version,
    about = "Marketplace backend: REST and Socket.IO on one port"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run migrations, then serve REST and Socket.IO (the default).
    Serve,
    /// Apply migrations and exit.
    Migrate,
    /// Create an admin account, or make an existing one admin with this password.
    CreateAdmin {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
    },
    /// Print the OpenAPI document as JSON and exit.
    Openapi,
    /// Print the AsyncAPI document as JSON and exit.
    Asyncapi,
    /// Print the TypeScript types of the API (REST shapes and Socket.IO events) and exit.
    Typescript,
}

fn main() -> std::process::ExitCode {
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli.command.unwrap_or(Command::Serve), config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Openapi => {
            println!(
                "{}",
                serde_json::to_string_pretty(&marketplace_api::openapi_document(&config).await?)?
            );
            Ok(())
        }
        Command::Asyncapi => {
            println!(
                "{}",
                serde_json::to_string_pretty(&marketplace_api::asyncapi_document())?
            );
            Ok(())
        }
        Command::Typescript => {
            let openapi = marketplace_api::openapi_document(&config).await?;
            print!("{}", marketplace_api::typescript_module(&openapi));
            Ok(())
        }
        Command::Migrate => {
            telemetry::init(&config);
            let db = marketplace_api::connect(&config).await?;
            marketplace_api::migrate(&db).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::CreateAdmin { email, password } => {
            let db = marketplace_api::connect(&config).await?;
            marketplace_api::migrate(&db).await?;
            let hasher = marketplace_api::hasher(&config)?;
            let user = auth::ensure_admin(&db, &hasher, &email, &password)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("admin {} ({})", user.email, user.id);
            Ok(())
        }
        Command::Serve => {
            telemetry::init(&config);
            if config.jwt_secret.is_none() {
                tracing::info!(
                    "JWT_SECRET is not set: tokens are signed with a random secret kept in the database (set JWT_SECRET in production)"
                );
            }
            let addr = std::net::SocketAddr::new(config.host, config.port);
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
            let cancel = CancellationToken::new();
            tokio::spawn(shutdown_signal(cancel.clone()));
            marketplace_api::run(config, listener, cancel).await
        }
    }
}

async fn shutdown_signal(cancel: CancellationToken) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutdown signal received");
    cancel.cancel();
}
