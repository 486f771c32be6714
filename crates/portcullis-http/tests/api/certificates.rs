//! `crypto/certificatekeypairs/`: `generate/` (ECDSA, RSA 2048), import of PEMs, key and
//! certificate checks, `view_certificate/` and `view_private_key/` (with `secret_view` and
//! `?download`); superusers only.

use portcullis_testkit::both_backends;

use crate::common::*;

const KPS: &str = "/api/v3/crypto/certificatekeypairs/";

fn kp_path(pk: &Value) -> String {
    format!("{KPS}{}/", pk.as_str().unwrap())
}

async fn generate(ctx: &Ctx, cn: &str, alg: &str) -> Value {
    let r = ctx
        .post(
            &format!("{KPS}generate/"),
            &ctx.admin,
            json!({"common_name": cn, "subject_alt_name": format!("{cn}, alt.{cn}, 127.0.0.1"),
                   "validity_days": 30, "alg": alg}),
        )
        .await;
    r.ok().clone()
}

async fn pems(ctx: &Ctx, pk: &Value) -> (String, String) {
    let cert = ctx
        .get(&format!("{}view_certificate/", kp_path(pk)), &ctx.admin)
        .await;
    let key = ctx
        .get(&format!("{}view_private_key/", kp_path(pk)), &ctx.admin)
        .await;
    (
        cert.ok()["data"].as_str().unwrap().to_owned(),
        key.ok()["data"].as_str().unwrap().to_owned(),
    )
}

