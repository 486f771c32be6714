#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;
use std::sync::Arc;

// Reference vectors produced by Django's algorithms in Python (hashlib, argon2-cffi 25.1,
// pyca bcrypt 5.0), in the exact formats Django stores.
const PBKDF2_SHA256: &str =
    "pbkdf2_sha256$1000$aZ3kLmN0pQrStUvW$TgNzNu+8Eh4mADHOuevOJV2KkHxHO3BHEzavb9iYHpg=";
const PBKDF2_SHA256_UNICODE: &str =
    "pbkdf2_sha256$2000$saltsaltsalt1234$nE9TCwRPs2izo2jOoJLhBhaYec26RF+MDZFmqqrqbMs=";
const UNICODE_PASSWORD: &str = "p\u{e4}ssw\u{f6}rd \u{1F600}";
/// Django 5.0's default iteration count.
const PBKDF2_SHA256_DJANGO_DEFAULT: &str =
    "pbkdf2_sha256$870000$Xy9sEcReTsAlT000$GGmqiCnCpgRF8cqnisuSKbdYoZiHUITSbJE9ieN9smI=";
const PBKDF2_SHA1: &str = "pbkdf2_sha1$1500$oldsalt$ySRX1IOMk/yYO2832h30lCA3xok=";
const DJANGO_ARGON2ID: &str = "argon2$argon2id$v=19$m=1024,t=2,p=2$MDEyMzQ1Njc4OWFiY2RlZmdoaWo$ycwxSoQGxKc/jMUp17B7IGF7Z6184yXWC2L5b0M5nTs";
const DJANGO_ARGON2I: &str = "argon2$argon2i$v=19$m=1024,t=2,p=2$MDEyMzQ1Njc4OWFiY2RlZmdoaWo$0Y43dfbMH2RGGTWfD8y4L1yU7IshjoBpggQQTiynhLA";
/// A PHC string with our parameters made by argon2-cffi.
const CFFI_ARGON2ID_OURS: &str = "$argon2id$v=19$m=19456,t=2,p=1$4IkJCiYv1Yt2Qkqfl5V7Yw$L3SMUq5K4NQM4nGBX7481VFia96ghEzFxcSQm2Pc5x4";
const DJANGO_BCRYPT_SHA256: &str =
    "bcrypt_sha256$$2b$05$HcivAR3PtkHDVAgGDmJx8e0vOF.VooX8/YP7yLaPdFhqgmS6mdd7e";
/// Over the SHA-256 of 100 `x`: longer than bcrypt's 72 bytes, which the prehash makes safe.
const DJANGO_BCRYPT_SHA256_LONG: &str =
    "bcrypt_sha256$$2b$04$TlBBxAwJu64aCyMcjM8n3eKxJ11BKIFHAjybXIi3J9c0z95WspiNO";
const DJANGO_BCRYPT: &str = "bcrypt$$2b$04$AIUS1sUYyI15S9.q.v/q8eYKMIWJb3HTMIipDajKSjdKEPa8C/CUe";
const DJANGO_BCRYPT_2A: &str =
    "bcrypt$$2a$04$Wz1bw9aVcZ4Mr68o88kEVeWgYxqtY1wSrFZeydHKCvao0GHRMnDBq";

const VALID_REHASH: Verification = Verification {
    valid: true,
    needs_rehash: true,
};
const VALID_CURRENT: Verification = Verification {
    valid: true,
    needs_rehash: false,
};

#[test]
fn hash_then_verify_roundtrip() {
    let stored = hash_password("correct horse").unwrap();
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    assert_eq!(verify_password(&stored, "correct horse"), VALID_CURRENT);
    assert_eq!(
        verify_password(&stored, "correct horsE"),
        Verification::INVALID
    );
    assert!(!needs_rehash(&stored));
    // Salted: the same password hashes differently.
    assert_ne!(stored, hash_password("correct horse").unwrap());
}

