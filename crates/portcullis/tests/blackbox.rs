//! Black-box tests: the real `portcullis` binary, started as users start it, driven over HTTP
//! and its command line. Kept in one test binary on purpose (each extra one is another link).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use portcullis_testkit::free_port;
use portcullis_testkit::serve::Serve;

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const TOKEN: &str = "blackbox-bootstrap-token-0123456789";

/// A running `portcullis serve` (killed on drop) and its data directory.
struct Server {
    serve: Serve,
    dir: PathBuf,
}

impl std::ops::Deref for Server {
    type Target = Serve;
    fn deref(&self) -> &Serve {
        &self.serve
    }
}

fn serve(dir: &Path, extra_env: &[(&str, &str)]) -> Server {
    Server {
        serve: Serve::start(BIN, dir, extra_env),
        dir: dir.to_owned(),
    }
}

impl Server {
    fn log(&self) -> String {
        let mut out = String::new();
        for e in std::fs::read_dir(&self.dir).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with("serve-") {
                out.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        out
    }

    fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let client = reqwest::blocking::Client::new();
        let mut r = client
            .request(method, format!("{}/api/v3/{path}", self.url))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn get(&self, path: &str) -> Value {
        let (status, v) = self.api(reqwest::Method::GET, path, None);
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    fn sigterm(mut self) -> std::process::ExitStatus {
        let pid = self.serve.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.serve.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn sigkill(mut self) {
        self.serve.child.kill().unwrap();
        self.serve.child.wait().unwrap();
    }
}

fn bootstrap_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("PORTCULLIS_BOOTSTRAP_TOKEN", TOKEN),
        ("PORTCULLIS_BOOTSTRAP_PASSWORD", "correct horse"),
        ("PORTCULLIS_BOOTSTRAP_EMAIL", "admin@example.com"),
    ]
}

#[test]
fn starts_with_no_configuration_and_generates_keys() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path(), &[]);
    let data = dir.path().join("data");
    assert!(data.join("portcullis.db").exists());
    let key = data.join("secret_key");
    assert!(std::fs::read_to_string(&key).unwrap().trim().len() >= 50);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Without a bootstrap token, the API refuses everyone.
    let r = reqwest::blocking::get(format!("{}/api/v3/core/users/", s.url)).unwrap();
    assert_eq!(r.status(), 401);
    let status = s.sigterm();
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
}

#[test]
fn acknowledged_writes_survive_restart_and_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path(), &bootstrap_env());
    let (status, created) = s.api(
        reqwest::Method::POST,
        "core/users/",
        Some(json!({"username": "survivor", "name": "S"})),
    );
    assert_eq!(status, 201, "{created}");
    s.sigkill();
    let s = serve(dir.path(), &bootstrap_env());
    let users = s.get("core/users/?username=survivor");
    assert_eq!(
        users["pagination"]["count"], 1,
        "user lost after kill -9: {users}"
    );
    // Many writes, then kill -9 straight after the last acknowledgement.
    for i in 0..20 {
        let (status, _) = s.api(
            reqwest::Method::POST,
            "core/users/",
            Some(json!({"username": format!("burst{i}"), "name": "B"})),
        );
        assert_eq!(status, 201);
    }
    s.sigkill();
    let s = serve(dir.path(), &bootstrap_env());
    assert_eq!(s.get("core/users/?search=burst")["pagination"]["count"], 20);
    assert!(s.sigterm().success());
    let s = serve(dir.path(), &bootstrap_env());
    assert_eq!(
        s.get("core/users/?username=survivor")["pagination"]["count"],
        1
    );
}