async fn certificate_lifecycle(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let ec = generate(&ctx, "ec.example.com", "ecdsa").await;
    assert_eq!(ec["name"], "ec.example.com");
    assert_eq!(ec["private_key_available"], true);
    assert_eq!(ec["key_type"], "ec");
    assert_eq!(ec["cert_subject"], "CN=ec.example.com");
    assert_eq!(ec["fingerprint_sha256"].as_str().unwrap().len(), 32 * 3 - 1);
    let expiry: chrono::DateTime<chrono::Utc> =
        ec["cert_expiry"].as_str().unwrap().parse().unwrap();
    let days = (expiry - ctx.app.state.clock.now()).num_days();
    assert!((29..=30).contains(&days), "{days}");
    assert_eq!(
        ec["certificate_download_url"],
        format!("{}view_certificate/?download", kp_path(&ec["pk"]))
    );
    let rsa = generate(&ctx, "rsa.example.com", "rsa").await;
    assert_eq!(rsa["key_type"], "rsa");
    assert_eq!(rsa["private_key_available"], true);

    let (ec_cert, ec_key) = pems(&ctx, &ec["pk"]).await;
    let (rsa_cert, rsa_key) = pems(&ctx, &rsa["pk"]).await;
    assert!(
        ec_cert.starts_with("-----BEGIN CERTIFICATE-----"),
        "{ec_cert}"
    );
    assert!(ec_key.contains("PRIVATE KEY-----"), "{ec_key}");
    assert!(rsa_key.contains("PRIVATE KEY-----"));

    // Viewing a private key is audited, without the key in the event.
    let views = ctx.events("action=secret_view").await;
    assert_eq!(views.len(), 2);
    let viewed: Vec<&Value> = views
        .iter()
        .map(|e| &e["context"]["secret"]["pk"])
        .collect();
    assert!(viewed.contains(&&ec["pk"]) && viewed.contains(&&rsa["pk"]));
    for e in &views {
        assert_eq!(e["user"]["username"], "admin");
        assert!(!e.to_string().contains("PRIVATE KEY"));
    }

    // Downloads are attachments holding the PEM itself.
    for (suffix, want, file) in [
        (
            "view_certificate/?download",
            &ec_cert,
            "ec.example.com_certificate.pem",
        ),
        (
            "view_private_key/?download",
            &ec_key,
            "ec.example.com_private_key.pem",
        ),
    ] {
        let r = ctx.get(&format!("{}{suffix}", kp_path(&ec["pk"])), a).await;
        r.status(StatusCode::OK);
        let disposition = r.headers[reqwest::header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap();
        assert!(disposition.starts_with("attachment"), "{disposition}");
        assert!(disposition.contains(file), "{disposition}");
        assert_eq!(&r.text, want);
    }

    // Import the generated PEMs.
    let imported = ctx
        .post(
            KPS,
            a,
            json!({"name": "imported", "certificate_data": ec_cert, "key_data": ec_key}),
        )
        .await;
    let imported = imported.created();
    assert_eq!(imported["fingerprint_sha256"], ec["fingerprint_sha256"]);
    assert_eq!(imported["fingerprint_sha1"], ec["fingerprint_sha1"]);
    assert_eq!(imported["private_key_available"], true);
    assert_eq!(imported["key_type"], "ec");
    assert_eq!(
        pems(&ctx, &imported["pk"]).await,
        (ec_cert.clone(), ec_key.clone())
    );
    let cert_only = ctx
        .post(
            KPS,
            a,
            json!({"name": "cert-only", "certificate_data": rsa_cert, "key_data": ""}),
        )
        .await;
    assert_eq!(cert_only.created()["private_key_available"], false);
    let no_key = ctx
        .get(
            &format!("{}view_private_key/", kp_path(&cert_only.body["pk"])),
            a,
        )
        .await;
    assert_eq!(no_key.ok()["data"], "");

    // Refused imports and updates change nothing.
    let garbage = "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n";
    for (body, field) in [
        (json!({"certificate_data": ec_cert}), "name"),
        (json!({"name": "x"}), "certificate_data"),
        (json!({"name": "", "certificate_data": ec_cert}), "name"),
        (
            json!({"name": "imported", "certificate_data": ec_cert}),
            "name",
        ),
        (
            json!({"name": "x", "certificate_data": garbage}),
            "certificate_data",
        ),
        (
            json!({"name": "x", "certificate_data": "hello"}),
            "certificate_data",
        ),
        (
            json!({"name": "x", "certificate_data": ""}),
            "certificate_data",
        ),
        (
            json!({"name": "x", "certificate_data": ec_key}),
            "certificate_data",
        ),
        (
            json!({"name": "x", "certificate_data": ec_cert, "key_data": rsa_key}),
            "key_data",
        ),
        (
            json!({"name": "x", "certificate_data": rsa_cert, "key_data": ec_key}),
            "key_data",
        ),
        (
            json!({"name": "x", "certificate_data": ec_cert, "key_data": "garbage"}),
            "key_data",
        ),
        (
            json!({"name": "x", "certificate_data": ec_cert, "key_data": ec_cert}),
            "key_data",
        ),
        (
            json!({"name": "x", "certificate_data": 5}),
            "certificate_data",
        ),
        (
            json!({"name": "x", "certificate_data": format!("{ec_cert}\u{0}")}),
            "certificate_data",
        ),
        (
            json!({"name": "x", "certificate_data": format!("\u{0}{ec_cert}")}),
            "certificate_data",
        ),
    ] {
        ctx.invalid(Method::POST, KPS, a, body, field).await;
    }
    let p = kp_path(&imported["pk"]);
    for (method, body, field) in [
        (Method::PATCH, json!({"key_data": rsa_key}), "key_data"),
        // A certificate alone must match the key it is kept with.
        (
            Method::PATCH,
            json!({"certificate_data": rsa_cert}),
            "certificate_data",
        ),
        (
            Method::PUT,
            json!({"name": "imported", "certificate_data": rsa_cert}),
            "certificate_data",
        ),
        (
            Method::PATCH,
            json!({"certificate_data": garbage}),
            "certificate_data",
        ),
        (Method::PATCH, json!({"name": "cert-only"}), "name"),
        (Method::PUT, json!({"name": "x"}), "certificate_data"),
        (Method::PUT, json!({"certificate_data": ec_cert}), "name"),
    ] {
        ctx.invalid(method, &p, a, body, field).await;
    }

    // Updates: rename, then swap in the RSA pair.
    let renamed = ctx.patch(&p, a, json!({"name": "renamed"})).await;
    assert_eq!(renamed.ok()["name"], "renamed");
    assert_eq!(renamed.body["fingerprint_sha256"], ec["fingerprint_sha256"]);
    let swapped = ctx
        .put(
            &p,
            a,
            json!({"name": "renamed", "certificate_data": rsa_cert, "key_data": rsa_key}),
        )
        .await;
    assert_eq!(
        swapped.ok()["fingerprint_sha256"],
        rsa["fingerprint_sha256"]
    );
    assert_eq!(swapped.body["key_type"], "rsa");

    // Lists.
    let names = |query: &'static str| {
        let ctx = &ctx;
        async move {
            let r = ctx.get(&format!("{KPS}{query}"), &ctx.admin).await;
            r.ok();
            r.column("name")
        }
    };
    assert_eq!(
        names("").await,
        ["cert-only", "ec.example.com", "renamed", "rsa.example.com"]
    );
    assert_eq!(names("?has_key=false").await, ["cert-only"]);
    assert_eq!(names("?name=renamed").await, ["renamed"]);
    assert_eq!(names("?key_type=ec").await, ["ec.example.com"]);
    assert_eq!(names("?search=RSA").await, ["rsa.example.com"]);
    ctx.get(&format!("{KPS}?has_key=sometimes"), a)
        .await
        .field_error("has_key");

    ctx.delete(&p, a).await.no_content();
    ctx.not_found(Method::GET, &p, a, Body::None).await;
    ctx.not_found(Method::GET, &format!("{p}view_private_key/"), a, Body::None)
        .await;
}