#[test]
fn reads_argon2_cffi_phc_with_our_parameters() {
    assert_eq!(
        verify_password(CFFI_ARGON2ID_OURS, "correct horse"),
        VALID_CURRENT
    );
    assert_eq!(
        verify_password(CFFI_ARGON2ID_OURS, "wrong"),
        Verification::INVALID
    );
}

#[test]
fn django_pbkdf2() {
    assert_eq!(
        verify_password(PBKDF2_SHA256, "correct horse"),
        VALID_REHASH
    );
    assert_eq!(
        verify_password(PBKDF2_SHA256, "correct horse "),
        Verification::INVALID
    );
    assert_eq!(
        verify_password(PBKDF2_SHA256_UNICODE, UNICODE_PASSWORD),
        VALID_REHASH
    );
    assert_eq!(
        verify_password(PBKDF2_SHA256_DJANGO_DEFAULT, "hunter2"),
        VALID_REHASH
    );
    assert_eq!(verify_password(PBKDF2_SHA1, "legacy"), VALID_REHASH);
    assert_eq!(
        verify_password(PBKDF2_SHA1, "Legacy"),
        Verification::INVALID
    );
    assert!(needs_rehash(PBKDF2_SHA256));
}

#[test]
fn django_argon2() {
    assert_eq!(
        verify_password(DJANGO_ARGON2ID, "correct horse"),
        VALID_REHASH
    );
    assert_eq!(
        verify_password(DJANGO_ARGON2ID, "correct"),
        Verification::INVALID
    );
    assert_eq!(
        verify_password(DJANGO_ARGON2I, "correct horse"),
        VALID_REHASH
    );
    assert_eq!(verify_password(DJANGO_ARGON2I, "x"), Verification::INVALID);
    // Our parameters in Django's format still move to our format.
    let django_ours = format!("argon2{CFFI_ARGON2ID_OURS}");
    assert_eq!(verify_password(&django_ours, "correct horse"), VALID_REHASH);
}

#[test]
fn django_bcrypt() {
    assert_eq!(
        verify_password(DJANGO_BCRYPT_SHA256, "correct horse"),
        VALID_REHASH
    );
    assert_eq!(
        verify_password(DJANGO_BCRYPT_SHA256, "correct hors"),
        Verification::INVALID
    );
    assert_eq!(
        verify_password(DJANGO_BCRYPT_SHA256_LONG, &"x".repeat(100)),
        VALID_REHASH
    );
    assert_eq!(
        verify_password(DJANGO_BCRYPT_SHA256_LONG, &"x".repeat(99)),
        Verification::INVALID
    );
    assert_eq!(
        verify_password(DJANGO_BCRYPT, "correct horse"),
        VALID_REHASH
    );
    assert_eq!(
        verify_password(DJANGO_BCRYPT_2A, "correct horse"),
        VALID_REHASH
    );
    assert_eq!(
        verify_password(DJANGO_BCRYPT, "wrong"),
        Verification::INVALID
    );
    // The prefix decides the scheme: a plain bcrypt hash is not a bcrypt_sha256 one.
    let swapped = DJANGO_BCRYPT.replacen("bcrypt$", "bcrypt_sha256$", 1);
    assert_eq!(
        verify_password(&swapped, "correct horse"),
        Verification::INVALID
    );
}

#[test]
fn unusable_passwords_never_verify() {
    assert_eq!(
        verify_password(UNUSABLE_PASSWORD, ""),
        Verification::INVALID
    );
    assert_eq!(
        verify_password(UNUSABLE_PASSWORD, "!"),
        Verification::INVALID
    );
    let marker = unusable_password();
    assert_eq!(marker.len(), 41);
    assert!(!is_password_usable(&marker));
    assert!(!needs_rehash(&marker));
    assert_eq!(verify_password(&marker, &marker), Verification::INVALID);
    // A valid hash behind the marker (Django's set_unusable_password keeps none, but be safe).
    assert_eq!(
        verify_password(&format!("!{PBKDF2_SHA1}"), "legacy"),
        Verification::INVALID
    );
    assert!(is_password_usable(PBKDF2_SHA1));
}