#[test]
fn bootstrap_twice_creates_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path(), &bootstrap_env());
    let before = counts(&s);
    let admin = s.get("core/users/?username=admin");
    assert_eq!(admin["results"][0]["is_superuser"], true);
    assert_eq!(admin["results"][0]["email"], "admin@example.com");
    assert_eq!(
        admin["results"][0]["groups_obj"][0]["name"],
        "Portcullis Admins"
    );
    assert!(s.sigterm().success());
    let s = serve(dir.path(), &bootstrap_env());
    assert_eq!(counts(&s), before, "a second start changed something");
    // model_created: the 5 bootstrap objects, and the built-in default flows: authentication
    // (flow, 3 stages, 3 bindings), invalidation (3), provider authorization/invalidation (3 flows,
    // a consent stage and its binding), password change (flow, 2 prompts, 2 stages, 2 bindings),
    // initial setup (flow, policy, 3 prompts, 4 stages, 4 bindings, 2 policy bindings), user
    // settings (flow, 4 prompts, 2 stages, 2 bindings), and the 5 default OAuth scope mappings.
    assert_eq!(
        before,
        [1, 1, 1, 1, 1, 5 + 7 + 3 + 5 + 7 + 15 + 9 + 5],
        "users, groups, tokens, keypairs, brands, model_created events: {before:?}"
    );
}

fn counts(s: &Server) -> [u64; 6] {
    let c = |p: &str| s.get(p)["pagination"]["count"].as_u64().unwrap();
    [
        c("core/users/"),
        c("core/groups/"),
        c("core/tokens/"),
        c("crypto/certificatekeypairs/"),
        c("core/brands/"),
        c("events/events/?action=model_created"),
    ]
}

#[test]
fn eight_concurrent_writers_on_sqlite_all_get_answers() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path(), &bootstrap_env());
    let url = s.url.clone();
    let handles: Vec<_> = (0..8)
        .map(|w| {
            let url = url.clone();
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                let mut statuses = Vec::new();
                for i in 0..25 {
                    let r = client
                        .post(format!("{url}/api/v3/core/users/"))
                        .bearer_auth(TOKEN)
                        .json(&json!({"username": format!("w{w}-{i}"), "name": "W"}))
                        .send()
                        .unwrap();
                    statuses.push(r.status().as_u16());
                    let r = client
                        .patch(format!("{url}/api/v3/core/users/1/"))
                        .bearer_auth(TOKEN)
                        .json(&json!({"name": format!("Admin {w}-{i}")}))
                        .send()
                        .unwrap();
                    statuses.push(r.status().as_u16());
                }
                statuses
            })
        })
        .collect();
    for h in handles {
        let statuses = h.join().unwrap();
        assert!(
            statuses.iter().all(|s| *s == 201 || *s == 200),
            "{statuses:?}"
        );
    }
    assert_eq!(s.get("core/users/?search=w")["pagination"]["count"], 200);
    assert!(!s.log().contains("database is locked"));
}

#[test]
fn two_processes_on_one_postgres_see_the_same_data() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(portcullis_testkit::test_db(
        portcullis_testkit::Backend::Postgres,
    ));
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let mut env = bootstrap_env();
    env.push(("PORTCULLIS_DATABASE_URL", db.url.as_str()));
    env.push((
        "PORTCULLIS_SECRET_KEY",
        "shared-secret-key-for-both-processes",
    ));
    // Both start (and bootstrap) at the same time.
    let (a, b) = std::thread::scope(|sc| {
        let ha = sc.spawn(|| serve(dir_a.path(), &env));
        let hb = sc.spawn(|| serve(dir_b.path(), &env));
        (ha.join().unwrap(), hb.join().unwrap())
    });
    assert_eq!(
        counts(&a)[..5],
        [1, 1, 1, 1, 1],
        "concurrent bootstrap created duplicates"
    );
    let (status, _) = a.api(
        reqwest::Method::POST,
        "core/users/",
        Some(json!({"username": "shared", "name": "Shared"})),
    );
    assert_eq!(status, 201);
    let seen = b.get("core/users/?username=shared");
    assert_eq!(seen["results"][0]["name"], "Shared");
    let (status, _) = b.api(
        reqwest::Method::PATCH,
        &format!("core/users/{}/", seen["results"][0]["pk"]),
        Some(json!({"name": "Changed by B"})),
    );
    assert_eq!(status, 200);
    assert_eq!(
        a.get("core/users/?username=shared")["results"][0]["name"],
        "Changed by B"
    );
    // Token keys are encrypted with the shared secret: B can reveal a key A created.
    let (_, tok) = a.api(
        reqwest::Method::POST,
        "core/tokens/",
        Some(json!({"identifier": "from-a"})),
    );
    assert_eq!(tok["identifier"], "from-a");
    let key = b.get("core/tokens/from-a/view_key/");
    assert!(key["key"].as_str().unwrap().len() >= 32);
}

