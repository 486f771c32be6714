//! portcullis-crypto