#[test]
fn garbage_never_verifies() {
    let long = "a".repeat(10_000);
    let cases: &[&str] = &[
        "",
        "$",
        "$$$$$$",
        "plaintext",
        "correct horse",
        "md5$salt$abcdef",
        "sha1$salt$abcdef",
        "unsalted_md5$abc",
        "pbkdf2_sha256$",
        "pbkdf2_sha256$1000",
        "pbkdf2_sha256$1000$salt",
        "pbkdf2_sha256$1000$salt$",
        "pbkdf2_sha256$0$aZ3kLmN0pQrStUvW$TgNzNu+8Eh4mADHOuevOJV2KkHxHO3BHEzavb9iYHpg=",
        "pbkdf2_sha256$-1$aZ3kLmN0pQrStUvW$TgNzNu+8Eh4mADHOuevOJV2KkHxHO3BHEzavb9iYHpg=",
        "pbkdf2_sha256$+1000$aZ3kLmN0pQrStUvW$TgNzNu+8Eh4mADHOuevOJV2KkHxHO3BHEzavb9iYHpg=",
        "pbkdf2_sha256$ 1000$aZ3kLmN0pQrStUvW$TgNzNu+8Eh4mADHOuevOJV2KkHxHO3BHEzavb9iYHpg=",
        "pbkdf2_sha256$1000$$TgNzNu+8Eh4mADHOuevOJV2KkHxHO3BHEzavb9iYHpg=",
        "pbkdf2_sha256$1000$aZ3kLmN0pQrStUvW$TgNzNu+8Eh4mADHOuevOJV2KkHxHO3BHEzavb9iY",
        "pbkdf2_sha256$1000$aZ3kLmN0pQrStUvW$!!!!",
        "pbkdf2_sha256$1000$aZ3kLmN0pQrStUvW$TgNzNu+8Eh4mADHOuevOJV2KkHxHO3BHEzavb9iYHpg=$x",
        "pbkdf2_sha256$99999999999999999999$s$TgNzNu+8Eh4mADHOuevOJV2KkHxHO3BHEzavb9iYHpg=",
        "argon2$",
        "argon2$argon2id",
        "argon2$argon2id$v=19",
        "argon2$argon2id$v=19$m=1024,t=2,p=2",
        "argon2$argon2id$v=19$m=1024,t=2,p=2$MDEyMzQ1Njc4OWFiY2RlZmdoaWo",
        "argon2$argon2id$v=18$m=1024,t=2,p=2$MDEyMzQ1Njc4OWFiY2RlZmdoaWo$ycwxSoQGxKc/jMUp17B7IGF7Z6184yXWC2L5b0M5nTs",
        "argon2$argon2x$v=19$m=1024,t=2,p=2$MDEyMzQ1Njc4OWFiY2RlZmdoaWo$ycwxSoQGxKc/jMUp17B7IGF7Z6184yXWC2L5b0M5nTs",
        "argon2$argon2id$v=19$m=1024,t=2$MDEyMzQ1Njc4OWFiY2RlZmdoaWo$ycwxSoQGxKc/jMUp17B7IGF7Z6184yXWC2L5b0M5nTs",
        "argon2$argon2id$v=19$m=1024,t=2,p=2,p=2$MDEyMzQ1Njc4OWFiY2RlZmdoaWo$ycwxSoQGxKc/jMUp17B7IGF7Z6184yXWC2L5b0M5nTs",
        "argon2$argon2id$v=19$m=1024,t=2,p=2,x=1$MDEyMzQ1Njc4OWFiY2RlZmdoaWo$ycwxSoQGxKc/jMUp17B7IGF7Z6184yXWC2L5b0M5nTs",
        "argon2$argon2id$v=19$m=1,t=2,p=2$MDEyMzQ1Njc4OWFiY2RlZmdoaWo$ycwxSoQGxKc/jMUp17B7IGF7Z6184yXWC2L5b0M5nTs",
        "argon2$argon2id$v=19$m=1024,t=0,p=2$MDEyMzQ1Njc4OWFiY2RlZmdoaWo$ycwxSoQGxKc/jMUp17B7IGF7Z6184yXWC2L5b0M5nTs",
        "argon2$argon2id$v=19$m=1024,t=2,p=0$MDEyMzQ1Njc4OWFiY2RlZmdoaWo$ycwxSoQGxKc/jMUp17B7IGF7Z6184yXWC2L5b0M5nTs",
        "argon2$argon2id$v=19$m=1024,t=2,p=2$c2FsdA$ycwxSoQGxKc/jMUp17B7IGF7Z6184yXWC2L5b0M5nTs",
        "argon2$argon2id$v=19$m=1024,t=2,p=2$MDEyMzQ1Njc4OWFiY2RlZmdoaWo$eWM",
        "argon2$argon2id$v=19$m=1024,t=2,p=2$%%%$ycwxSoQGxKc/jMUp17B7IGF7Z6184yXWC2L5b0M5nTs",
        "argon2$argon2id$v=19$m=1024,t=2,p=2$MDEyMzQ1Njc4OWFiY2RlZmdoaWo$ycwxSoQGxKc/jMUp17B7IGF7Z6184yXWC2L5b0M5nTs$",
        "$argon2id$v=19$m=19456,t=2,p=1$4IkJCiYv1Yt2Qkqfl5V7Yw",
        "$argon2id$v=19$m=19456,t=2,p=1$4IkJCiYv1Yt2Qkqfl5V7Yw$L3SMUq5K4NQM4nGBX7481VFia96ghEzFxc",
        "$argon2$v=19$m=19456,t=2,p=1$4IkJCiYv1Yt2Qkqfl5V7Yw$L3SMUq5K4NQM4nGBX7481VFia96ghEzFxcSQm2Pc5x4",
        "$argon2id$v=19$m=19456,t=2,p=1,keyid=abc$4IkJCiYv1Yt2Qkqfl5V7Yw$L3SMUq5K4NQM4nGBX7481VFia96ghEzFxcSQm2Pc5x4",
        "bcrypt$",
        "bcrypt$$2b$",
        "bcrypt$$2b$04$",
        "bcrypt$$2b$04$AIUS1sUYyI15S9.q.v/q8eYKMIWJb3HTMIipDajKSjdKEPa8C/CU",
        "bcrypt$$2b$4$AIUS1sUYyI15S9.q.v/q8eYKMIWJb3HTMIipDajKSjdKEPa8C/CUe",
        "bcrypt$$2b$03$AIUS1sUYyI15S9.q.v/q8eYKMIWJb3HTMIipDajKSjdKEPa8C/CUe",
        "bcrypt$$2c$04$AIUS1sUYyI15S9.q.v/q8eYKMIWJb3HTMIipDajKSjdKEPa8C/CUe",
        "bcrypt$$2b$04$!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        "bcrypt_sha256$",
        "bcrypt_sha256$2b$05$HcivAR3PtkHDVAgGDmJx8e0vOF.VooX8/YP7yLaPdFhqgmS6mdd7e",
        "\u{0}\u{0}\u{0}",
        "$argon2id$\u{1F600}",
        &long,
    ];
    for stored in cases {
        assert_eq!(
            verify_password(stored, "correct horse"),
            Verification::INVALID,
            "{stored}"
        );
        assert_eq!(
            verify_password(stored, ""),
            Verification::INVALID,
            "{stored}"
        );
        assert!(needs_rehash(stored), "{stored}");
    }
}

