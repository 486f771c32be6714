//! Everything HTTP: the REST API v3 (authentik's paths and shapes) and its OpenAPI document,
//! health and metrics endpoints, and the single mapping from errors to responses. This is the
//! only crate that knows axum; handlers decode, call the store and the domain, and encode.

pub mod api;
pub mod blueprints;
pub mod credentials;
pub mod error;
pub mod export;
pub mod extract;
pub mod flows_executor;
pub mod health;
pub mod oauth;
pub mod openapi;
pub mod pagination;
pub mod serializers;
pub mod session;
pub mod tls;
pub mod ui;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use portcullis_core::Clock;
use portcullis_crypto::{PasswordHasher, SecretBox};
use portcullis_store::Store;
use tower_http::LatencyUnit;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};

/// The largest request body the API accepts.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    pub store: Store,
    pub secrets: SecretBox,
    pub hasher: PasswordHasher,
    pub clock: Arc<dyn Clock>,
    /// A stable id of this installation, derived from the secret key; salts user `uid`s.
    pub install_id: String,
    /// The OAuth provider's signing keys and scope mappings, read once.
    pub oauth_cache: Arc<portcullis_oauth::issue::OAuthCache>,
    /// Set once startup has finished (migrations, bootstrap).
    pub ready: std::sync::atomic::AtomicBool,
    /// Where blueprint files are read from (`PORTCULLIS_BLUEPRINTS_DIR`).
    pub blueprints_dir: Option<std::path::PathBuf>,
    /// Values `!Env` sees before the process environment (the bootstrap settings, which may
    /// come from a file or a `_FILE` variable rather than the environment).
    pub blueprint_env: std::collections::BTreeMap<String, String>,
    /// The flow engine's services (over the same store, hasher and clock).
    pub flows: portcullis_flow::FlowServices,
}

/// The flow engine's services over `store`.
pub fn flow_services(
    store: &Store,
    hasher: &PasswordHasher,
    session_end: Option<Arc<dyn portcullis_flow::SessionEndHook>>,
) -> portcullis_flow::FlowServices {
    let clock = store.clock().clone();
    portcullis_flow::FlowServices {
        session_end,
        store: store.clone(),
        hasher: hasher.clone(),
        clock: clock.clone(),
        policies: portcullis_flow::PolicyServices {
            store: store.clone(),
            clock,
            breached: portcullis_policy::BreachedPasswords::embedded(),
            cache: Default::default(),
            limits: portcullis_policy::ExpressionLimits::default(),
        },
    }
}

impl AppState {
    pub fn new(store: Store, secrets: SecretBox, hasher: PasswordHasher, secret_key: &str) -> Self {
        let clock = store.clock().clone();
        let install_id: String =
            portcullis_crypto::sha256_hex(format!("portcullis-install-id:{secret_key}").as_bytes())
                .chars()
                .take(32)
                .collect();
        let oauth_cache = Arc::new(portcullis_oauth::issue::OAuthCache::default());
        let hook = oauth::OAuthLogout::new(oauth::OAuthServices {
            store: store.clone(),
            secrets: secrets.clone(),
            clock: clock.clone(),
            install_id: install_id.clone(),
            cache: oauth_cache.clone(),
        });
        let flows = flow_services(&store, &hasher, Some(Arc::new(hook)));
        Self {
            flows,
            store,
            secrets,
            hasher,
            clock,
            install_id,
            oauth_cache,
            ready: std::sync::atomic::AtomicBool::new(false),
            blueprints_dir: None,
            blueprint_env: Default::default(),
        }
    }

    /// The same state over another store (a unit of work's, for blueprints).
    pub fn with_store(&self, store: Store) -> Self {
        Self {
            flows: flow_services(&store, &self.hasher, self.flows.session_end.clone()),
            store,
            secrets: self.secrets.clone(),
            hasher: self.hasher.clone(),
            clock: self.clock.clone(),
            install_id: self.install_id.clone(),
            oauth_cache: self.oauth_cache.clone(),
            ready: std::sync::atomic::AtomicBool::new(true),
            blueprints_dir: self.blueprints_dir.clone(),
            blueprint_env: self.blueprint_env.clone(),
        }
    }

    /// authentik's `uid`: SHA-256 of the installation id and the user's pk, stable and opaque.
    pub fn user_uid(&self, pk: i32) -> String {
        portcullis_crypto::sha256_hex(format!("{}-{pk}", self.install_id).as_bytes())
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP application: API, schema and health endpoints, with request ids, request
/// logs, a body size limit and a request timeout.
pub fn router(state: Arc<AppState>) -> Router {
    let (api, _) = openapi::api_router().split_for_parts();
    Router::new()
        .merge(api)
        .merge(health::router())
        .merge(flows_executor::router())
        .merge(ui::router())
        .merge(oauth::router())
        .merge(openapi::schema_router())
        .fallback(api::fallback)
        .method_not_allowed_fallback(api::method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, Duration::from_secs(60)))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            // One line per request at info: method, path (never the query, which may carry
            // secrets), request id, status and latency.
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(LatencyUnit::Micros))
                .on_failure(DefaultOnFailure::new().level(tracing::Level::WARN)),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(axum::middleware::from_fn(health::track_metrics))
}

/// Serves the application on `listener` until `shutdown` completes, then finishes the
/// requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<tls::Peer>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves the application over TLS with `config` until `shutdown` completes.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tls::TlsListener::new(listener, config)?;
    let app = router(state).into_make_service_with_connect_info::<tls::Peer>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves Prometheus' `/metrics` from `handle` on its own listener.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    handle: metrics_exporter_prometheus::PrometheusHandle,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    handle.render(),
                )
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
