//! Password logins through the JSON flow executor, for `bench/login`.
//!
//! ```sh
//! LOGIN_LOAD_PASSWORD=PW login_load --port PORT [--clients 64] [--warmup 2] [--duration 15]
//!            [--users 128] [--user-prefix login-bench-] [--flow default-authentication-flow]
//! ```
//!
//! The users' password comes from `LOGIN_LOAD_PASSWORD` (or `--password`, which other users of
//! the machine can read in the process list).
//!
//! Runs `--clients` concurrent logins as users `<prefix>0` .. `<prefix><users-1>` for
//! `--warmup` + `--duration` seconds on one thread (it shares the cores with the server, so it
//! should cost little CPU) and prints one JSON object on stdout: how many logins ended inside the
//! measured window (the throughput), the latency of each login that started and ended inside
//! it, each request's latency, and counts of errors, logins outside the window and sampled
//! `users/me/` checks.
//!
//! One login = 3 requests on one keep-alive connection with its own cookie jar:
//!   GET  executor                -> ak-stage-identification
//!   POST uid_field               -> ak-stage-password (the next challenge, in the answer)
//!   POST password                -> xak-flow-redirect (and the logged-in session cookie)
//! A server that answers an accepted POST with 302 (authentik's way) gets the GET it asks for,
//! counted in the POST's step. Each client's first login and every 20th after it is checked
//! with `GET /api/v3/core/users/me/` (not part of the login latency).

use std::error::Error;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{ACCEPT, CONTENT_TYPE, COOKIE, HOST, SET_COOKIE};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

type BoxError = Box<dyn Error + Send + Sync>;

const STEPS: [&str; 3] = ["GET ident", "POST ident", "POST password"];
const SESSION_COOKIE: &str = "authentik_session";
/// How many error messages are kept for the report.
const KEEP_ERRORS: usize = 5;

struct Args {
    port: u16,
    clients: usize,
    warmup: f64,
    duration: f64,
    users: usize,
    prefix: String,
    password: String,
    flow: String,
}

fn usage() -> String {
    "usage: LOGIN_LOAD_PASSWORD=PW login_load --port PORT [--clients N] [--warmup S] [--duration S] \
     [--users N] [--user-prefix P] [--flow SLUG]"
        .to_owned()
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 0,
        clients: 64,
        warmup: 2.0,
        duration: 15.0,
        users: 128,
        prefix: "login-bench-".to_owned(),
        password: std::env::var("LOGIN_LOAD_PASSWORD").unwrap_or_default(),
        flow: "default-authentication-flow".to_owned(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{}", usage()))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--port" => args.port = value.parse().map_err(|e| bad(&e))?,
            "--clients" => args.clients = value.parse().map_err(|e| bad(&e))?,
            "--warmup" => args.warmup = value.parse().map_err(|e| bad(&e))?,
            "--duration" => args.duration = value.parse().map_err(|e| bad(&e))?,
            "--users" => args.users = value.parse().map_err(|e| bad(&e))?,
            "--user-prefix" => args.prefix = value,
            "--password" => args.password = value,
            "--flow" => args.flow = value,
            _ => return Err(format!("unknown argument {flag}\n{}", usage())),
        }
    }
    if args.port == 0 || args.password.is_empty() || args.clients == 0 || args.users == 0 {
        return Err(usage());
    }
    if !(args.warmup >= 0.0 && args.duration > 0.0) {
        return Err("--warmup must be >= 0 and --duration > 0".to_owned());
    }
    Ok(args)
}

/// One keep-alive connection with a cookie jar.
struct Conn {
    port: u16,
    host: String,
    sender: Option<SendRequest<Full<Bytes>>>,
    cookies: Vec<(String, String)>,
}

impl Conn {
    fn new(port: u16) -> Self {
        Self {
            port,
            host: format!("127.0.0.1:{port}"),
            sender: None,
            cookies: Vec::new(),
        }
    }

