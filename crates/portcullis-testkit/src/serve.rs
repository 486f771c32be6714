//! The real `portcullis serve` binary as a separate process, for black-box and browser tests:
//! started on free loopback ports, waited for until `/-/health/ready/` answers, killed on drop.
//! Its log (stderr) goes to `serve-<http port>.log` in the data directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// How long a start may take before the test fails.
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// What the server logs once it has bound its ports and can serve.
const READY_LINE: &str = "Portcullis is ready";
/// Starts tried before giving up on ports that other processes keep taking.
const ATTEMPTS: usize = 5;

/// A running `portcullis serve`, killed on drop.
pub struct Serve {
    pub child: Child,
    /// `http://127.0.0.1:<port>`
    pub url: String,
    /// `https://127.0.0.1:<port>`
    pub https_url: String,
    pub log_path: PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    /// Starts `bin serve` in `dir` (its data directory) with only `PATH` and `env` in its
    /// environment, and waits until it is ready. The ports are free when chosen, but a test
    /// running in parallel may bind one first: the start is then tried again on new ports.
    ///
    /// # Panics
    /// When the server exits or is not ready in time (with its log), or keeps losing its ports.
    pub fn start(bin: &str, dir: &Path, env: &[(&str, &str)]) -> Serve {
        for _ in 0..ATTEMPTS {
            match Serve::try_start(bin, dir, env) {
                Ok(server) => return server,
                Err(log) if log.contains("Address already in use") => continue,
                Err(log) => panic!("server did not become ready; log:\n{log}"),
            }
        }
        panic!("no free ports after {ATTEMPTS} attempts");
    }

    fn try_start(bin: &str, dir: &Path, env: &[(&str, &str)]) -> Result<Serve, String> {
        let (http, https, metrics) = (free_port(), free_port(), free_port());
        let log_path = dir.join(format!("serve-{http}.log"));
        let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PORTCULLIS_LISTEN_HTTP", format!("127.0.0.1:{http}"))
            .env("PORTCULLIS_LISTEN_HTTPS", format!("127.0.0.1:{https}"))
            .env("PORTCULLIS_LISTEN_METRICS", format!("127.0.0.1:{metrics}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        // Set after the ports, so a test may choose one of its own.
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().map_err(|e| format!("cannot run {bin}: {e}"))?;
        let mut server = Serve {
            child,
            url: format!("http://127.0.0.1:{http}"),
            https_url: format!("https://127.0.0.1:{https}"),
            log_path,
        };
        let deadline = Instant::now() + READY_DEADLINE;
        while Instant::now() < deadline {
            // Its own "ready" line first: it is logged once all three ports are bound by this
            // process, so the health answer that follows cannot come from another test's
            // server that took the port (nextest runs tests in separate processes).
            if server.log().contains(READY_LINE) && ready(http) {
                return Ok(server);
            }
            if server
                .child
                .try_wait()
                .map_err(|e| e.to_string())?
                .is_some()
            {
                let log = server.log();
                // A retry must not inherit this attempt's log.
                let _ = std::fs::remove_file(&server.log_path);
                return Err(log);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(server.log())
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

/// Whether `GET /-/health/ready/` on `port` answers 204.
fn ready(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /-/health/ready/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.ends_with(b" 204")
}
