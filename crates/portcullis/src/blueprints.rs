//! Blueprint files: `portcullis blueprint apply FILE...` and the `PORTCULLIS_BLUEPRINTS_DIR`
//! applied at start. Each file applies in its own transaction.

use std::path::Path;

use anyhow::Context;
use portcullis_blueprint::{ApplyOptions, ApplyReport};
use portcullis_http::AppState;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Reads, parses and applies one blueprint file; `!File` may read beside it.
pub async fn apply_file(state: &AppState, file: &Path) -> anyhow::Result<ApplyReport> {
    let meta =
        std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
    if meta.len() > portcullis_blueprint::MAX_BYTES as u64 {
        anyhow::bail!(
            "{}: larger than {} bytes",
            file.display(),
            portcullis_blueprint::MAX_BYTES
        );
    }
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let bp = portcullis_blueprint::parse(&text, &file.display().to_string())?;
    let options = ApplyOptions {
        context: serde_json::Map::new(),
        env: &env,
        blueprints_dir: std::fs::canonicalize(file)?.parent().map(Path::to_path_buf),
    };
    Ok(portcullis_http::blueprints::apply_blueprint(state, &bp, &options).await?)
}

/// Applies the built-in blueprints (the bootstrap among them) and the blueprints directory.
/// A built-in that fails is retried once: another process starting on the same database may
/// have been applying it at the same moment. If it still fails, start-up fails.
pub async fn discover_at_start(state: &AppState) -> anyhow::Result<()> {
    let mut failed = portcullis_http::blueprints::discover(state).await?;
    if failed.iter().any(|i| i.path.starts_with("builtin/")) {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        failed = portcullis_http::blueprints::discover(state).await?;
    }
    if let Some(b) = failed.iter().find(|i| i.path.starts_with("builtin/")) {
        anyhow::bail!(
            "built-in blueprint {} failed: {}",
            b.path,
            b.last_error.as_deref().unwrap_or("unknown error")
        );
    }
    Ok(())
}

/// Watches the blueprints directory and applies what changes, until `stop` completes. Polls
/// every few seconds: cheap for a directory of blueprints, and it works on every filesystem.
pub async fn watch(state: std::sync::Arc<AppState>, stop: impl std::future::Future<Output = ()>) {
    let Some(dir) = state.blueprints_dir.clone() else {
        return;
    };
    let mut last = fingerprint(&state, &dir);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(WATCH_INTERVAL) => {}
        }
        let now = fingerprint(&state, &dir);
        if now != last {
            last = now;
            match portcullis_http::blueprints::discover(&state).await {
                Ok(failed) => {
                    for f in failed {
                        tracing::warn!(blueprint = %f.path, error = f.last_error.as_deref().unwrap_or(""), "blueprint failed");
                    }
                }
                Err(e) => tracing::error!(error = %e, "blueprint discovery failed"),
            }
        }
    }
}

/// How often the blueprints directory is looked at.
pub const WATCH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// Paths, sizes and modification times of the directory's blueprint files (the same list
/// discovery applies; other files never change what is applied).
fn fingerprint(state: &AppState, dir: &Path) -> Vec<(String, u64, Option<std::time::SystemTime>)> {
    portcullis_http::blueprints::available_files(state)
        .into_iter()
        .map(|rel| {
            let meta = std::fs::metadata(dir.join(&rel)).ok();
            let len = meta.as_ref().map_or(0, std::fs::Metadata::len);
            let modified = meta.and_then(|m| m.modified().ok());
            (rel, len, modified)
        })
        .collect()
}
