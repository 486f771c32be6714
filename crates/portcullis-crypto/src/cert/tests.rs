#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use chrono::TimeZone;

use super::*;

// Made with OpenSSL 3.0 (`openssl req -x509 ...`); expected values from `openssl x509`.
// The keys are test-only.
const RSA_CERT: &str = include_str!("../../testdata/rsa.crt");
const RSA_KEY_PKCS8: &str = include_str!("../../testdata/rsa.key");
const RSA_KEY_PKCS1: &str = include_str!("../../testdata/rsa_pkcs1.key");
const RSA_KEY_ENCRYPTED: &str = include_str!("../../testdata/rsa_enc.key");
const RSA_OTHER_KEY: &str = include_str!("../../testdata/rsa_other.key");
const EC_CERT: &str = include_str!("../../testdata/ec.crt");
/// SEC1 with a leading `EC PARAMETERS` block, as `openssl ecparam -genkey` writes it.
const EC_KEY_SEC1: &str = include_str!("../../testdata/ec_sec1.key");
const EC384_KEY_PKCS8: &str = include_str!("../../testdata/ec384.key");
const ED_CERT: &str = include_str!("../../testdata/ed.crt");
const ED_KEY: &str = include_str!("../../testdata/ed.key");

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
}

#[test]
fn parses_openssl_rsa_certificate() {
    let info = parse_certificate(RSA_CERT).unwrap();
    assert_eq!(
        info.fingerprint_sha256,
        "a9:8a:66:55:61:ad:09:09:96:6a:aa:e2:11:bd:a9:8a:ec:ad:8c:28:cb:a1:99:9e:8b:7e:c8:ef:39:46:46:de"
    );
    assert_eq!(
        info.fingerprint_sha1,
        "78:db:53:f5:e3:3e:e7:57:f2:ed:49:32:58:e7:b3:fe:92:45:1a:c9"
    );
    assert_eq!(
        info.not_before,
        Utc.with_ymd_and_hms(2026, 11, 29, 15, 31, 34).unwrap()
    );
    assert_eq!(
        info.not_after,
        Utc.with_ymd_and_hms(2036, 11, 26, 15, 31, 34).unwrap()
    );
    assert!(
        info.subject
            .contains("CN=authentik Self-signed Certificate"),
        "{}",
        info.subject
    );
    assert!(info.subject.contains("O=authentik"), "{}", info.subject);
    assert_eq!(info.subject, info.issuer);
    assert_eq!(info.key_type.as_deref(), Some("rsa"));
}

#[test]
fn parses_ec_and_ed25519_certificates() {
    let ec = parse_certificate(EC_CERT).unwrap();
    assert_eq!(
        ec.fingerprint_sha256,
        "e4:17:4e:38:2d:c2:aa:79:e3:71:fd:a0:1d:15:88:b5:0c:71:aa:f3:53:7d:82:24:88:7d:f6:54:f8:9d:e8:77"
    );
    assert_eq!(
        ec.fingerprint_sha1,
        "bc:08:5a:27:8c:26:0a:58:b1:ca:72:76:eb:47:6d:7e:8e:98:3f:60"
    );
    assert_eq!(ec.subject, "CN=ec.example");
    assert_eq!(ec.key_type.as_deref(), Some("ec"));
    let ed = parse_certificate(ED_CERT).unwrap();
    assert_eq!(
        ed.fingerprint_sha256,
        "a1:c4:45:b7:5c:e1:98:bc:d8:12:01:24:40:b1:0d:bf:c3:d8:db:e1:52:63:d9:c6:8e:cb:e8:6f:ce:ca:28:a5"
    );
    assert_eq!(ed.key_type.as_deref(), Some("ed25519"));
}

#[test]
fn first_certificate_of_a_bundle_is_read() {
    // Key first, then a chain: the first CERTIFICATE block wins.
    let bundle = format!("{RSA_KEY_PKCS8}\n{EC_CERT}\n{RSA_CERT}");
    assert_eq!(parse_certificate(&bundle).unwrap().subject, "CN=ec.example");
}

