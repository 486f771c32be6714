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

/// How long requests in flight may take to finish once shutdown starts.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(25);

/// Deletes events past their retention and expired sessions, now and then every hour.
async fn expire_events(store: portcullis_store::Store) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        match store.delete_expired_events().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "expired events deleted"),
            Err(e) => tracing::warn!(error = %e, "could not delete expired events"),
        }
        match store.delete_expired_sessions().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "expired sessions deleted"),
            Err(e) => tracing::warn!(error = %e, "could not delete expired sessions"),
        }
    }
}

/// The HTTP layer's state over an opened store.
pub fn app_state(ctx: &Opened) -> AppState {
    AppState::new(
        ctx.store.clone(),
        ctx.secrets.clone(),
        ctx.hasher.clone(),
        ctx.secret_key.expose_secret(),
    )
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let http = tokio::net::TcpListener::bind(&config.listen_http)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen_http))?;
    let https = tokio::net::TcpListener::bind(&config.listen_https)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen_https))?;
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
    let mut state = app_state(&ctx);
    state.blueprints_dir = config.blueprints_dir.clone();
    state.blueprint_env = bootstrap::blueprint_env(&config);
    let state = Arc::new(state);
    crate::blueprints::discover_at_start(&state).await?;
    state.ready.store(true, Ordering::Release);

    let tls = tls_config(&ctx).await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let wait = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    tracing::info!(
        http = %http.local_addr()?, https = %https.local_addr()?, metrics = %metrics.local_addr()?,
        database = %portcullis_store::redact_url(&config.database_url()),
        startup_ms = started.elapsed().as_millis() as u64,
        "Portcullis is ready"
    );
    if let Ok(admin) = state
        .store
        .find_user_by_username(portcullis_core::ADMIN_USERNAME)
        .await
        && !admin.user.has_password
    {
        tracing::warn!(
            "the administrator has no password: open /if/flow/initial-setup/ to set it \
             (or start with PORTCULLIS_BOOTSTRAP_PASSWORD)"
        );
    }
    let http_task = tokio::spawn(portcullis_http::serve(
        http,
        state.clone(),
        wait(stop_rx.clone()),
    ));
    let retention = tokio::spawn(expire_events(ctx.store.clone()));
    let watch_task = tokio::spawn(crate::blueprints::watch(
        state.clone(),
        wait(stop_rx.clone()),
    ));
    let https_task = tokio::spawn(portcullis_http::serve_tls(
        https,
        tls,
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
    // Requests in flight get a bounded time to finish; a client that never completes its
    // request cannot hold the process up.
    let drain = async {
        http_task.await??;
        let _ = watch_task.await;
        https_task.await??;
        metrics_task.await??;
        anyhow::Ok(())
    };
    match tokio::time::timeout(SHUTDOWN_GRACE, drain).await {
        Ok(result) => result?,
        Err(_) => tracing::warn!(
            grace_s = SHUTDOWN_GRACE.as_secs(),
            "connections still open after the grace period: closing them"
        ),
    }
    retention.abort();
    ctx.store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The HTTPS certificate: the default brand's web certificate when it has one with a key,
/// else the self-signed keypair generated on first start.
async fn tls_config(ctx: &Opened) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let brands = ctx.store.all_brands().await?;
    let chosen = match brands
        .iter()
        .find(|b| b.default)
        .and_then(|b| b.web_certificate)
    {
        Some(uuid) => ctx
            .store
            .find_certificate_keypair(uuid)
            .await
            .ok()
            .filter(|k| k.has_private_key),
        None => None,
    };
    let kp = match chosen {
        Some(kp) => kp,
        None => {
            ctx.store
                .find_certificate_keypair_by_name(bootstrap::SELF_SIGNED_NAME)
                .await?
        }
    };
    let key = ctx
        .store
        .find_private_key_for_use(kp.uuid)
        .await?
        .context("the HTTPS certificate has no private key")?;
    let key = ctx
        .secrets
        .decrypt_str(&key)
        .context("cannot decrypt the HTTPS private key (was the secret key changed?)")?;
    Ok(portcullis_http::tls::server_config(
        &kp.certificate_pem,
        &key,
    )?)
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
