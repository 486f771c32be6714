//! Browser tests: starts the real `portcullis` binary, then runs `tests/ui/login.test.mjs` (the
//! login page) and `tests/ui/oidc.test.mjs` (OpenID Connect sign-in with consent and logout,
//! front-channel logout, encrypted ID tokens read with the `jose` library) in
//! headless Debian chromium through playwright-core, with node's test runner. `scripts/test` installs chromium and node, runs `npm ci` in tests/ui and sets
//! `PORTCULLIS_TEST_NODE` / `PORTCULLIS_TEST_UI_DIR`. Screenshots land in
//! `$PORTCULLIS_ARTIFACTS_DIR/ui/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use portcullis_testkit::serve::Serve;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const ADMIN: &str = "admin";
const PASSWORD: &str = "correct horse battery staple";
/// The superuser's API token (the OIDC browser test sets up its provider over the API).
const TOKEN: &str = "ui-test-token-0123456789abcdef";
/// The whole node run; each browser step inside it is bounded at 10 s by the script itself.
const NODE_DEADLINE: Duration = Duration::from_secs(180);

/// Last `n` lines of `s`.
fn tail(s: &str, n: usize) -> String {
    let skip = s.lines().count().saturating_sub(n);
    s.lines().skip(skip).collect::<Vec<_>>().join("\n")
}

#[test]
fn login_page_in_a_real_browser() {
    let node = std::env::var("PORTCULLIS_TEST_NODE").expect(
        "PORTCULLIS_TEST_NODE is not set: run the tests with scripts/test (it installs chromium and node and runs npm ci in tests/ui)",
    );
    let ui_dir = std::env::var_os("PORTCULLIS_TEST_UI_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/ui"),
        PathBuf::from,
    );
    assert!(
        ui_dir.join("node_modules/playwright-core").is_dir(),
        "{}/node_modules/playwright-core is missing: run the tests with scripts/test (it runs npm ci there)",
        ui_dir.display()
    );

    let dir = tempfile::tempdir().unwrap();
    let server = Serve::start(
        BIN,
        dir.path(),
        &[
            ("PORTCULLIS_BOOTSTRAP_PASSWORD", PASSWORD),
            ("PORTCULLIS_BOOTSTRAP_TOKEN", TOKEN),
            ("PORTCULLIS_BOOTSTRAP_EMAIL", "admin@example.com"),
        ],
    );
    let artifacts = std::env::var_os("PORTCULLIS_ARTIFACTS_DIR")
        .map_or_else(|| dir.path().join("artifacts"), PathBuf::from);

    // Output to files, not pipes: nothing to drain while we wait with a deadline.
    let out_path = dir.path().join("node.out");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut child = Command::new(&node)
        .args([
            "--test",
            "--test-reporter=spec",
            "--test-concurrency=1",
            "login.test.mjs",
            "oidc.test.mjs",
        ])
        .current_dir(&ui_dir)
        .env("PORTCULLIS_URL", &server.url)
        .env("PORTCULLIS_ADMIN_USERNAME", ADMIN)
        .env("PORTCULLIS_ADMIN_PASSWORD", PASSWORD)
        .env("PORTCULLIS_ADMIN_TOKEN", TOKEN)
        .env("PORTCULLIS_ARTIFACTS_DIR", &artifacts)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {node}: {e}"));
    let deadline = Instant::now() + NODE_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    let screenshots = artifacts.join("ui");
    match status {
        Some(s) if s.success() => {
            assert!(
                output.contains("pass "),
                "no test summary from node:\n{output}"
            );
            println!("{output}\nscreenshots: {}", screenshots.display());
        }
        Some(s) => panic!(
            "browser test failed ({s}); screenshots (FAILED-*.png at the failing step) in {}\n\
             ---- node --test tests/ui/login.test.mjs tests/ui/oidc.test.mjs\n{output}\n---- server log (tail)\n{}",
            screenshots.display(),
            tail(&server.log(), 40)
        ),
        None => panic!(
            "browser test still running after {NODE_DEADLINE:?}, killed\n---- output so far\n{output}\n---- server log (tail)\n{}",
            tail(&server.log(), 40)
        ),
    }
}
