//! Expression policies written by administrators: any source parses or fails cleanly.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(code) = std::str::from_utf8(data) {
        let _ = portcullis_policy::ExpressionPolicy::new("fuzz", code).validate();
    }
});
