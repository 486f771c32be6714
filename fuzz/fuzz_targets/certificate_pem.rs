//! Certificates and keys uploaded through the API: parsing never panics.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(pem) = std::str::from_utf8(data) {
        let _ = portcullis_crypto::parse_certificate(pem);
        let _ = portcullis_crypto::validate_private_key(pem);
    }
});
