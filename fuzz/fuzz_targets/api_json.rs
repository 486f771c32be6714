//! Request bodies of the API: any bytes give a value or a DRF-shaped error, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = portcullis_http::extract::parse_json::<portcullis_http::serializers::UserRequest>(data);
    let _ = portcullis_http::extract::parse_json::<portcullis_http::serializers::BrandRequest>(data);
    let _ = portcullis_http::extract::parse_json::<portcullis_http::serializers::TokenRequest>(data);
});
