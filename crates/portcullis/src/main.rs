//! `portcullis`: parses the command line and configuration, sets up logging, runs a command.

use clap::Parser;
use portcullis::cli::{Cli, run};
use portcullis::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let env: Vec<(String, String)> = std::env::vars().collect();
    let (config, warnings) = match Config::load(cli.config.as_deref(), &env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // Commands other than `serve` print their result on stdout; their logs stay quiet unless
    // a level was asked for. Library chatter (migrations, SQL) is kept at warn either way.
    let level = match (&cli.command, std::env::var_os("PORTCULLIS_LOG_LEVEL")) {
        (portcullis::cli::Command::Serve, _) | (_, Some(_)) => config.log_level.clone(),
        _ => "warn".to_owned(),
    };
    let filter = EnvFilter::try_new(format!("{level},sea_orm_migration=warn,sqlx=warn"))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    for w in warnings {
        tracing::warn!("{w}");
    }
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