fn cli(dir: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for sub in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["user", "create", "--help"],
        vec!["user", "set-password", "--help"],
        vec!["user", "list", "--help"],
        vec!["token", "create", "--help"],
        vec!["healthcheck", "--help"],
        vec!["version", "--help"],
    ] {
        let (ok, out, _) = cli(d, &sub, None);
        assert!(ok && out.contains("Usage"), "{sub:?}: {out}");
    }
    let (ok, out, _) = cli(d, &["version"], None);
    assert!(ok && out.starts_with("portcullis "));
    let (ok, out, _) = cli(d, &["migrate"], None);
    assert!(ok, "{out}");
    let (ok, out, err) = cli(
        d,
        &[
            "user",
            "create",
            "carol",
            "--email",
            "carol@example.com",
            "--superuser",
            "--password-stdin",
        ],
        Some("s3cret pass\n"),
    );
    assert!(ok, "{out}{err}");
    let (ok, _, err) = cli(d, &["user", "create", "carol"], None);
    assert!(
        !ok && err.starts_with("error: ") && err.trim().lines().count() == 1,
        "duplicate user: {err}"
    );
    let (ok, _, err) = cli(d, &["user", "create", "bad name "], None);
    assert!(!ok && err.contains("username"), "{err}");
    let (ok, out, _) = cli(
        d,
        &["user", "set-password", "carol"],
        Some("another pass\n"),
    );
    assert!(ok, "{out}");
    let (ok, _, err) = cli(
        d,
        &["user", "set-password", "carol", "--hash"],
        Some("md5$garbage\n"),
    );
    assert!(
        !ok && err.contains("not a supported password hash"),
        "{err}"
    );
    let django = "pbkdf2_sha256$1000$saltsaltsalt12$KO0GYJjE7W6f962m1/EhDI3JHibo2cwMkcoTY0XThwU=";
    let (ok, out, err) = cli(
        d,
        &["user", "set-password", "carol", "--hash"],
        Some(&format!("{django}\n")),
    );
    assert!(ok, "{out}{err}");
    let (ok, out, _) = cli(
        d,
        &["user", "set-password", "carol"],
        Some("another pass\n"),
    );
    assert!(ok, "{out}");
    let (ok, out, _) = cli(d, &["user", "list"], None);
    assert!(
        ok && out.contains("carol\tcarol@example.com\tactive\tsuperuser"),
        "{out}"
    );
    let (ok, key, err) = cli(
        d,
        &[
            "token",
            "create",
            "--user",
            "carol",
            "--identifier",
            "carol-cli",
        ],
        None,
    );
    assert!(ok, "{err}");
    let key = key.trim().to_owned();
    assert_eq!(key.len(), 64);
    let (ok, _, err) = cli(
        d,
        &["token", "create", "--user", "nobody", "--identifier", "x"],
        None,
    );
    assert!(!ok && err.contains("nobody"), "{err}");

    // The CLI's token works against the server on the same data dir.
    let s = serve(d, &[]);
    let r = reqwest::blocking::Client::new()
        .get(format!("{}/api/v3/core/users/me/", s.url))
        .bearer_auth(&key)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: Value = r.json().unwrap();
    assert_eq!(me["user"]["username"], "carol");
    assert_eq!(me["user"]["is_superuser"], true);
    let addr = s.url.trim_start_matches("http://").to_owned();
    let (ok, out, err) = cli(d, &["healthcheck", "--url", &addr], None);
    assert!(ok && out.trim() == "ok", "{out}{err}");
    drop(s);
    let (ok, _, _) = cli(d, &["healthcheck", "--url", &addr], None);
    assert!(!ok, "healthcheck of a stopped server fails");

    // Bad configuration: one line on stderr, non-zero exit.
    std::fs::write(d.join("bad.toml"), "listen_htp = 1\n").unwrap();
    let (ok, _, err) = cli(d, &["--config", "bad.toml", "version"], None);
    assert!(
        !ok && err.contains("listen_htp") && err.trim().lines().count() == 1,
        "{err}"
    );
}

