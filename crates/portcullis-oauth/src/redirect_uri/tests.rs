#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use serde_json::json;

use super::*;

/// Generous even for an unoptimised test build: a backtracking engine would take years on
/// these inputs, a linear one milliseconds.
const FAST: Duration = Duration::from_secs(5);

fn assert_fast<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    let elapsed = start.elapsed();
    assert!(elapsed < FAST, "{what} took {elapsed:?}");
    out
}

fn strict_app() -> Vec<RedirectUri> {
    vec![RedirectUri::strict("https://app/cb")]
}

// --- serde -----------------------------------------------------------------------------------

#[test]
fn serde_matches_authentik_json() {
    let entries = vec![
        RedirectUri::strict("https://app/cb"),
        RedirectUri::regex(r"https://.*\.example\.com/cb"),
    ];
    let value = serde_json::to_value(&entries).unwrap();
    assert_eq!(
        value,
        json!([
            {"matching_mode": "strict", "url": "https://app/cb", "redirect_uri_type": "authorization"},
            {"matching_mode": "regex", "url": "https://.*\\.example\\.com/cb", "redirect_uri_type": "authorization"},
        ])
    );
    let back: Vec<RedirectUri> = serde_json::from_value(value).unwrap();
    assert_eq!(back, entries);
    // authentik before the type existed wrote no type: such entries are for authorization.
    let old: RedirectUri =
        serde_json::from_value(json!({"matching_mode": "strict", "url": "https://app/cb"}))
            .unwrap();
    assert_eq!(old, RedirectUri::strict("https://app/cb"));
    let logout: RedirectUri = serde_json::from_value(
        json!({"matching_mode": "strict", "url": "https://app/bye", "redirect_uri_type": "logout"}),
    )
    .unwrap();
    assert_eq!(logout.redirect_uri_type, RedirectUriType::Logout);
    assert!(
        serde_json::from_value::<RedirectUri>(
            json!({"matching_mode": "strict", "url": "https://app/cb", "redirect_uri_type": "other"})
        )
        .is_err()
    );
}

