//! portcullis-http