#[test]
fn tampered_hashes_do_not_verify() {
    for (stored, password) in [
        (PBKDF2_SHA256, "correct horse"),
        (DJANGO_ARGON2ID, "correct horse"),
        (CFFI_ARGON2ID_OURS, "correct horse"),
        (DJANGO_BCRYPT, "correct horse"),
    ] {
        // Flip one character of the digest at the end (keeping it valid base64).
        let mut bytes = stored.as_bytes().to_vec();
        let i = bytes.len() - 3;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert_eq!(
            verify_password(&tampered, password),
            Verification::INVALID,
            "{tampered}"
        );
    }
    // A changed salt or iteration count changes the result.
    let other_salt = PBKDF2_SHA256.replace("aZ3kLmN0pQrStUvW", "aZ3kLmN0pQrStUvX");
    assert!(!verify_password(&other_salt, "correct horse").valid);
    let other_iterations = PBKDF2_SHA256.replace("$1000$", "$1001$");
    assert!(!verify_password(&other_iterations, "correct horse").valid);
}

#[test]
fn excessive_work_factors_are_refused_quickly() {
    let start = std::time::Instant::now();
    // Just above the PBKDF2 bound: refused without computing.
    let pbkdf2 =
        "pbkdf2_sha256$10000001$salt$TgNzNu+8Eh4mADHOuevOJV2KkHxHO3BHEzavb9iYHpg=".to_owned();
    assert_eq!(verify_password(&pbkdf2, "x"), Verification::INVALID);
    let pbkdf2 = format!(
        "pbkdf2_sha256${}$salt$TgNzNu+8Eh4mADHOuevOJV2KkHxHO3BHEzavb9iYHpg=",
        u32::MAX
    );
    assert_eq!(verify_password(&pbkdf2, "x"), Verification::INVALID);
    // 1 GiB + 1 KiB of argon2 memory, and an absurd time cost.
    let argon2_m = DJANGO_ARGON2ID.replace("m=1024", &format!("m={}", 1024 * 1024 + 1));
    assert_eq!(
        verify_password(&argon2_m, "correct horse"),
        Verification::INVALID
    );
    let argon2_m = DJANGO_ARGON2ID.replace("m=1024", &format!("m={}", u32::MAX));
    assert_eq!(
        verify_password(&argon2_m, "correct horse"),
        Verification::INVALID
    );
    let argon2_t = DJANGO_ARGON2ID.replace("t=2", "t=100000");
    assert_eq!(
        verify_password(&argon2_t, "correct horse"),
        Verification::INVALID
    );
    let argon2_p = DJANGO_ARGON2ID.replace("p=2", "p=16777215");
    assert_eq!(
        verify_password(&argon2_p, "correct horse"),
        Verification::INVALID
    );
    let bcrypt = DJANGO_BCRYPT.replace("$04$", "$31$");
    assert_eq!(
        verify_password(&bcrypt, "correct horse"),
        Verification::INVALID
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(1));
}