#[test]
fn serde_refuses_other_modes_and_missing_fields() {
    for bad in [
        json!({"matching_mode": "STRICT", "url": "https://app/cb"}),
        json!({"matching_mode": "Regex", "url": "x"}),
        json!({"matching_mode": "prefix", "url": "https://app/"}),
        json!({"matching_mode": "", "url": "https://app/"}),
        json!({"url": "https://app/cb"}),
        json!({"matching_mode": "strict"}),
        json!({"matching_mode": "strict", "url": null}),
        json!("https://app/cb"),
    ] {
        assert!(
            serde_json::from_value::<RedirectUri>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}

// --- strict matching -------------------------------------------------------------------------

#[test]
fn strict_matches_exactly() {
    let registered = strict_app();
    assert_eq!(
        find_match(&registered, "https://app/cb"),
        Some(&registered[0])
    );
    assert!(registered[0].matches("https://app/cb"));
}

#[test]
fn strict_refuses_anything_else() {
    let registered = strict_app();
    for candidate in [
        "https://app/cb/",
        "https://app/cb.evil.com",
        "https://app/cb/../x",
        "https://app/cb/..",
        "https://app/x/../cb",
        "https://app/./cb",
        "https://APP/cb",
        "HTTPS://app/cb",
        "https://app/CB",
        "https://app:443/cb",
        "https://app/cb?",
        "https://app/cb?x=1",
        "https://app/c%62",
        "https://app%2Fcb",
        "http://app/cb",
        "https://app/c",
        "https://app/cbb",
        "https://app.evil.com/cb",
        "https://evil.com/https://app/cb",
        "https://app/cb ",
        " https://app/cb",
        "https://app/cb\0",
        "https://app/cb\r\n",
        "https://app/cb\n",
        "https://app/cb#",
        "https://app/cb#x",
        "",
    ] {
        assert_eq!(find_match(&registered, candidate), None, "{candidate:?}");
    }
}

#[test]
fn strict_refuses_unicode_look_alikes() {
    let registered = strict_app();
    for candidate in [
        "https://\u{0430}pp/cb",  // Cyrillic a
        "https://app/c\u{0432}",  // Cyrillic ve
        "https://app\u{2024}cb",  // one dot leader
        "https://app\u{ff0f}cb",  // fullwidth solidus
        "https://app/cb\u{200b}", // zero-width space
        "https://app/cb\u{202e}", // right-to-left override
        "ｈｔｔｐｓ://app/cb",    // fullwidth letters
    ] {
        assert_eq!(find_match(&registered, candidate), None, "{candidate:?}");
    }
}

#[test]
fn strict_custom_scheme_and_loopback() {
    let registered = vec![
        RedirectUri::strict("com.example.app:/oauth2redirect"),
        RedirectUri::strict("http://127.0.0.1:8400/cb"),
        RedirectUri::strict("http://localhost/cb?mode=a&x=%20y"),
    ];
    for entry in &registered {
        assert_eq!(find_match(&registered, &entry.url), Some(entry));
    }
    assert_eq!(
        find_match(&registered, "com.example.app:/oauth2redirect/"),
        None
    );
    assert_eq!(find_match(&registered, "http://127.0.0.1:8401/cb"), None);
    assert_eq!(
        find_match(&registered, "http://localhost/cb?x=%20y&mode=a"),
        None
    );
}

#[test]
fn strict_entry_that_should_not_exist_still_cannot_match_a_bad_candidate() {
    // Entries saved before validation existed (or imported raw) never make a bad candidate good.
    for bad in [
        "",
        "https://app/cb#frag",
        "javascript:alert(1)",
        "https://app/c b",
        "https://app/cb\r\nX: y",
        "/relative",
        "https://user@app/cb",
    ] {
        let registered = vec![RedirectUri::strict(bad)];
        assert_eq!(find_match(&registered, bad), None, "{bad:?}");
    }
}

// --- candidates no entry can accept ----------------------------------------------------------

#[test]
fn bad_candidates_never_match_even_a_match_everything_regex() {
    let registered = vec![
        RedirectUri::regex(".*"),
        RedirectUri::regex("(?s).*"),
        RedirectUri::regex(r"[\s\S]*"),
    ];
    let long = format!("https://app/{}", "a".repeat(MAX_URL_LEN));
    let huge = format!("https://app/{}", "a".repeat(1 << 20));
    for candidate in [
        "",
        "https://app/cb#",
        "https://app/cb#frag",
        "https://app/#/route",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "JAVASCRIPT:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "https://app/cb\r\nLocation: https://evil",
        "https://app/cb\nx",
        "https://app/cb\rx",
        "https://app/cb\0",
        "https://app/\x7f",
        "https://app/\x1b[31m",
        "https://app/c b",
        "https://app/c\tb",
        "https://app/\u{00e9}",
        "https://\u{0430}pp/cb",
        "/cb",
        "//evil.com/cb",
        "app/cb",
        "cb",
        ":foo",
        "1https://app/cb",
        "-x:y",
        "https:",
        "https://",
        "https:///cb",
        "https:app/cb",
        "https://:443/cb",
        "https://?x",
        "https://app@evil.com/cb",
        "https://user:pass@app/cb",
        "http://app:cb@evil.com",
        long.as_str(),
        huge.as_str(),
    ] {
        let found = assert_fast("a bad candidate", || find_match(&registered, candidate));
        assert_eq!(found, None, "{candidate:?}");
        for entry in &registered {
            assert!(!entry.matches(candidate), "{candidate:?}");
        }
    }
}

#[test]
fn candidates_at_the_length_limit() {
    let at_limit = format!(
        "https://app/{}",
        "a".repeat(MAX_URL_LEN - "https://app/".len())
    );
    assert_eq!(at_limit.len(), MAX_URL_LEN);
    let registered = vec![RedirectUri::regex("https://app/a+")];
    assert!(find_match(&registered, &at_limit).is_some());
    let over = format!("{at_limit}a");
    assert_eq!(find_match(&registered, &over), None);
}

#[test]
fn at_sign_outside_the_authority_is_fine() {
    let registered = vec![RedirectUri::regex("https://app/.*")];
    assert!(find_match(&registered, "https://app/cb@x").is_some());
    assert!(find_match(&registered, "https://app/cb?u=a@b").is_some());
    assert!(find_match(&registered, "https://app?u=a@b").is_none());
}

// --- regex matching --------------------------------------------------------------------------

#[test]
fn regex_must_match_the_whole_candidate() {
    let registered = vec![RedirectUri::regex(r"https://app/cb")];
    assert!(find_match(&registered, "https://app/cb").is_some());
    for candidate in [
        "https://app/cb.evil.com",
        "https://app/cb/",
        "https://app/cb?x",
        "https://evil.com/?https://app/cb",
        "https://xhttps://app/cb",
    ] {
        assert_eq!(find_match(&registered, candidate), None, "{candidate:?}");
    }
}

#[test]
fn regex_alternation_stays_anchored() {
    // Without the group, `\Ahttps://a/cb|https://b/cb\z` would accept any prefix of the first
    // branch and any suffix of the second.
    let registered = vec![RedirectUri::regex(r"https://a/cb|https://b/cb")];
    assert!(find_match(&registered, "https://a/cb").is_some());
    assert!(find_match(&registered, "https://b/cb").is_some());
    assert_eq!(find_match(&registered, "https://a/cb.evil.com"), None);
    assert_eq!(
        find_match(&registered, "https://evil.com/https://b/cb"),
        None
    );
}

#[test]
fn regex_that_tries_to_escape_the_anchor_group_never_matches() {
    for pattern in [
        r"https://app/cb)|(?:.*",
        r"x)|(.*",
        r"x))|((.*",
        r")|(",
        r"https://app/cb)",
    ] {
        let registered = vec![RedirectUri::regex(pattern)];
        for candidate in ["https://app/cb", "https://evil.com/", "https://app/cbx"] {
            assert_eq!(
                find_match(&registered, candidate),
                None,
                "{pattern} {candidate}"
            );
        }
        assert!(validate(&registered).is_err(), "{pattern}");
    }
}

#[test]
fn regex_extended_mode_comment_cannot_swallow_the_anchor() {
    // In `(?x)` mode `#` starts a comment to the end of the line, which would eat `)\z`.
    let registered = vec![RedirectUri::regex(r"(?x)https://app/.* #")];
    assert_eq!(find_match(&registered, "https://app/anything"), None);
    assert!(validate(&registered).is_err());
    // Extended mode without a comment stays anchored (validate refuses the spaces, but an entry
    // stored without validation still behaves).
    let registered = vec![RedirectUri::regex(r"(?x) https://app/cb ")];
    assert!(find_match(&registered, "https://app/cb").is_some());
    assert_eq!(find_match(&registered, "https://app/cbx"), None);
    assert!(validate(&registered).is_err());
}

#[test]
fn regex_flags_inside_the_pattern_do_not_unanchor_it() {
    let registered = vec![RedirectUri::regex(r"(?m)^https://app/cb$")];
    assert!(find_match(&registered, "https://app/cb").is_some());
    assert_eq!(find_match(&registered, "https://app/cbx"), None);
    let registered = vec![RedirectUri::regex(r"(?i)https://app/cb")];
    assert!(find_match(&registered, "HTTPS://APP/CB").is_some());
    assert_eq!(find_match(&registered, "https://app/cb/x"), None);
}

#[test]
fn regex_with_explicit_anchors_still_works() {
    // authentik users often write `^...$` although fullmatch does not need it.
    let registered = vec![RedirectUri::regex(r"^https://[a-z0-9-]+\.example\.com/cb$")];
    assert!(find_match(&registered, "https://tenant-1.example.com/cb").is_some());
    assert_eq!(
        find_match(&registered, "https://evil.com/.example.com/cb"),
        None
    );
    assert_eq!(find_match(&registered, "https://a.example.com/cb/x"), None);
}

#[test]
fn regex_unicode_classes_compile_but_candidates_stay_ascii() {
    let registered = vec![RedirectUri::regex(r"https://[\w-]+\.example\.com/.*")];
    assert!(validate(&registered).is_ok());
    assert!(find_match(&registered, "https://tenant_1-x.example.com/cb?a=b").is_some());
    // `\w` would match a Cyrillic letter, but such a candidate never reaches the regex.
    assert_eq!(
        find_match(&registered, "https://\u{0430}pp.example.com/cb"),
        None
    );
    // Unicode classes are the largest thing a sane pattern compiles to: several stay in budget.
    let heavy = vec![RedirectUri::regex(
        r"https://[\w\d\p{L}-]+\.[\w-]+\.example\.com/[\w/.-]*\?[\w=&%-]*",
    )];
    assert!(validate(&heavy).is_ok(), "{:?}", validate(&heavy));
}

#[test]
fn regex_dot_is_the_admins_responsibility() {
    // An unescaped dot matches any character; matching is what the pattern says, no more.
    let registered = vec![RedirectUri::regex("https://app.example.com/cb")];
    assert!(find_match(&registered, "https://appXexample.com/cb").is_some());
    let escaped = vec![RedirectUri::regex(r"https://app\.example\.com/cb")];
    assert_eq!(find_match(&escaped, "https://appXexample.com/cb"), None);
}

#[test]
fn regex_that_does_not_compile_never_matches() {
    for pattern in [
        "(",
        "[",
        "a{2,1}",
        r"\",
        "*",
        r"(?=https)https://app/cb", // look-ahead: unsupported by a linear engine
        r"(?<=x)https://app/cb",    // look-behind
        r"(https)://app/\1",        // back-reference
        r"(?P<a>x)(?P=a)",          // Python named back-reference
        "(?Z)",
    ] {
        let registered = vec![RedirectUri::regex(pattern)];
        assert_eq!(find_match(&registered, "https://app/cb"), None, "{pattern}");
        let err = validate(&registered).unwrap_err();
        assert!(err.starts_with("redirect URI 1: "), "{err}");
        assert!(
            err.contains("is not a regular expression this server supports"),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
    }
}

#[test]
fn an_invalid_regex_does_not_hide_later_entries() {
    let registered = vec![
        RedirectUri::regex("("),
        RedirectUri::regex("a{10000}{10000}"),
        RedirectUri::strict("https://app/cb"),
    ];
    assert_eq!(
        find_match(&registered, "https://app/cb"),
        Some(&registered[2])
    );
}

#[test]
fn regex_size_limit_refuses_huge_programs_quickly() {
    for pattern in [
        "a{10000}{10000}",
        "(?:a{1000}){1000}",
        r"\w{1000}",
        "(.{100}){100}",
    ] {
        let registered = vec![RedirectUri::regex(pattern)];
        let found = assert_fast(pattern, || find_match(&registered, "https://app/aaaa"));
        assert_eq!(found, None, "{pattern}");
        let err = assert_fast(pattern, || validate(&registered)).unwrap_err();
        assert!(err.contains("too large once compiled"), "{pattern}: {err}");
    }
}

#[test]
fn regex_nesting_limit() {
    let deep = format!("{}a{}", "(".repeat(500), ")".repeat(500));
    assert!(deep.len() <= MAX_URL_LEN);
    let registered = vec![RedirectUri::regex(&deep)];
    assert_eq!(find_match(&registered, "https://app/a"), None);
    assert!(validate(&registered).is_err());
    // Moderate nesting is fine.
    let shallow = format!("https://app/{}a{}", "(?:".repeat(20), ")".repeat(20));
    let registered = vec![RedirectUri::regex(&shallow)];
    assert!(find_match(&registered, "https://app/a").is_some());
}

#[test]
fn oversized_regex_entry_never_matches() {
    // Longer than any entry validate accepts, although it would match.
    let pattern = format!("{}https://app/cb", "(?:)".repeat(MAX_URL_LEN / 4 + 1));
    assert!(pattern.len() > MAX_URL_LEN);
    let registered = vec![RedirectUri::regex(&pattern)];
    assert_eq!(find_match(&registered, "https://app/cb"), None);
    assert!(regex_full_match(&pattern, "https://app/cb"));
}

#[test]
fn catastrophic_backtracking_patterns_run_in_linear_time() {
    let huge_a = format!("{}!", "a".repeat(1 << 20));
    for pattern in [
        "(a+)+$",
        "(a|a)+$",
        "(a|aa)+$",
        "(a*)*b",
        "(x+x+)+y",
        "(.*a){20}",
        "^(([a-z])+.)+[A-Z]([a-z])+$",
    ] {
        // Straight on a 1 MiB input, below the candidate checks.
        let matched = assert_fast(pattern, || regex_full_match(pattern, &huge_a));
        assert!(!matched, "{pattern}");
        // And through find_match on the longest acceptable candidate.
        let candidate = format!("https://app/{}!", "a".repeat(MAX_URL_LEN - 13));
        assert_eq!(candidate.len(), MAX_URL_LEN);
        let registered = vec![RedirectUri::regex(format!("https://app/{pattern}"))];
        let found = assert_fast(pattern, || find_match(&registered, &candidate));
        assert_eq!(found, None, "{pattern}");
    }
    let x_input = "x".repeat(1 << 20);
    assert!(!assert_fast("(x+x+)+y", || regex_full_match(
        "(x+x+)+y", &x_input
    )));
}

#[test]
fn many_entries_stay_fast() {
    let registered: Vec<RedirectUri> = (0..MAX_REDIRECT_URIS)
        .map(|i| RedirectUri::regex(format!(r"https://app{i}\.example\.com/[\w/-]*")))
        .collect();
    assert!(validate(&registered).is_ok());
    let found = assert_fast("100 regex entries", || {
        find_match(&registered, "https://app99.example.com/cb")
    });
    assert_eq!(found, registered.last());
    assert_eq!(
        assert_fast("100 regex entries", || find_match(
            &registered,
            "https://nope.example.com/"
        )),
        None
    );
}

#[test]
fn first_matching_entry_wins() {
    let registered = vec![
        RedirectUri::regex("https://app/.*"),
        RedirectUri::strict("https://app/cb"),
    ];
    let found = find_match(&registered, "https://app/cb").unwrap();
    assert_eq!(found.matching_mode, MatchingMode::Regex);
    assert!(std::ptr::eq(found, &registered[0]));
}

#[test]
fn nothing_registered_matches_nothing() {
    assert_eq!(find_match(&[], "https://app/cb"), None);
}

// --- validate --------------------------------------------------------------------------------

#[test]
fn validate_accepts_good_lists() {
    assert_eq!(validate(&[]), Ok(()));
    let good = vec![
        RedirectUri::strict("https://app.example.com/oauth/callback"),
        RedirectUri::strict("https://app.example.com:8443/cb?tenant=a&x=%2F"),
        RedirectUri::strict("http://localhost:3000/cb"),
        RedirectUri::strict("http://127.0.0.1/cb"),
        RedirectUri::strict("http://[::1]:8080/cb"),
        RedirectUri::strict("com.example.app:/oauth2redirect"),
        RedirectUri::strict("com.example.app://callback"),
        RedirectUri::strict("urn:ietf:wg:oauth:2.0:oob"),
        RedirectUri::strict("myapp+dev-1.x:cb"),
        RedirectUri::regex(r"https://[a-z0-9-]+\.example\.com/cb"),
        RedirectUri::regex(r"https://app/[^#]*"),
        RedirectUri::regex(r"^https://app/cb$"),
    ];
    assert_eq!(validate(&good), Ok(()));
}

#[test]
fn validate_bounds_the_number_of_entries() {
    let entry = RedirectUri::strict("https://app/cb");
    assert_eq!(validate(&vec![entry.clone(); MAX_REDIRECT_URIS]), Ok(()));
    let err = validate(&vec![entry; MAX_REDIRECT_URIS + 1]).unwrap_err();
    assert!(err.contains("at most 100"), "{err}");
}

#[test]
fn validate_bounds_the_length() {
    let makers: [fn(String) -> RedirectUri; 2] = [RedirectUri::strict, RedirectUri::regex];
    for make in makers {
        let at_limit = format!("https://app/{}", "a".repeat(MAX_URL_LEN - 12));
        assert_eq!(at_limit.len(), MAX_URL_LEN);
        assert_eq!(validate(&[make(at_limit.clone())]), Ok(()));
        let err = validate(&[make(format!("{at_limit}a"))]).unwrap_err();
        assert!(err.contains("at most 2048 bytes"), "{err}");
        let huge = format!("https://app/{}", "a".repeat(1 << 20));
        let err = assert_fast("1 MiB entry", || validate(&[make(huge)])).unwrap_err();
        assert!(err.contains("at most 2048 bytes"), "{err}");
    }
}

/// The error for a single strict entry.
fn strict_error(url: &str) -> String {
    validate(&[RedirectUri::strict(url)]).expect_err(url)
}

#[test]
fn validate_refuses_empty_entries() {
    assert_eq!(strict_error(""), "redirect URI 1: must not be empty");
    assert_eq!(
        validate(&[RedirectUri::regex("")]).unwrap_err(),
        "redirect URI 1: must not be empty"
    );
}

#[test]
fn validate_refuses_fragments_in_strict_entries() {
    for url in ["https://app/cb#", "https://app/cb#x", "https://app/#/cb"] {
        assert!(strict_error(url).contains("fragment"), "{url}");
    }
}

#[test]
fn validate_refuses_relative_and_schemeless_uris() {
    for url in [
        "/cb",
        "cb",
        "//app/cb",
        "app.example.com/cb",
        ":cb",
        "1app:cb",
        "-app:cb",
        "a_b:cb",
        "https:",
        "com.example.app:",
    ] {
        assert!(strict_error(url).contains("absolute URI"), "{url}");
    }
}

#[test]
fn validate_refuses_script_schemes() {
    for url in [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "DATA:x",
        "vbscript:msgbox",
    ] {
        assert!(strict_error(url).contains("scheme"), "{url}");
    }
}

#[test]
fn validate_refuses_http_without_host_or_with_user_info() {
    for url in [
        "https://",
        "https:///cb",
        "https:app/cb",
        "http:/app/cb",
        "https://:8443/cb",
        "https://?x=1",
    ] {
        assert!(strict_error(url).contains("must name a host"), "{url}");
    }
    for url in ["https://user@app/cb", "https://app.example.com@evil.com/cb"] {
        assert!(strict_error(url).contains("user information"), "{url}");
    }
}

#[test]
fn validate_refuses_whitespace_controls_and_non_ascii() {
    for make in [RedirectUri::strict, RedirectUri::regex] {
        for url in [
            "https://app/c b",
            " https://app/cb",
            "https://app/cb ",
            "https://app/c\tb",
            "https://app/cb\r\n",
            "https://app/cb\nSet-Cookie:x",
            "https://app/cb\0",
            "https://app/cb\x7f",
            "https://app/cb\x0c",
        ] {
            let err = validate(&[make(url)]).expect_err(url);
            assert!(err.contains("whitespace or control"), "{url:?}: {err}");
        }
        for url in [
            "https://app/caf\u{e9}",
            "https://\u{0430}pp/cb",
            "https://app/cb\u{200b}",
            "https://app/cb\u{a0}",
            "https://app/cb\u{2028}",
        ] {
            let err = validate(&[make(url)]).expect_err(url);
            assert!(err.contains("must be ASCII"), "{url:?}: {err}");
        }
    }
}

#[test]
fn validate_names_the_first_bad_entry() {
    let list = vec![
        RedirectUri::strict("https://app/cb"),
        RedirectUri::regex("https://.*"),
        RedirectUri::strict("https://app/cb#x"),
        RedirectUri::strict("javascript:x"),
    ];
    let err = validate(&list).unwrap_err();
    assert!(err.starts_with("redirect URI 3: "), "{err}");
}

#[test]
fn validate_regex_allows_hash_and_needs_no_scheme() {
    // A regex is not a URI: `#` may exclude fragments and there is no scheme to check.
    assert_eq!(validate(&[RedirectUri::regex(r"[^#]+")]), Ok(()));
    assert_eq!(validate(&[RedirectUri::regex(r".*")]), Ok(()));
    assert_eq!(validate(&[RedirectUri::regex(r"\#")]), Ok(()));
}

#[test]
fn validate_and_find_match_agree_on_strict_entries() {
    // Whatever validate accepts as a strict entry, find_match accepts as a candidate for it.
    for url in [
        "https://app.example.com/oauth/callback",
        "http://[::1]:8080/cb",
        "com.example.app:/oauth2redirect",
        "urn:ietf:wg:oauth:2.0:oob",
    ] {
        let registered = vec![RedirectUri::strict(url)];
        assert_eq!(validate(&registered), Ok(()));
        assert!(find_match(&registered, url).is_some(), "{url}");
    }
}

#[test]
fn regex_error_summary_is_one_line() {
    let err = build_regex("a)", REGEX_SIZE_LIMIT).unwrap_err();
    let summary = regex_error_summary(&err);
    assert!(!summary.contains('\n'));
    assert!(summary.contains("unopened group"), "{summary}");
}

// --- CompiledRedirectUris --------------------------------------------------------------------

#[test]
fn compiled_list_agrees_with_find_match() {
    let oversized = format!("{}.*", "(?:)".repeat(MAX_URL_LEN / 4 + 1));
    let registered = vec![
        RedirectUri::regex("("),
        RedirectUri::regex("a{10000}{10000}"),
        RedirectUri::regex(r"https://app/cb)|(?:.*"),
        RedirectUri::regex(oversized),
        RedirectUri::strict("https://app/cb"),
        RedirectUri::strict("https://app/cb#x"),
        RedirectUri::strict("com.example.app:/cb"),
        RedirectUri::regex(r"https://[a-z]+\.example\.com/cb"),
        RedirectUri::regex(r"https://a/cb|https://b/cb"),
        RedirectUri::regex(".*"),
    ];
    let compiled = CompiledRedirectUris::new(&registered);
    assert!(compiled.entries().eq(registered.iter()));
    for candidate in [
        "https://app/cb",
        "https://APP/cb",
        "https://app/cb#x",
        "com.example.app:/cb",
        "https://x.example.com/cb",
        "https://x.example.com/cb.evil",
        "https://a/cb",
        "https://b/cb",
        "https://evil.com/",
        "javascript:alert(1)",
        "https://app/cb\r\n",
        "",
    ] {
        assert_eq!(
            compiled.find_match(candidate),
            find_match(&registered, candidate),
            "{candidate:?}"
        );
    }
    // `.*` at the end catches every acceptable candidate the others miss.
    assert_eq!(compiled.find_match("https://evil.com/").unwrap().url, ".*");
    assert_eq!(
        compiled.find_match("https://app/cb").unwrap().matching_mode,
        MatchingMode::Strict
    );
}

#[test]
fn compiled_list_is_linear_and_bounded_too() {
    let compiled = CompiledRedirectUris::new(&[
        RedirectUri::regex("https://app/(a+)+$"),
        RedirectUri::regex("a{10000}{10000}"),
    ]);
    let candidate = format!("https://app/{}!", "a".repeat(MAX_URL_LEN - 13));
    assert_eq!(
        assert_fast("compiled", || compiled.find_match(&candidate)),
        None
    );
    assert_eq!(
        CompiledRedirectUris::new(&[]).find_match("https://app/cb"),
        None
    );
}
