//! The command line: `serve`, `migrate`, `user create|set-password|list`, `token create`,
//! `healthcheck`, `version`.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use portcullis_core::{
    Actor, FieldErrors, NewGroup, NewToken, NewUser, TokenIntent, UserType, validate,
};
use portcullis_store::{ListQuery, StoreError, UserFilter};

use crate::config::Config;
use crate::server;

#[derive(Debug, Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Portcullis: an identity provider compatible with authentik"
)]
pub struct Cli {
    /// Configuration file (YAML or TOML); environment variables override it.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: HTTP API and UI, metrics, background work.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Apply blueprints (authentik's YAML format).
    #[command(subcommand)]
    Blueprint(BlueprintCommand),
    /// Exit 0 when the local server answers its readiness check.
    Healthcheck {
        /// Address to check (defaults to the configured HTTP listener, on loopback).
        #[arg(long)]
        url: Option<String>,
    },
    /// Print the version.
    Version,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user. The password, if any, is read from standard input.
    Create {
        username: String,
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long, default_value = "")]
        email: String,
        /// Make the user a member of the superuser group.
        #[arg(long)]
        superuser: bool,
        /// Read a password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// internal, external, service_account or internal_service_account.
        #[arg(long, default_value = "internal")]
        r#type: String,
    },
    /// Set a user's password, read from the first line of standard input.
    SetPassword {
        username: String,
        /// Standard input holds a password hash to import (argon2id, or authentik's
        /// pbkdf2_sha256$, argon2$, bcrypt_sha256$), not a password. Imported hashes are
        /// upgraded to argon2id at the user's next successful login.
        #[arg(long)]
        hash: bool,
    },
    /// List users.
    List,
}

