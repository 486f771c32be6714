//! `!File`: reading a file under the blueprints directory, and nowhere else.

use std::io::Read as _;
use std::path::{Component, Path};

use super::{Evaluator, Resolver};

impl<R: Resolver> Evaluator<'_, R> {
    /// `Ok(None)`: the file cannot be read (missing, a directory): the default applies.
    /// `Err`: refused (outside the blueprints directory, too large, not UTF-8).
    pub(super) fn read_file(&self, relative: &str) -> Result<Option<String>, String> {
        let Some(dir) = &self.blueprints_dir else {
            return Err("reading files is not enabled for this blueprint".into());
        };
        let requested = Path::new(relative);
        if requested.is_absolute()
            || requested
                .components()
                .any(|c| matches!(c, Component::RootDir | Component::Prefix(_)))
        {
            return Err(format!(
                "`{relative}` is an absolute path; paths are relative to the blueprints directory"
            ));
        }
        let outside = || format!("`{relative}` is outside the blueprints directory");
        let root = dir
            .canonicalize()
            .map_err(|e| format!("blueprints directory unavailable: {e}"))?;
        let full = match root.join(requested).canonicalize() {
            Ok(full) => full,
            Err(_) => {
                // Missing: refuse still when the path climbs out, so the answer does not tell
                // what exists outside.
                if requested.components().any(|c| c == Component::ParentDir) {
                    return Err(outside());
                }
                return Ok(None);
            }
        };
        if !full.starts_with(&root) {
            return Err(outside());
        }
        let Ok(file) = std::fs::File::open(&full) else {
            return Ok(None);
        };
        let Ok(meta) = file.metadata() else {
            return Ok(None);
        };
        if !meta.is_file() {
            return Ok(None);
        }
        let limit = self.limits.max_file_bytes;
        if meta.len() > limit {
            return Err(format!("`{relative}` is larger than {limit} bytes"));
        }
        let mut content = Vec::new();
        file.take(limit + 1)
            .read_to_end(&mut content)
            .map_err(|e| format!("`{relative}`: {e}"))?;
        if u64::try_from(content.len()).unwrap_or(u64::MAX) > limit {
            return Err(format!("`{relative}` is larger than {limit} bytes"));
        }
        let text = String::from_utf8(content).map_err(|_| format!("`{relative}` is not UTF-8"))?;
        Ok(Some(text.trim().to_owned()))
    }
}