#[test]
fn metrics_and_request_ids() {
    let dir = tempfile::tempdir().unwrap();
    let metrics_port = free_port();
    let listen = format!("127.0.0.1:{metrics_port}");
    let mut env = bootstrap_env();
    env.push(("PORTCULLIS_LISTEN_METRICS", listen.as_str()));
    // serve() sets its own metrics port first; the explicit one here wins as it is set later.
    let s = serve(dir.path(), &env);
    let r = reqwest::blocking::Client::new()
        .get(format!("{}/api/v3/core/users/", s.url))
        .bearer_auth(TOKEN)
        .send()
        .unwrap();
    assert!(
        r.headers()
            .get("x-request-id")
            .is_some_and(|v| v.len() >= 32)
    );
    let text = reqwest::blocking::get(format!("http://{listen}/metrics"))
        .unwrap()
        .text()
        .unwrap();
    assert!(text.contains("portcullis_http_requests_total"), "{text}");
    assert!(text.contains("route=\"/api/v3/core/users/\""), "{text}");
}

#[test]
fn authentik_client_drives_the_api() {
    let python = std::env::var("PORTCULLIS_TEST_PYTHON").expect(
        "PORTCULLIS_TEST_PYTHON is not set: run the tests with scripts/test (it builds .venv with authentik-client)",
    );
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path(), &bootstrap_env());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(python)
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/compat",
        ])
        .current_dir(&root)
        .env("PORTCULLIS_URL", &s.url)
        .env("PORTCULLIS_TOKEN", TOKEN)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "authentik-client suite failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" passed"), "{stdout}");
    assert!(!stdout.contains("skipped"), "{stdout}");
}

#[test]
fn https_serves_the_generated_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path(), &bootstrap_env());
    let keypairs = s.get("crypto/certificatekeypairs/?name=Portcullis%20Self-signed%20Certificate");
    let fingerprint = keypairs["results"][0]["fingerprint_sha256"]
        .as_str()
        .unwrap()
        .replace(':', "");
    let client = reqwest::blocking::Client::builder()
        .danger_accept_invalid_certs(true)
        .tls_info(true)
        .build()
        .unwrap();
    let r = client
        .get(format!("{}/api/v3/core/users/me/", s.https_url))
        .bearer_auth(TOKEN)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let info = r
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .expect("TLS info");
    let der = info.peer_certificate().expect("peer certificate");
    assert_eq!(
        portcullis_crypto::sha256_hex(der),
        fingerprint,
        "served certificate is the stored keypair"
    );
    // A client that validates certificates refuses the self-signed one.
    assert!(reqwest::blocking::get(format!("{}/-/health/live/", s.https_url)).is_err());
    // A client that never completes its handshake does not block others.
    let _silent = std::net::TcpStream::connect(s.https_url.trim_start_matches("https://")).unwrap();
    let r = client
        .get(format!("{}/-/health/live/", s.https_url))
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
}