    async fn connect(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, BoxError> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = TcpStream::connect(("127.0.0.1", self.port)).await?;
            stream.set_nodelay(true)?;
            let (sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                // The connection ends when the server closes it or the sender is dropped.
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        self.sender.as_mut().ok_or_else(|| "no connection".into())
    }

    fn build(
        &self,
        method: &Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Request<Full<Bytes>>, BoxError> {
        let mut req = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(HOST, self.host.as_str())
            .header(ACCEPT, "application/json");
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.header(COOKIE, jar.join("; "));
        }
        let body = match body {
            Some(b) => {
                req = req.header(CONTENT_TYPE, "application/json");
                Full::new(Bytes::copy_from_slice(b))
            }
            None => Full::new(Bytes::new()),
        };
        Ok(req.body(body)?)
    }

    fn take_cookies(&mut self, headers: &hyper::HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            let first = value.split(';').next().unwrap_or_default();
            let Some((name, val)) = first.split_once('=') else {
                continue;
            };
            let (name, val) = (name.trim(), val.trim());
            self.cookies.retain(|(k, _)| k != name);
            if !val.is_empty() && !value.to_ascii_lowercase().contains("max-age=0") {
                self.cookies.push((name.to_owned(), val.to_owned()));
            }
        }
    }

    /// Sends one request; retries once on a new connection when the kept-alive one was closed.
    async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<(StatusCode, Bytes), BoxError> {
        let mut attempt = 0;
        loop {
            let req = self.build(&method, path, body)?;
            let sent = async {
                let sender = self.connect().await?;
                sender.ready().await?;
                Ok::<_, BoxError>(sender.send_request(req).await?)
            }
            .await;
            match sent {
                Ok(resp) => {
                    let (parts, body) = resp.into_parts();
                    self.take_cookies(&parts.headers);
                    let data = body.collect().await?.to_bytes();
                    return Ok((parts.status, data));
                }
                Err(_) if attempt == 0 => {
                    self.sender = None;
                    attempt += 1;
                }
                Err(e) => {
                    self.sender = None;
                    return Err(e);
                }
            }
        }
    }
}

fn component(data: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(data).ok()?;
    v.get("component")?.as_str().map(str::to_owned)
}

fn snippet(data: &[u8]) -> String {
    String::from_utf8_lossy(data.get(..200).unwrap_or(data)).into_owned()
}

#[derive(Default)]
struct Stats {
    /// Seconds per login, for logins that started and ended inside the window.
    latencies: Vec<f64>,
    /// Logins that ended inside the window, wherever they started: the throughput. (Counting
    /// only those that also started inside would miss about one latency's worth of logins at
    /// each end of the window.)
    completed: u64,
    /// Seconds per request, by step, inside the window.
    steps: [Vec<f64>; 3],
    errors: u64,
    first_errors: Vec<String>,
    me_ok: u64,
    me_bad: u64,
    warmup: u64,
    late: u64,
}

struct Window {
    start: Instant,
    end: Instant,
}

async fn login(
    conn: &mut Conn,
    exec: &str,
    username: &str,
    password: &str,
) -> Result<[f64; 3], BoxError> {
    conn.cookies.clear();
    let mut times = [0.0; 3];
    let ident = json!({"component": "ak-stage-identification", "uid_field": username}).to_string();
    let pw = json!({"component": "ak-stage-password", "password": password}).to_string();
    let plan: [(Method, Option<&[u8]>, &str); 3] = [
        (Method::GET, None, "ak-stage-identification"),
        (Method::POST, Some(ident.as_bytes()), "ak-stage-password"),
        (Method::POST, Some(pw.as_bytes()), "xak-flow-redirect"),
    ];
    for (i, ((method, body, want), time)) in plan.into_iter().zip(times.iter_mut()).enumerate() {
        let name = STEPS.get(i).copied().unwrap_or_default();
        let t = Instant::now();
        let (mut status, mut data) = conn.request(method.clone(), exec, body).await?;
        if method == Method::POST && status == StatusCode::FOUND {
            (status, data) = conn.request(Method::GET, exec, None).await?;
        }
        *time = t.elapsed().as_secs_f64();
        if status != StatusCode::OK {
            return Err(format!("{name}: status {status}: {}", snippet(&data)).into());
        }
        if component(&data).as_deref() != Some(want) {
            return Err(format!("{name}: {}", snippet(&data)).into());
        }
    }
    if !conn.cookies.iter().any(|(k, _)| k == SESSION_COOKIE) {
        return Err("no session cookie after login".into());
    }
    Ok(times)
}

