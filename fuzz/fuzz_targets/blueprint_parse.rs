//! Blueprint YAML from anywhere: parsing never panics and stays within its limits.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = portcullis_blueprint::parse(text, "fuzz.yaml");
    }
});
