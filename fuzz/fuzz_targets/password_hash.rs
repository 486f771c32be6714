//! Stored password hashes (imported from authentik/Django): parsing and bounded verification
//! never panic and never do unbounded work.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(stored) = std::str::from_utf8(data) {
        let _ = portcullis_crypto::is_supported_hash(stored);
        let _ = portcullis_crypto::needs_rehash(stored);
    }
});
