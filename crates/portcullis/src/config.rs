//! Configuration: built-in defaults < optional file (`--config`, YAML or TOML) < `PORTCULLIS_*`
//! environment (`_FILE` reads a value from a file). Parsed once into a typed struct; unknown
//! keys in the file are an error, unknown `PORTCULLIS_*` variables a warning.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    #[serde(skip_serializing)]
    pub secret_key: Option<SecretString>,
    pub listen_http: String,
    pub listen_https: String,
    pub listen_metrics: String,
    pub listen_ldap: String,
    pub listen_ldaps: String,
    pub listen_radius: String,
    #[serde(skip_serializing)]
    pub bootstrap_password: Option<SecretString>,
    #[serde(skip_serializing)]
    pub bootstrap_token: Option<SecretString>,
    pub bootstrap_email: Option<String>,
    pub blueprints_dir: Option<PathBuf>,
    pub log_level: String,
    pub log_format: LogFormat,
    /// Connections per database pool.
    pub database_max_connections: u32,
    /// Concurrent password hashes (each takes ~19 MiB and a core for ~30 ms).
    pub password_hash_concurrency: usize,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            database_url: None,
            secret_key: None,
            listen_http: "0.0.0.0:9000".into(),
            listen_https: "0.0.0.0:9443".into(),
            listen_metrics: "0.0.0.0:9300".into(),
            listen_ldap: "0.0.0.0:3389".into(),
            listen_ldaps: "0.0.0.0:6636".into(),
            listen_radius: "0.0.0.0:1812".into(),
            bootstrap_password: None,
            bootstrap_token: None,
            bootstrap_email: None,
            blueprints_dir: None,
            log_level: "info".into(),
            log_format: LogFormat::Text,
            database_max_connections: 16,
            password_hash_concurrency: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        }
    }
}

/// Keys settable from the environment, as `PORTCULLIS_<KEY>` (upper case).
const KEYS: &[&str] = &[
    "data_dir",
    "database_url",
    "secret_key",
    "listen_http",
    "listen_https",
    "listen_metrics",
    "listen_ldap",
    "listen_ldaps",
    "listen_radius",
    "bootstrap_password",
    "bootstrap_token",
    "bootstrap_email",
    "blueprints_dir",
    "log_level",
    "log_format",
    "database_max_connections",
    "password_hash_concurrency",
];

impl Config {
    /// Loads the layers. `env` is the process environment (passed in so tests can fix it).
    pub fn load(
        file: Option<&Path>,
        env: &[(String, String)],
    ) -> anyhow::Result<(Self, Vec<String>)> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            let is_yaml = matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            );
            if is_yaml {
                // Read into figment's own value type: a serde_json value would carry numbers
                // as maps (a dependency turns on serde_json's `arbitrary_precision`).
                let value: Option<figment::value::Value> = serde_norway::from_str(&text)
                    .with_context(|| format!("invalid YAML in {}", path.display()))?;
                match value {
                    None => {}
                    Some(v @ figment::value::Value::Dict(..)) => {
                        fig = fig.merge(Serialized::globals(v));
                    }
                    Some(_) => {
                        bail!("config file {} must hold a mapping of keys", path.display())
                    }
                }
            } else {
                fig = fig.merge(Toml::string(&text));
            }
        }
        let mut warnings = Vec::new();
        let mut from_env = figment::value::Dict::new();
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("PORTCULLIS_") else {
                continue;
            };
            let lower = rest.to_ascii_lowercase();
            if let Some(key) = lower.strip_suffix("_file").filter(|k| KEYS.contains(k)) {
                let content = std::fs::read_to_string(value)
                    .with_context(|| format!("cannot read {name}={value}"))?;
                let v = env_value(key, name, content.trim_end_matches(['\n', '\r']))?;
                from_env.insert(key.to_owned(), v);
            } else if KEYS.contains(&lower.as_str()) {
                let v = env_value(&lower, name, value)?;
                from_env.entry(lower).or_insert(v);
            } else if !lower.starts_with("test_") && lower != "artifacts_dir" && lower != "pg_dir" {
                warnings.push(format!("unknown environment variable {name} ignored"));
            }
        }
        fig = fig.merge(Serialized::globals(from_env));
        let config: Config = fig
            .extract()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        Ok((config, warnings))
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}/portcullis.db", self.data_dir.display()))
    }
}

/// The value of setting `key` given as `text` by variable `name` (numbers parsed).
fn env_value(key: &str, name: &str, text: &str) -> anyhow::Result<figment::value::Value> {
    Ok(match key {
        "database_max_connections" | "password_hash_concurrency" => text
            .parse::<u64>()
            .with_context(|| format!("{name} must be a number"))?
            .into(),
        _ => text.to_owned().into(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use secrecy::ExposeSecret;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults() {
        let (c, w) = Config::load(None, &[]).unwrap();
        assert_eq!(c.listen_http, "0.0.0.0:9000");
        assert_eq!(c.database_url(), "sqlite://./data/portcullis.db");
        assert!(w.is_empty());
    }

    #[test]
    fn layers_and_secret_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.yaml");
        std::fs::write(&file, "listen_http: 127.0.0.1:1\nlog_level: debug\n").unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let (c, w) = Config::load(
            Some(&file),
            &env(&[
                ("PORTCULLIS_LOG_LEVEL", "warn"),
                ("PORTCULLIS_SECRET_KEY_FILE", secret.to_str().unwrap()),
                ("PORTCULLIS_NOPE", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen_http, "127.0.0.1:1", "file overrides defaults");
        assert_eq!(c.log_level, "warn", "env overrides file");
        assert_eq!(c.secret_key.unwrap().expose_secret(), "s3cret");
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn numbers_from_the_environment_and_yaml() {
        let (c, w) = Config::load(
            None,
            &env(&[
                ("PORTCULLIS_DATABASE_MAX_CONNECTIONS", "3"),
                ("PORTCULLIS_PASSWORD_HASH_CONCURRENCY", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(c.database_max_connections, 3);
        assert_eq!(c.password_hash_concurrency, 1);
        assert!(w.is_empty());
        let err = Config::load(
            None,
            &env(&[("PORTCULLIS_DATABASE_MAX_CONNECTIONS", "many")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("must be a number"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let number = dir.path().join("n");
        std::fs::write(&number, "7\n").unwrap();
        let (c, _) = Config::load(
            None,
            &env(&[(
                "PORTCULLIS_DATABASE_MAX_CONNECTIONS_FILE",
                number.to_str().unwrap(),
            )]),
        )
        .unwrap();
        assert_eq!(c.database_max_connections, 7);

        let file = dir.path().join("c.yaml");
        std::fs::write(
            &file,
            "database_max_connections: 5\nlisten_http: 127.0.0.1:2\n",
        )
        .unwrap();
        let (c, _) = Config::load(Some(&file), &[]).unwrap();
        assert_eq!(c.database_max_connections, 5);
        assert_eq!(c.listen_http, "127.0.0.1:2");
        std::fs::write(&file, "").unwrap();
        assert_eq!(
            Config::load(Some(&file), &[])
                .unwrap()
                .0
                .database_max_connections,
            16
        );
        std::fs::write(&file, "- a\n- b\n").unwrap();
        let err = Config::load(Some(&file), &[]).unwrap_err().to_string();
        assert!(err.contains("mapping"), "{err}");
    }

    #[test]
    fn unknown_file_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "listen_htp = \"x\"\n").unwrap();
        let err = Config::load(Some(&file), &[]).unwrap_err().to_string();
        assert!(err.contains("listen_htp"), "{err}");
    }
}