async fn generate_validation(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let path = format!("{KPS}generate/");
    generate(&ctx, "taken.example.com", "ecdsa").await;
    for (body, field) in [
        (json!({"validity_days": 1}), "common_name"),
        (json!({"common_name": "x"}), "validity_days"),
        (
            json!({"common_name": "", "validity_days": 1}),
            "common_name",
        ),
        (
            json!({"common_name": "x".repeat(65), "validity_days": 1}),
            "common_name",
        ),
        (
            json!({"common_name": "nul\u{0}", "validity_days": 1}),
            "common_name",
        ),
        (
            json!({"common_name": "x", "validity_days": 0}),
            "validity_days",
        ),
        (
            json!({"common_name": "x", "validity_days": -5}),
            "validity_days",
        ),
        (
            json!({"common_name": "x", "validity_days": 36_501}),
            "validity_days",
        ),
        (
            json!({"common_name": "x", "validity_days": "ten"}),
            "validity_days",
        ),
        (
            json!({"common_name": "x", "validity_days": 1e30}),
            "validity_days",
        ),
        (
            json!({"common_name": "x", "validity_days": 1, "alg": "dsa"}),
            "alg",
        ),
        (
            json!({"common_name": "x", "validity_days": 1, "alg": 1}),
            "alg",
        ),
        (
            json!({"common_name": "x", "validity_days": 1, "subject_alt_name": "a,".repeat(101)}),
            "subject_alt_name",
        ),
        (
            json!({"common_name": "x", "validity_days": 1, "subject_alt_name": "ünïcode.example.com"}),
            "subject_alt_name",
        ),
        (
            json!({"common_name": "x", "validity_days": 1, "subject_alt_name": "tab\there"}),
            "subject_alt_name",
        ),
        (
            json!({"common_name": "taken.example.com", "validity_days": 1, "alg": "ecdsa"}),
            "common_name",
        ),
    ] {
        ctx.invalid(Method::POST, &path, a, body, field).await;
    }
    // Names with characters a file name must not carry still download safely.
    let odd = ctx
        .post(
            &path,
            a,
            json!({"common_name": "we\"ird/na\\me ü", "validity_days": 1, "alg": "ed25519"}),
        )
        .await;
    let odd = odd.ok();
    assert_eq!(odd["key_type"], "ed25519");
    let r = ctx
        .get(
            &format!("{}view_certificate/?download", kp_path(&odd["pk"])),
            a,
        )
        .await;
    r.status(StatusCode::OK);
    let disposition = r.headers[reqwest::header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap();
    assert_eq!(disposition.matches('"').count(), 2, "{disposition}");
    assert!(!disposition.contains('/') && !disposition.contains('\\'));
}

/// A name with line breaks must not break (or inject) the download's headers.
async fn download_names_cannot_inject_headers(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let kp = generate(&ctx, "source.example.com", "ecdsa").await;
    let (cert, _) = pems(&ctx, &kp["pk"]).await;
    let created = ctx
        .post(
            KPS,
            a,
            json!({"name": "evil\r\nX-Injected: yes\ttab", "certificate_data": cert}),
        )
        .await;
    let pk = created.created()["pk"].clone();
    for suffix in ["view_certificate/?download", "view_private_key/?download"] {
        let r = ctx.get(&format!("{}{suffix}", kp_path(&pk)), a).await;
        r.status(StatusCode::OK);
        assert!(!r.headers.contains_key("x-injected"));
        let disposition = r.headers[reqwest::header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap();
        assert!(
            disposition.starts_with("attachment; filename=\"evil"),
            "{disposition}"
        );
    }
}

both_backends!(
    certificate_lifecycle,
    generate_validation,
    download_names_cannot_inject_headers
);
