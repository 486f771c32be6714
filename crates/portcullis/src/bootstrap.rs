//! First-start state: the data directory, the secret key, the administrator, the superuser
//! group, the bootstrap token, the self-signed certificate and the default brand.
//!
//! Every step looks before it creates and treats "someone else just created it" as success, so
//! running it twice, or from two processes on one PostgreSQL at once, creates nothing twice.

use std::path::Path;

use anyhow::Context;
use portcullis_core::{Actor, Brand};
use portcullis_store::{Store, StoreError};
use secrecy::{ExposeSecret, SecretString};

use crate::config::Config;

/// Identifier of the token created from `PORTCULLIS_BOOTSTRAP_TOKEN`.
pub const BOOTSTRAP_TOKEN_IDENTIFIER: &str = "portcullis-bootstrap-token";
/// Name of the generated self-signed certificate keypair.
pub const SELF_SIGNED_NAME: &str = "Portcullis Self-signed Certificate";
/// Domain of the brand created on first start.
pub const DEFAULT_BRAND_DOMAIN: &str = "portcullis-default";

/// Reads the secret key from the configuration, or from `DATA_DIR/secret_key`, generating it
/// there (mode 0600) on first start.
pub fn secret_key(config: &Config) -> anyhow::Result<SecretString> {
    if let Some(k) = &config.secret_key {
        return Ok(k.clone());
    }
    let path = config.data_dir.join("secret_key");
    match std::fs::read_to_string(&path) {
        Ok(k) if !k.trim().is_empty() => return Ok(SecretString::from(k.trim().to_owned())),
        Ok(_) => anyhow::bail!("{} is empty", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    // Two processes starting on one data directory must end up with the same key: the file
    // is written under a unique name and linked into place, which fails if another process
    // got there first; either way the key on disk is the one used.
    let key = portcullis_crypto::generate_secret_key();
    let tmp = path.with_extension(format!("tmp-{}", portcullis_crypto::random_string(12)));
    write_private(&tmp, &key)?;
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("cannot write {}", path.display())),
    }
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    let stored = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(SecretString::from(stored.trim().to_owned()))
}

/// Writes a new file readable by the owner only; refuses to reuse an existing one.
fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(content.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// Creates the data directory (mode 0700) when missing.
pub fn data_dir(config: &Config) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !config.data_dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&config.data_dir)
            .with_context(|| {
                format!("cannot create data directory {}", config.data_dir.display())
            })?;
    }
    Ok(())
}

fn exists<T>(r: Result<T, StoreError>) -> anyhow::Result<bool> {
    match r {
        Ok(_) => Ok(true),
        Err(StoreError::NotFound) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn created<T>(r: Result<T, StoreError>) -> anyhow::Result<()> {
    match r {
        Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// What the built-in bootstrap blueprint's `!Env` tags see: the bootstrap settings from the
/// configuration (which may come from a file or a `_FILE` variable, not only the environment).
pub fn blueprint_env(config: &Config) -> std::collections::BTreeMap<String, String> {
    let mut env = std::collections::BTreeMap::new();
    if let Some(p) = &config.bootstrap_password {
        env.insert(
            "PORTCULLIS_BOOTSTRAP_PASSWORD".to_owned(),
            p.expose_secret().to_owned(),
        );
    }
    if let Some(t) = &config.bootstrap_token {
        env.insert(
            "PORTCULLIS_BOOTSTRAP_TOKEN".to_owned(),
            t.expose_secret().to_owned(),
        );
    }
    if let Some(e) = &config.bootstrap_email {
        env.insert("PORTCULLIS_BOOTSTRAP_EMAIL".to_owned(), e.clone());
    }
    env
}

/// Everything bootstrap needs besides the store.
pub struct Bootstrap<'a> {
    pub store: &'a Store,
    pub secrets: &'a portcullis_crypto::SecretBox,
    pub hasher: &'a portcullis_crypto::PasswordHasher,
    pub config: &'a Config,
}

impl Bootstrap<'_> {
    /// What the built-in blueprints cannot express: the generated self-signed keypair, and a
    /// default brand when there is none. The administrator, the superuser group and the
    /// bootstrap token come from the built-in bootstrap blueprint (see [`blueprint_env`]).
    pub async fn run(&self) -> anyhow::Result<()> {
        let actor = Actor::system();
        let store = self.store;
        if let Some(key) = &self.config.bootstrap_token
            && key.expose_secret().len() < 8
        {
            anyhow::bail!("PORTCULLIS_BOOTSTRAP_TOKEN must be at least 8 characters");
        }
        if !exists(
            store
                .find_certificate_keypair_by_name(SELF_SIGNED_NAME)
                .await,
        )? {
            self.self_signed(&actor).await?;
        }
        if store.all_brands().await?.is_empty() {
            let mut b = Brand::fallback();
            b.uuid = uuid::Uuid::nil();
            b.domain = DEFAULT_BRAND_DOMAIN.into();
            b.default = true;
            created(store.create_brand(b, &actor).await)?;
        }
        Ok(())
    }

    async fn self_signed(&self, actor: &Actor) -> anyhow::Result<()> {
        let now = self.store.clock().now();
        let generated = tokio::task::spawn_blocking(move || {
            portcullis_crypto::generate_self_signed_with(
                portcullis_crypto::KeyAlgorithm::EcdsaP256,
                "portcullis default certificate",
                &["localhost".to_owned()],
                365,
                now,
            )
        })
        .await??;
        let info = portcullis_crypto::parse_certificate(&generated.certificate_pem)?;
        let kp = portcullis_core::NewCertificateKeyPair {
            name: SELF_SIGNED_NAME.into(),
            private_key_encrypted: Some(self.secrets.encrypt_str(&generated.private_key_pem)?),
            certificate_pem: generated.certificate_pem,
            facts: portcullis_core::CertificateFacts {
                fingerprint_sha256: info.fingerprint_sha256,
                fingerprint_sha1: info.fingerprint_sha1,
                not_after: info.not_after,
                subject: info.subject,
                private_key_type: info.key_type,
            },
            managed: Some("goauthentik.io/crypto/certificate/self-signed".into()),
        };
        created(self.store.create_certificate_keypair(kp, actor).await)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn concurrent_first_starts_agree_on_one_secret_key() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let keys: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| secret_key(&config).unwrap().expose_secret().to_owned()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let on_disk = std::fs::read_to_string(dir.path().join("secret_key")).unwrap();
        assert!(
            keys.iter().all(|k| *k == on_disk.trim()),
            "every process uses the key on disk"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("secret_key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary files left behind");
    }
}