#[test]
fn blueprints_from_the_command_line_and_the_blueprints_dir() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("team.yaml"),
        "version: 1\nmetadata:\n  name: team\nentries:\n  - model: authentik_core.group\n    id: team\n    identifiers:\n      name: team\n  - model: authentik_core.user\n    identifiers:\n      username: bob\n    attrs:\n      name: Bob\n      groups: [!KeyOf team]\n  - model: authentik_core.application\n    identifiers:\n      slug: chat\n    attrs:\n      name: Chat\n      meta_description: !File description.txt\n",
    )
    .unwrap();
    std::fs::write(d.join("description.txt"), "Where the team talks").unwrap();
    let (ok, out, err) = cli(d, &["blueprint", "apply", "team.yaml"], None);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("team.yaml: 3 created, 0 updated, 0 deleted, 0 unchanged"),
        "{out}"
    );
    let (ok, out, _) = cli(d, &["blueprint", "apply", "team.yaml"], None);
    assert!(
        ok && out.contains("0 created, 0 updated, 0 deleted, 3 unchanged"),
        "{out}"
    );
    std::fs::write(d.join("broken.yaml"), "version: 1\nentries:\n  - model: authentik_core.user\n    identifiers:\n      username: carl\n    attrs:\n      name: Carl\n      email: not an email\n").unwrap();
    let (ok, _, err) = cli(d, &["blueprint", "apply", "broken.yaml"], None);
    assert!(!ok, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("broken.yaml: entry 0 (authentik_core.user) attrs.email"),
        "{err}"
    );
    let (ok, _, err) = cli(d, &["blueprint", "apply", "missing.yaml"], None);
    assert!(!ok && err.contains("missing.yaml"), "{err}");

    // Blueprints in PORTCULLIS_BLUEPRINTS_DIR apply at start, with !Env from the environment.
    let bp_dir = d.join("blueprints");
    std::fs::create_dir(&bp_dir).unwrap();
    std::fs::write(
        bp_dir.join("brand.yaml"),
        "version: 1\nentries:\n  - model: authentik_brands.brand\n    identifiers:\n      domain: sso.example.com\n    attrs:\n      branding_title: !Env [BRAND_TITLE, Fallback]\n",
    )
    .unwrap();
    let mut env = bootstrap_env();
    let bp_dir_s = bp_dir.display().to_string();
    env.push(("PORTCULLIS_BLUEPRINTS_DIR", bp_dir_s.as_str()));
    env.push(("BRAND_TITLE", "Example SSO"));
    let s = serve(d, &env);
    let brands = s.get("core/brands/?domain=sso.example.com");
    assert_eq!(brands["results"][0]["branding_title"], "Example SSO");
    assert_eq!(
        s.get("core/users/?username=bob")["results"][0]["groups_obj"][0]["name"],
        "team"
    );
    assert_eq!(
        s.get("core/applications/chat/")["meta_description"],
        "Where the team talks"
    );

    // Export through the API and the command line: the same blueprint, which applies as a no-op.
    let client = reqwest::blocking::Client::new();
    let url = format!("{}/api/v3/managed/blueprints/export/", s.url);
    assert_eq!(client.get(&url).send().unwrap().status(), 401);
    let r = client.get(&url).bearer_auth(TOKEN).send().unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/yaml")
    );
    let api_export = r.text().unwrap();
    assert!(
        api_export.contains("model: authentik_core.user")
            && api_export.contains("!KeyOf group/team"),
        "{api_export}"
    );
    let (ok, cli_export, err) = cli(d, &["blueprint", "export"], None);
    assert!(ok, "{err}");
    assert_eq!(cli_export, api_export);
    std::fs::write(d.join("export.yaml"), &cli_export).unwrap();
    let (ok, out, err) = cli(d, &["blueprint", "apply", "export.yaml"], None);
    assert!(
        ok && out.contains(" 0 created, 0 updated, 0 deleted"),
        "{out}{err}"
    );

    // A file that changes while the server runs is applied again; one that goes is orphaned.
    std::fs::write(
        bp_dir.join("brand.yaml"),
        "version: 1\nentries:\n  - model: authentik_brands.brand\n    identifiers:\n      domain: sso.example.com\n    attrs:\n      branding_title: Edited\n",
    )
    .unwrap();
    std::fs::write(
        bp_dir.join("group.yaml"),
        "version: 1\nentries:\n  - model: authentik_core.group\n    identifiers: {name: watched}\n",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let title =
            s.get("core/brands/?domain=sso.example.com")["results"][0]["branding_title"].clone();
        let watched = s.get("core/groups/?name=watched")["pagination"]["count"].clone();
        if title == "Edited" && watched == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "changed blueprints were not applied: {title} {watched}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::fs::remove_file(bp_dir.join("group.yaml")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = s.get("managed/blueprints/?path=group.yaml");
        if list["results"][0]["status"] == "orphaned" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "removed blueprint not orphaned: {list}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
