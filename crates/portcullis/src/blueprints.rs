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

/// Applies every `*.yaml` below `dir`, in path order. A failing file is logged and left out;
/// the others still apply.
pub async fn apply_dir(state: &AppState, dir: &Path) {
    let mut files = Vec::new();
    collect(dir, &mut files, 0);
    files.sort();
    for file in files {
        match apply_file(state, &file).await {
            Ok(r) => tracing::info!(
                file = %file.display(), created = r.created, updated = r.updated, deleted = r.deleted,
                "blueprint applied"
            ),
            Err(e) => tracing::error!(file = %file.display(), error = %e, "blueprint not applied"),
        }
    }
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        tracing::warn!(dir = %dir.display(), "cannot read the blueprints directory");
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() && depth < 8 {
            collect(&path, out, depth + 1);
        } else if kind.is_file() && path.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(path);
        }
    }
}