#[test]
fn validates_private_keys_in_every_format() {
    for key in [
        RSA_KEY_PKCS8,
        RSA_KEY_PKCS1,
        RSA_OTHER_KEY,
        EC_KEY_SEC1,
        EC384_KEY_PKCS8,
        ED_KEY,
    ] {
        validate_private_key(key).unwrap();
    }
    assert!(matches!(
        validate_private_key(RSA_KEY_ENCRYPTED),
        Err(CryptoError::PrivateKey(_))
    ));
}

#[test]
fn keys_match_their_certificates() {
    assert!(key_matches_certificate(RSA_CERT, RSA_KEY_PKCS8).unwrap());
    assert!(key_matches_certificate(RSA_CERT, RSA_KEY_PKCS1).unwrap());
    assert!(key_matches_certificate(EC_CERT, EC_KEY_SEC1).unwrap());
    assert!(key_matches_certificate(ED_CERT, ED_KEY).unwrap());
    assert!(!key_matches_certificate(RSA_CERT, RSA_OTHER_KEY).unwrap());
    assert!(!key_matches_certificate(RSA_CERT, EC_KEY_SEC1).unwrap());
    assert!(!key_matches_certificate(EC_CERT, EC384_KEY_PKCS8).unwrap());
    assert!(!key_matches_certificate(ED_CERT, RSA_KEY_PKCS8).unwrap());
}

#[test]
fn generates_self_signed_ecdsa_by_default() {
    let sans = vec!["auth.example.com".to_owned(), "192.0.2.7".to_owned()];
    let pair = generate_self_signed("Portcullis Self-signed", &sans, 365, now()).unwrap();
    assert!(
        pair.certificate_pem
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    assert!(
        pair.private_key_pem
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    let info = parse_certificate(&pair.certificate_pem).unwrap();
    assert_eq!(info.subject, "CN=Portcullis Self-signed");
    assert_eq!(info.issuer, info.subject);
    assert_eq!(info.key_type.as_deref(), Some("ec"));
    assert_eq!(info.not_before, now() - chrono::Duration::minutes(1));
    assert_eq!(info.not_after, now() + chrono::Duration::days(365));
    validate_private_key(&pair.private_key_pem).unwrap();
    assert!(key_matches_certificate(&pair.certificate_pem, &pair.private_key_pem).unwrap());

    // The SANs are there, the IP as an IP.
    let der = certificate_der(&pair.certificate_pem).unwrap();
    let cert = parse_der(&der).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    let names: Vec<String> = san
        .value
        .general_names
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        names.iter().any(|n| n.contains("auth.example.com")),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n.contains("c0:00:02:07")), "{names:?}");
    // Positive, non-trivial serial.
    assert!(cert.raw_serial().len() >= 15);
    assert!(format!("{pair:?}").contains("[redacted]"));
    assert!(!format!("{pair:?}").contains("PRIVATE KEY"));
}

#[test]
fn generates_every_algorithm() {
    // RSA 4096 is left out to keep the tests fast; it goes through the same code as 2048.
    for (alg, key_type) in [
        (KeyAlgorithm::EcdsaP256, "ec"),
        (KeyAlgorithm::EcdsaP384, "ec"),
        (KeyAlgorithm::Rsa2048, "rsa"),
        (KeyAlgorithm::Ed25519, "ed25519"),
    ] {
        let pair = generate_self_signed_with(alg, "alg test", &[], 1, now()).unwrap();
        let info = parse_certificate(&pair.certificate_pem).unwrap();
        assert_eq!(info.key_type.as_deref(), Some(key_type), "{alg:?}");
        assert!(key_matches_certificate(&pair.certificate_pem, &pair.private_key_pem).unwrap());
    }
}