#[derive(Debug, Subcommand)]
pub enum BlueprintCommand {
    /// Apply each file in its own transaction: all of a file or none of it. Stops at the
    /// first file that fails, naming the entry and field.
    Apply {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the current configuration as a blueprint that applies to an empty instance.
    Export {
        /// Include private keys of certificate keypairs (records a secret_view event).
        #[arg(long)]
        include_secrets: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user and print its key.
    Create {
        /// Owner of the token.
        #[arg(long)]
        user: String,
        /// Unique identifier of the token.
        #[arg(long)]
        identifier: String,
        #[arg(long, default_value = "")]
        description: String,
        /// Days until it expires; omit for a token that does not expire.
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// api or app_password.
        #[arg(long, default_value = "api")]
        intent: String,
    },
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let p = line.trim_end_matches(['\n', '\r']).to_owned();
    if p.is_empty() {
        bail!("empty password on standard input");
    }
    if p.len() > 1024 {
        bail!("password longer than 1024 characters");
    }
    Ok(p)
}

fn field_errors(e: FieldErrors) -> anyhow::Result<()> {
    if e.is_empty() { Ok(()) } else { bail!("{e}") }
}

pub async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve => server::serve(config).await,
        Command::Migrate => {
            let ctx = server::open(&config).await?;
            ctx.store.close().await;
            println!("database is up to date");
            Ok(())
        }
        Command::Version => {
            println!("portcullis {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Healthcheck { url } => healthcheck(url.as_deref(), &config).await,
        Command::User(cmd) => user(cmd, &config).await,
        Command::Token(cmd) => token(cmd, &config).await,
        Command::Blueprint(BlueprintCommand::Export { include_secrets }) => {
            let ctx = server::open(&config).await?;
            let yaml = portcullis_http::export::export(&server::app_state(&ctx), include_secrets)
                .await
                .map_err(|e| anyhow::anyhow!("export failed: {e:?}"))?;
            print!("{yaml}");
            ctx.store.close().await;
            Ok(())
        }
        Command::Blueprint(BlueprintCommand::Apply { files }) => {
            let ctx = server::open(&config).await?;
            let state = server::app_state(&ctx);
            for file in &files {
                let report = crate::blueprints::apply_file(&state, file).await?;
                println!(
                    "{}: {} created, {} updated, {} deleted, {} unchanged",
                    file.display(),
                    report.created,
                    report.updated,
                    report.deleted,
                    report.unchanged + report.skipped
                );
            }
            ctx.store.close().await;
            Ok(())
        }
    }
}

async fn user(cmd: UserCommand, config: &Config) -> anyhow::Result<()> {
    let ctx = server::open(config).await?;
    let store = &ctx.store;
    let actor = Actor::system();
    match cmd {
        UserCommand::Create {
            username,
            name,
            email,
            superuser,
            password_stdin,
            r#type,
        } => {
            let mut errors = FieldErrors::new();
            validate::username(&mut errors, "username", &username);
            validate::email(&mut errors, "email", &email);
            validate::text(&mut errors, "name", &name, validate::NAME_MAX, true);
            let user_type = UserType::parse(&r#type);
            if user_type.is_none() {
                errors.add(
                    "type",
                    "must be internal, external, service_account or internal_service_account",
                );
            }
            field_errors(errors)?;
            let mut new = NewUser::named(&username);
            new.name = name;
            new.email = email;
            new.user_type = user_type.unwrap_or(UserType::Internal);
            if password_stdin {
                new.password_hash = Some(ctx.hasher.hash(read_password()?).await?);
            }
            if superuser {
                let group = match store
                    .find_group_by_name(portcullis_core::ADMIN_GROUP_NAME)
                    .await
                {
                    Ok(g) => g,
                    Err(StoreError::NotFound) => {
                        store
                            .create_group(
                                NewGroup {
                                    name: portcullis_core::ADMIN_GROUP_NAME.into(),
                                    is_superuser: true,
                                    parent: None,
                                    attributes: serde_json::json!({}),
                                    users: vec![],
                                },
                                &actor,
                            )
                            .await?
                    }
                    Err(e) => return Err(e.into()),
                };
                new.groups = vec![group.group.uuid];
            }
            let u = match store.create_user(new, &actor).await {
                Err(StoreError::Conflict { field }) => {
                    bail!("a user with this {field} already exists")
                }
                other => other?,
            };
            println!("created user {} (pk {})", u.user.username, u.user.pk);
        }
        UserCommand::SetPassword {
            username,
            hash: import,
        } => {
            let u = match store.find_user_by_username(&username).await {
                Err(StoreError::NotFound) => bail!("no user named {username}"),
                other => other?,
            };
            let hash = if import {
                let h = read_password()?;
                if !portcullis_crypto::is_supported_hash(&h) {
                    bail!(
                        "not a supported password hash (argon2id, pbkdf2_sha256$, argon2$, bcrypt_sha256$, bcrypt$)"
                    );
                }
                h
            } else {
                ctx.hasher.hash(read_password()?).await?
            };
            store.set_password(u.user.pk, Some(hash), &actor).await?;
            println!("password set for {username}");
        }
        UserCommand::List => {
            let mut page = 1;
            loop {
                let q = ListQuery {
                    page: portcullis_core::PageRequest {
                        page,
                        page_size: 500,
                    },
                    ..Default::default()
                };
                let p = store.list_users(&UserFilter::default(), &q).await?;
                for u in &p.items {
                    let u = &u.user;
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        u.pk,
                        u.username,
                        u.email,
                        if u.is_active { "active" } else { "inactive" },
                        if u.is_superuser { "superuser" } else { "" }
                    );
                }
                if page * 500 >= p.count {
                    break;
                }
                page += 1;
            }
        }
    }
    ctx.store.close().await;
    Ok(())
}

async fn token(cmd: TokenCommand, config: &Config) -> anyhow::Result<()> {
    let ctx = server::open(config).await?;
    let TokenCommand::Create {
        user,
        identifier,
        description,
        expires_in_days,
        intent,
    } = cmd;
    let intent = match intent.as_str() {
        "api" => TokenIntent::Api,
        "app_password" => TokenIntent::AppPassword,
        other => bail!("intent must be api or app_password, not {other}"),
    };
    let mut errors = FieldErrors::new();
    validate::slug(&mut errors, "identifier", &identifier);
    field_errors(errors)?;
    let owner = match ctx.store.find_user_by_username(&user).await {
        Err(StoreError::NotFound) => bail!("no user named {user}"),
        other => other?,
    };
    let key = portcullis_crypto::random_string(64);
    let hash = portcullis_crypto::sha256_hex(key.as_bytes());
    let enc = ctx.secrets.encrypt_str(&key)?;
    let expires =
        expires_in_days.map(|d| ctx.store.clock().now() + chrono::Duration::days(i64::from(d)));
    let new = NewToken {
        identifier,
        intent,
        user_pk: owner.user.pk,
        description,
        expires,
        expiring: expires.is_some(),
        managed: None,
        key: key.clone(),
    };
    match ctx
        .store
        .create_token(new, hash, enc, &Actor::system())
        .await
    {
        Err(StoreError::Conflict { .. }) => bail!("a token with this identifier already exists"),
        other => other?,
    };
    println!("{key}");
    ctx.store.close().await;
    Ok(())
}

/// Asks the local server's readiness endpoint over plain HTTP/1.1.
async fn healthcheck(url: Option<&str>, config: &Config) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = match url {
        Some(u) => u
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned(),
        None => config
            .listen_http
            .replace("0.0.0.0", "127.0.0.1")
            .replace("[::]", "[::1]"),
    };
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(&addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        s.write_all(
            format!("GET /-/health/ready/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
        let mut buf = vec![0u8; 64];
        let n = s.read(&mut buf).await?;
        let head = String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into_owned();
        anyhow::Ok(head)
    };
    let head = tokio::time::timeout(std::time::Duration::from_secs(5), fut)
        .await
        .context("health check timed out")??;
    if head.starts_with("HTTP/1.1 204") || head.starts_with("HTTP/1.1 200") {
        println!("ok");
        Ok(())
    } else {
        bail!("not ready: {}", head.lines().next().unwrap_or(""))
    }
}
