//! `portcullis serve`: opens the store, migrates, bootstraps, then serves HTTP and metrics
//! until SIGTERM or SIGINT, finishing requests in flight.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context;
use portcullis_core::SystemClock;
use portcullis_crypto::{PasswordHasher, SecretBox};
use portcullis_http::AppState;
use portcullis_store::{Store, StoreOptions};
use secrecy::ExposeSecret;
use tokio::sync::watch;

use crate::bootstrap::{self, Bootstrap};
use crate::config::Config;

/// The pieces every command that touches data needs.
pub struct Opened {
    pub store: Store,
    pub secrets: SecretBox,
    pub hasher: PasswordHasher,
    pub secret_key: secrecy::SecretString,
}

/// Opens (and migrates) the store and derives the secret box.
pub async fn open(config: &Config) -> anyhow::Result<Opened> {
    bootstrap::data_dir(config)?;
    let secret_key = bootstrap::secret_key(config)?;
    let options = StoreOptions {
        max_connections: config.database_max_connections,
        ..Default::default()
    };
    let url = config.database_url();
    let store = Store::connect(&url, &options, Arc::new(SystemClock))
        .await
        .with_context(|| {
            format!(
                "cannot open database {}",
                portcullis_store::redact_url(&url)
            )
        })?;
    store.migrate().await.context("migration failed")?;
    Ok(Opened {
        store,
        secrets: SecretBox::from_secret_key(secret_key.expose_secret()),
        hasher: PasswordHasher::new(config.password_hash_concurrency),
        secret_key,
    })
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let http = tokio::net::TcpListener::bind(&config.listen_http)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen_http))?;
    let metrics = tokio::net::TcpListener::bind(&config.listen_metrics)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen_metrics))?;

    let ctx = open(&config).await?;
    Bootstrap {
        store: &ctx.store,
        secrets: &ctx.secrets,
        hasher: &ctx.hasher,
        config: &config,
    }
    .run()
    .await?;
    let state = Arc::new(AppState::new(
        ctx.store.clone(),
        ctx.secrets.clone(),
        ctx.hasher.clone(),
        ctx.secret_key.expose_secret(),
    ));
    state.ready.store(true, Ordering::Release);

    let (stop_tx, stop_rx) = watch::channel(false);
    let wait = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    tracing::info!(
        http = %http.local_addr()?, metrics = %metrics.local_addr()?,
        database = %portcullis_store::redact_url(&config.database_url()),
        startup_ms = started.elapsed().as_millis() as u64,
        "Portcullis is ready"
    );
    let http_task = tokio::spawn(portcullis_http::serve(
        http,
        state.clone(),
        wait(stop_rx.clone()),
    ));
    let metrics_task = tokio::spawn(portcullis_http::serve_metrics(
        metrics,
        prometheus,
        wait(stop_rx),
    ));

    shutdown_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
    state.ready.store(false, Ordering::Release);
    let _ = stop_tx.send(true);
    http_task.await??;
    metrics_task.await??;
    ctx.store.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}