#[test]
fn two_generated_pairs_differ() {
    let a = generate_self_signed("x", &[], 1, now()).unwrap();
    let b = generate_self_signed("x", &[], 1, now()).unwrap();
    assert!(!key_matches_certificate(&a.certificate_pem, &b.private_key_pem).unwrap());
    assert_ne!(
        parse_certificate(&a.certificate_pem)
            .unwrap()
            .fingerprint_sha256,
        parse_certificate(&b.certificate_pem)
            .unwrap()
            .fingerprint_sha256
    );
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let padding = "x".repeat(MAX_PEM_LEN);
    let big = format!("{padding}\n{RSA_CERT}");
    assert!(matches!(
        parse_certificate(&big),
        Err(CryptoError::InputTooLarge { .. })
    ));
    let big = format!("{padding}\n{RSA_KEY_PKCS8}");
    assert!(matches!(
        validate_private_key(&big),
        Err(CryptoError::InputTooLarge { .. })
    ));
    assert!(matches!(
        key_matches_certificate(RSA_CERT, &big),
        Err(CryptoError::InputTooLarge { .. })
    ));
}

#[test]
fn hostile_certificates_are_errors() {
    let body: String = RSA_CERT
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let truncated = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        &body[..body.len() / 2]
    );
    let mut der = certificate_der(RSA_CERT).unwrap();
    der.push(0);
    let trailing = pem::encode(&pem::Pem::new("CERTIFICATE", der));
    let mut der = certificate_der(RSA_CERT).unwrap();
    let mid = der.len() / 2;
    der[mid] ^= 0xff;
    let flipped = pem::encode(&pem::Pem::new("CERTIFICATE", der));
    let cases = [
        String::new(),
        "garbage".to_owned(),
        "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n".to_owned(),
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n".to_owned(),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_owned(),
        "-----BEGIN CERTIFICATE-----\nMIIB\n".to_owned(),
        truncated,
        trailing,
        RSA_KEY_PKCS8.to_owned(),
        RSA_CERT.replace("CERTIFICATE", "CERTIFICAT"),
        pem::encode(&pem::Pem::new(
            "CERTIFICATE",
            vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
        )),
        pem::encode(&pem::Pem::new("CERTIFICATE", vec![0u8; 5000])),
    ];
    for case in &cases {
        assert!(parse_certificate(case).is_err(), "{case}");
        assert!(
            key_matches_certificate(case, RSA_KEY_PKCS8).is_err(),
            "{case}"
        );
    }
    // A flipped byte either fails to parse or changes the fingerprint; it never panics.
    if let Ok(info) = parse_certificate(&flipped) {
        assert_ne!(
            info.fingerprint_sha256,
            parse_certificate(RSA_CERT).unwrap().fingerprint_sha256
        );
    }
}

#[test]
fn hostile_keys_are_errors() {
    let truncated: String = RSA_KEY_PKCS8.lines().take(5).collect::<Vec<_>>().join("\n")
        + "\n-----END PRIVATE KEY-----\n";
    let cases = [
        String::new(),
        "garbage".to_owned(),
        RSA_CERT.to_owned(),
        truncated,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_owned(),
        "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n".to_owned(),
        "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n".to_owned(),
        RSA_KEY_PKCS1.replace("RSA PRIVATE KEY", "EC PRIVATE KEY"),
        RSA_KEY_PKCS8.replace("PRIVATE KEY", "RSA PRIVATE KEY"),
        EC_KEY_SEC1.replace("EC PRIVATE KEY", "RSA PRIVATE KEY"),
        pem::encode(&pem::Pem::new(
            "PRIVATE KEY",
            vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
        )),
        pem::encode(&pem::Pem::new("PRIVATE KEY", vec![0u8; 3000])),
    ];
    for case in &cases {
        assert!(validate_private_key(case).is_err(), "{case}");
        assert!(key_matches_certificate(RSA_CERT, case).is_err(), "{case}");
    }
}
