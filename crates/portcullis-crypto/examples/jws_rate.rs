#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! Raw JWS signing rate of one key, for `bench/oauth`.
//!
//! ```sh
//! cargo run --release -p portcullis-crypto --example jws_rate -- ALG THREADS SECONDS
//! ```
//!
//! ALG is `es256` or `rs256` (a new P-256 or RSA-2048 key, as `crypto/certificatekeypairs/
//! generate/` makes them). Signs an access-token-sized claim set with [`JwsSigner::sign`] (the
//! server's own signing call) in THREADS OS threads for SECONDS and prints one line:
//! `signatures_per_s total elapsed_s threads mean_us_per_signature`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use portcullis_core::Clock;
use portcullis_crypto::cert::{KeyAlgorithm, generate_self_signed_with};
use portcullis_crypto::jws::JwsSigner;

fn main() {
    let mut args = std::env::args().skip(1);
    let alg = args.next().unwrap_or_else(|| "es256".to_owned());
    let threads: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let seconds: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5.0);
    let key = match alg.as_str() {
        "es256" => KeyAlgorithm::EcdsaP256,
        "rs256" => KeyAlgorithm::Rsa2048,
        other => panic!("unknown algorithm {other}: es256 or rs256"),
    };
    let now = portcullis_core::SystemClock.now();
    let kp = generate_self_signed_with(key, "jws-rate", &[], 30, now).expect("key");
    let signer = Arc::new(
        JwsSigner::from_pem(&kp.private_key_pem, Some(&kp.certificate_pem)).expect("signer"),
    );
    // The shape of a client_credentials access token.
    let claims = serde_json::json!({
        "iss": "http://127.0.0.1:9000/application/o/bench/",
        "sub": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "aud": "bench-client-0123456789abcdef0123456789",
        "exp": now.timestamp() + 3600, "iat": now.timestamp(), "auth_time": now.timestamp(),
        "acr": "goauthentik.io/providers/oauth2/default",
        "azp": "bench-client-0123456789abcdef0123456789",
        "client_id": "bench-client-0123456789abcdef0123456789",
        "uid": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "scope": "openid", "jti": "7d8a1f0e-5c3b-4b6a-9e2d-0f1e2d3c4b5a",
    });
    signer.sign(&claims, "at+jwt").expect("sign");
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, count, signer, claims) =
                (stop.clone(), count.clone(), signer.clone(), claims.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    signer.sign(&claims, "at+jwt").expect("sign");
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let total = count.load(Ordering::Relaxed);
    let rate = total as f64 / elapsed;
    println!(
        "{rate:.1} {total} {elapsed:.3} {threads} {:.1}",
        1e6 * threads as f64 / rate
    );
}
