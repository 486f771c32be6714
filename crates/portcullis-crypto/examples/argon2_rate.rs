#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! Raw argon2id verification rate, for `bench/login`.
//!
//! ```sh
//! cargo run --release -p portcullis-crypto --example argon2_rate -- THREADS SECONDS
//! ```
//!
//! Hashes one password with [`hash_password`] (the server's parameters), then runs
//! [`verify_password`] on it in THREADS OS threads (the server's `password_hash_concurrency`,
//! which defaults to the number of CPUs) for SECONDS, and prints one line:
//! `verifications_per_s total_verifications elapsed_s threads mean_ms_per_verification`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use portcullis_crypto::{hash_password, verify_password};

fn main() {
    let mut args = std::env::args().skip(1);
    let threads: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let seconds: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5.0);
    let password = "bench-password-argon2-rate";
    let stored = hash_password(password).expect("hash_password");
    // One untimed verification, to check the hash and warm up the allocator.
    assert!(verify_password(&stored, password).valid);

    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, count, stored) = (stop.clone(), count.clone(), stored.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let v = verify_password(&stored, password);
                    assert!(v.valid && !v.needs_rehash);
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("verifier thread");
    }
    // Count what finished, over the time until the last one finished.
    let elapsed = start.elapsed().as_secs_f64();
    let n = count.load(Ordering::Relaxed);
    let rate = n as f64 / elapsed;
    let ms = if n > 0 {
        elapsed * 1000.0 * threads as f64 / n as f64
    } else {
        0.0
    };
    println!("{rate:.2} {n} {elapsed:.3} {threads} {ms:.2}");
}