#[test]
fn parameters_other_than_ours_need_rehash() {
    // Our format but other parameters: valid, needs rehash.
    let stored = "$argon2id$v=19$m=1024,t=2,p=2$MDEyMzQ1Njc4OWFiY2RlZmdoaWo$ycwxSoQGxKc/jMUp17B7IGF7Z6184yXWC2L5b0M5nTs";
    assert_eq!(verify_password(stored, "correct horse"), VALID_REHASH);
    assert!(needs_rehash(stored));
}

#[test]
fn dummy_hash_has_our_parameters() {
    let dummy = dummy_hash();
    assert!(
        dummy.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{dummy}"
    );
    assert!(!needs_rehash(dummy));
    assert_eq!(verify_password(dummy, DUMMY_PASSWORD), VALID_CURRENT);
}

#[test]
fn parse_decimal_is_strict() {
    assert_eq!(parse_decimal("0"), Some(0));
    assert_eq!(parse_decimal("4294967295"), Some(u32::MAX));
    for bad in [
        "",
        "+1",
        "-1",
        " 1",
        "1 ",
        "4294967296",
        "99999999999",
        "1e3",
        "0x10",
    ] {
        assert_eq!(parse_decimal(bad), None, "{bad}");
    }
}

#[tokio::test]
async fn pool_hashes_and_verifies() {
    let hasher = PasswordHasher::new(2);
    let stored = hasher.hash("pool password".to_owned()).await.unwrap();
    assert_eq!(
        hasher
            .verify(stored.clone(), "pool password".to_owned())
            .await,
        VALID_CURRENT
    );
    assert_eq!(
        hasher.clone().verify(stored, "nope".to_owned()).await,
        Verification::INVALID
    );
    assert_eq!(
        hasher
            .verify(PBKDF2_SHA256.to_owned(), "correct horse".to_owned())
            .await,
        VALID_REHASH
    );
    assert_eq!(
        hasher.verify_dummy(DUMMY_PASSWORD.to_owned()).await,
        Verification::INVALID
    );
}