async fn check_me(conn: &mut Conn, username: &str) -> bool {
    let Ok((status, data)) = conn
        .request(Method::GET, "/api/v3/core/users/me/", None)
        .await
    else {
        return false;
    };
    let v: Option<Value> = serde_json::from_slice(&data).ok();
    status == StatusCode::OK
        && v.as_ref()
            .and_then(|v| v.pointer("/user/username"))
            .and_then(Value::as_str)
            == Some(username)
}

async fn worker(idx: usize, args: std::sync::Arc<Args>, window: std::sync::Arc<Window>) -> Stats {
    let exec = format!("/api/v3/flows/executor/{}/?query=", args.flow);
    let mut conn = Conn::new(args.port);
    let mut stats = Stats::default();
    let mut n = 0usize;
    while Instant::now() < window.end {
        let username = format!("{}{}", args.prefix, (idx + n * args.clients) % args.users);
        let s = Instant::now();
        match login(&mut conn, &exec, &username, &args.password).await {
            Err(e) => {
                stats.errors += 1;
                if stats.first_errors.len() < KEEP_ERRORS {
                    stats.first_errors.push(format!("{username}: {e}"));
                }
                conn.sender = None;
                n += 1;
                continue;
            }
            Ok(times) => {
                let e = Instant::now();
                if e > window.start && e <= window.end {
                    stats.completed += 1;
                }
                if s >= window.start && e <= window.end {
                    stats.latencies.push((e - s).as_secs_f64());
                    for (all, t) in stats.steps.iter_mut().zip(times) {
                        all.push(t);
                    }
                } else if e <= window.start {
                    stats.warmup += 1;
                } else {
                    stats.late += 1;
                }
            }
        }
        if n.is_multiple_of(20) {
            if check_me(&mut conn, &username).await {
                stats.me_ok += 1;
            } else {
                stats.me_bad += 1;
            }
        }
        n += 1;
    }
    stats
}

fn main() -> Result<(), BoxError> {
    let args = match parse_args() {
        Ok(a) => std::sync::Arc::new(a),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let t0 = Instant::now();
    let window = std::sync::Arc::new(Window {
        start: t0 + Duration::from_secs_f64(args.warmup),
        end: t0 + Duration::from_secs_f64(args.warmup + args.duration),
    });
    let mut total = Stats::default();
    rt.block_on(async {
        let tasks: Vec<_> = (0..args.clients)
            .map(|i| tokio::spawn(worker(i, args.clone(), window.clone())))
            .collect();
        for task in tasks {
            let s = task.await?;
            total.latencies.extend(s.latencies);
            for (all, part) in total.steps.iter_mut().zip(s.steps) {
                all.extend(part);
            }
            total.completed += s.completed;
            total.errors += s.errors;
            for e in s.first_errors {
                if total.first_errors.len() < KEEP_ERRORS {
                    total.first_errors.push(e);
                }
            }
            total.me_ok += s.me_ok;
            total.me_bad += s.me_bad;
            total.warmup += s.warmup;
            total.late += s.late;
        }
        Ok::<_, BoxError>(())
    })?;
    let report = json!({
        "latencies": total.latencies,
        "completed": total.completed,
        "steps": total.steps,
        "step_names": STEPS,
        "errors": total.errors,
        "first_errors": total.first_errors,
        "me_ok": total.me_ok,
        "me_bad": total.me_bad,
        "warmup": total.warmup,
        "late": total.late,
    });
    println!("{report}");
    Ok(())
}