#[tokio::test]
async fn pool_bounds_concurrency() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    for limit in [1, 3] {
        let hasher = PasswordHasher::new(limit);
        assert_eq!(hasher.concurrency(), limit);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let jobs: Vec<_> = (0..8)
            .map(|_| {
                let (running, most, h) = (running.clone(), most.clone(), hasher.clone());
                tokio::spawn(async move {
                    h.run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                        std::thread::current().name().map(str::to_owned)
                    })
                    .await
                })
            })
            .collect();
        let mut names = Vec::new();
        for j in jobs {
            names.push(j.await.unwrap());
        }
        assert_eq!(
            most.load(Ordering::SeqCst),
            limit,
            "at most {limit} at once, and used"
        );
        for n in names {
            assert!(n.unwrap().unwrap().starts_with("portcullis-hash-"));
        }
    }
    let hasher = PasswordHasher::new(1);
    let a = hasher.verify(PBKDF2_SHA1.to_owned(), "legacy".to_owned());
    let b = hasher.verify(PBKDF2_SHA1.to_owned(), "legacy".to_owned());
    let (a, b) = tokio::join!(a, b);
    assert!(a.valid && b.valid);
    // Zero is raised to one rather than deadlocking.
    assert_eq!(PasswordHasher::new(0).concurrency(), 1);
    assert!(PasswordHasher::default().concurrency() >= 1);
}

#[tokio::test]
#[allow(clippy::panic)]
async fn a_panicking_hash_fails_alone() {
    let hasher = PasswordHasher::new(1);
    let r: Result<(), CryptoError> = hasher.run(|| panic!("boom")).await;
    assert!(matches!(r, Err(CryptoError::Task(_))), "{r:?}");
    // The thread survived: the next hash runs.
    assert_eq!(hasher.run(|| 7).await.unwrap(), 7);
}

#[tokio::test]
async fn a_hash_nobody_waits_for_is_skipped() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let hasher = PasswordHasher::new(1);
    let (release, gate) = std::sync::mpsc::channel::<()>();
    // Occupy the only thread, queue a job, drop its caller, then free the thread.
    let busy = tokio::spawn({
        let h = hasher.clone();
        async move { h.run(move || gate.recv().ok()).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let ran = Arc::new(AtomicBool::new(false));
    let queued = {
        let ran = ran.clone();
        let h = hasher.clone();
        tokio::spawn(async move { h.run(move || ran.store(true, Ordering::SeqCst)).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    queued.abort();
    let _ = queued.await;
    release.send(()).unwrap();
    busy.await.unwrap().unwrap();
    hasher.run(|| ()).await.unwrap();
    assert!(!ran.load(Ordering::SeqCst), "the abandoned hash ran");
}

#[tokio::test]
async fn pool_spends_time_on_unusable_passwords() {
    let hasher = PasswordHasher::new(1);
    assert_eq!(
        hasher
            .verify(UNUSABLE_PASSWORD.to_owned(), "x".to_owned())
            .await,
        Verification::INVALID
    );
    assert_eq!(
        hasher.verify("garbage".to_owned(), "x".to_owned()).await,
        Verification::INVALID
    );
}

/// Under load the hashing threads reuse their argon2 buffers; once idle they give them back.
#[tokio::test]
async fn idle_hashers_give_their_memory_back() {
    let hasher = PasswordHasher::new(2);
    let stored = hasher.hash("pw".into()).await.unwrap();
    assert!(hasher.verify(stored, "pw".into()).await.valid);
    let pooled = || BLOCK_POOL.lock().map(|p| p.len()).unwrap_or(0);
    assert!(pooled() >= 1, "kept for the next hash while busy");
    tokio::time::sleep(HASH_MEMORY_IDLE * 2).await;
    assert_eq!(pooled(), 0, "given back after {HASH_MEMORY_IDLE:?} idle");
}
