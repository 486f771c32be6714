//! Registered redirect URIs and the one function that decides whether a client's `redirect_uri`
//! is one of them.
//!
//! A provider registers a list of entries, each with authentik's JSON shape
//! `{"matching_mode": "strict" | "regex", "url": "..."}`. [`find_match`] (and
//! [`CompiledRedirectUris`], its precompiled twin) guarantees:
//! - **strict** entries match by byte-exact string equality (RFC 6749 §3.1.2.3 "simple string
//!   comparison"; RFC 9700 §2.1 and §4.1.3 and OAuth 2.1 require exact matching): no
//!   normalisation, no case folding, no prefix matching, so `https://app/cb` matches neither
//!   `https://APP/cb`, `https://app/cb/`, `https://app/cb.evil.com` nor `https://app/cb/../x`;
//! - **regex** entries must match the *whole* candidate, like Python's `re.fullmatch` in
//!   authentik. The pattern's syntax is checked on its own first (so it cannot close the
//!   anchoring group and escape it), then it is compiled as `\A(?:pattern)\z` by the `regex`
//!   crate (linear time in the input, no backtracking, so `(a+)+$` cannot hang) with a
//!   compiled-size and a nesting limit; a pattern that is invalid, unsupported (look-around,
//!   back-references) or over a limit never matches;
//! - a candidate that is not an acceptable redirect URI never matches any entry, whatever the
//!   entries say: empty, over [`MAX_URL_LEN`] bytes, anything outside printable ASCII
//!   (whitespace, CR/LF, NUL, other controls, non-ASCII look-alikes: RFC 3986 URIs are ASCII),
//!   a fragment (RFC 6749 §3.1.2), no scheme (RFC 6749 §3.1.2 wants an absolute URI), the
//!   `javascript:`, `data:` or `vbscript:` schemes (as authentik refuses), or `http(s)` without a
//!   host or with user information (`https://app@evil/`).
//!
//! [`validate`] is the admin API's check of a list before it is saved: the same rules for strict
//! entries (custom schemes such as `com.example.app:/cb` stay allowed for native apps,
//! RFC 8252 §7.1), and for regex entries the character rules plus "compiles within the limits".
//! Loopback redirects with a variable port (RFC 8252 §7.3) need a regex entry.

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

/// The longest redirect URI or pattern accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// The most redirect URI entries one provider may register.
pub const MAX_REDIRECT_URIS: usize = 100;

/// The largest compiled program a regex entry may produce, in bytes. Typical redirect URI
/// patterns need a few kilobytes; each Unicode class such as `\w` adds about 50 KB, so some
/// twenty of them fit. `a{10000}{10000}` would need gigabytes and is refused while compiling,
/// before it allocates.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The cache of the lazy DFA that runs a regex entry, in bytes.
const REGEX_DFA_SIZE_LIMIT: usize = 1 << 20;

/// The deepest nesting of groups and repetitions in a regex entry.
const REGEX_NEST_LIMIT: u32 = 64;

/// Schemes a redirect URI may never have: they would run code in the browser (authentik's
/// `FORBIDDEN_URI_SCHEMES`). Compared case-insensitively.
const FORBIDDEN_SCHEMES: [&str; 3] = ["javascript", "data", "vbscript"];

/// How a registered entry is compared with a client's `redirect_uri`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchingMode {
    /// Byte-exact string equality.
    Strict,
    /// The whole candidate must match the entry's regular expression.
    Regex,
}

/// What a registered entry is for (authentik's `RedirectURIType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedirectUriType {
    /// A `redirect_uri` of the authorization endpoint.
    #[default]
    Authorization,
    /// A `post_logout_redirect_uri` of the end-session endpoint.
    Logout,
}

impl RedirectUriType {
    pub fn as_str(self) -> &'static str {
        match self {
            RedirectUriType::Authorization => "authorization",
            RedirectUriType::Logout => "logout",
        }
    }
}

/// One registered redirect URI entry, serialised as authentik's
/// `{"matching_mode": "strict", "url": "https://app/cb", "redirect_uri_type": "authorization"}`
/// (the type defaults to `authorization`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RedirectUri {
    /// How `url` is compared.
    pub matching_mode: MatchingMode,
    /// The URI itself (strict) or a regular expression (regex).
    pub url: String,
    /// What the entry is for; callers match against the entries of one type.
    #[serde(default)]
    pub redirect_uri_type: RedirectUriType,
}

impl RedirectUri {
    /// A strict entry.
    #[must_use]
    pub fn strict(url: impl Into<String>) -> Self {
        RedirectUri {
            matching_mode: MatchingMode::Strict,
            url: url.into(),
            redirect_uri_type: RedirectUriType::Authorization,
        }
    }

    /// A regex entry.
    #[must_use]
    pub fn regex(pattern: impl Into<String>) -> Self {
        RedirectUri {
            matching_mode: MatchingMode::Regex,
            url: pattern.into(),
            redirect_uri_type: RedirectUriType::Authorization,
        }
    }

    /// Whether `candidate` matches this entry, by the rules of the module documentation.
    #[must_use]
    pub fn matches(&self, candidate: &str) -> bool {
        check_uri(candidate).is_ok() && self.matches_acceptable(candidate)
    }

    /// [`RedirectUri::matches`] for a candidate already known to pass [`check_uri`].
    fn matches_acceptable(&self, candidate: &str) -> bool {
        match self.matching_mode {
            MatchingMode::Strict => self.url == candidate,
            MatchingMode::Regex => {
                self.url.len() <= MAX_URL_LEN && regex_full_match(&self.url, candidate)
            }
        }
    }
}

/// The first registered entry that `candidate` matches, or `None`.
///
/// Entries are tried in order; regex entries are compiled on each call, up to the first match
/// (at most [`MAX_REDIRECT_URIS`] of at most [`MAX_URL_LEN`] bytes each, so the work is bounded).
/// A caller that matches often against the same list keeps a [`CompiledRedirectUris`] instead.
#[must_use]
pub fn find_match<'a>(registered: &'a [RedirectUri], candidate: &str) -> Option<&'a RedirectUri> {
    if check_uri(candidate).is_err() {
        return None;
    }
    registered
        .iter()
        .find(|entry| entry.matches_acceptable(candidate))
}

/// A list of entries with their regular expressions compiled once, for callers that match many
/// candidates against the same list (the authorization endpoint can cache one per provider).
/// It matches exactly as [`find_match`] does.
#[derive(Debug, Clone)]
pub struct CompiledRedirectUris {
    entries: Vec<(RedirectUri, Matcher)>,
}

/// How one compiled entry decides.
#[derive(Debug, Clone)]
enum Matcher {
    Strict,
    Regex(Regex),
    /// A regex entry that is too long, invalid or over a limit.
    Never,
}

impl CompiledRedirectUris {
    /// Compiles every regex entry of `registered`; the bad ones will never match.
    #[must_use]
    pub fn new(registered: &[RedirectUri]) -> Self {
        let entries = registered
            .iter()
            .map(|entry| {
                let matcher = match entry.matching_mode {
                    MatchingMode::Strict => Matcher::Strict,
                    MatchingMode::Regex if entry.url.len() > MAX_URL_LEN => Matcher::Never,
                    MatchingMode::Regex => {
                        compile_anchored(&entry.url).map_or(Matcher::Never, Matcher::Regex)
                    }
                };
                (entry.clone(), matcher)
            })
            .collect();
        CompiledRedirectUris { entries }
    }

    /// The first entry that `candidate` matches, or `None`; the same answer as [`find_match`].
    #[must_use]
    pub fn find_match(&self, candidate: &str) -> Option<&RedirectUri> {
        if check_uri(candidate).is_err() {
            return None;
        }
        self.entries
            .iter()
            .find(|(entry, matcher)| match matcher {
                Matcher::Strict => entry.url == candidate,
                Matcher::Regex(regex) => regex.is_match(candidate),
                Matcher::Never => false,
            })
            .map(|(entry, _)| entry)
    }

    /// The entries, in order.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = &RedirectUri> + '_ {
        self.entries.iter().map(|(entry, _)| entry)
    }
}

/// Checks a list of entries before it is saved (the admin API, blueprints).
///
/// At most [`MAX_REDIRECT_URIS`] entries. Strict entries must be acceptable redirect URIs (see
/// the module documentation). Regex entries must be non-empty, at most [`MAX_URL_LEN`] bytes of
/// printable ASCII, and compile within the limits; a `#` is allowed in a pattern (`[^#]*` is a
/// sensible thing to write), since a candidate with a fragment never matches anyway. An empty
/// list is valid (a client that only uses `client_credentials` needs none).
///
/// The error names the first bad entry, counting from 1.
pub fn validate(list: &[RedirectUri]) -> Result<(), String> {
    if list.len() > MAX_REDIRECT_URIS {
        return Err(format!(
            "at most {MAX_REDIRECT_URIS} redirect URIs may be registered, not {}",
            list.len()
        ));
    }
    for (index, entry) in list.iter().enumerate() {
        let problem = match entry.matching_mode {
            MatchingMode::Strict => check_uri(&entry.url).map_err(str::to_owned),
            MatchingMode::Regex => check_pattern(&entry.url),
        };
        if let Err(problem) = problem {
            return Err(format!(
                "redirect URI {}: {problem}",
                index.saturating_add(1)
            ));
        }
    }
    Ok(())
}

/// Whether `url` is an acceptable redirect URI; the error says why not, in words fit for an
/// admin.
fn check_uri(url: &str) -> Result<(), &'static str> {
    check_length_and_characters(url)?;
    if url.contains('#') {
        return Err("must not contain a fragment ('#'), RFC 6749 section 3.1.2");
    }
    const NOT_ABSOLUTE: &str = "must be an absolute URI with a scheme, such as \
         https://app.example.com/callback or com.example.app:/callback";
    let Some((scheme, rest)) = url.split_once(':') else {
        return Err(NOT_ABSOLUTE);
    };
    if !is_scheme(scheme) || rest.is_empty() {
        return Err(NOT_ABSOLUTE);
    }
    if FORBIDDEN_SCHEMES
        .iter()
        .any(|forbidden| scheme.eq_ignore_ascii_case(forbidden))
    {
        return Err("must not use the javascript:, data: or vbscript: scheme");
    }
    if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
        let authority = rest
            .strip_prefix("//")
            .map(|after| after.split(['/', '?']).next().unwrap_or(""))
            .unwrap_or("");
        if authority.is_empty() || authority.starts_with(':') {
            return Err("an http or https URI must name a host, as in https://app.example.com/");
        }
        if authority.contains('@') {
            return Err("must not contain user information ('user@' before the host)");
        }
    }
    Ok(())
}

/// Whether `pattern` is an acceptable regex entry.
fn check_pattern(pattern: &str) -> Result<(), String> {
    check_length_and_characters(pattern).map_err(str::to_owned)?;
    compile_anchored(pattern)
        .map(|_| ())
        .map_err(|err| match err {
            regex::Error::CompiledTooBig(limit) => format!(
                "the regular expression is too large once compiled (the limit is {limit} bytes)"
            ),
            other => format!(
                "is not a regular expression this server supports ({})",
                regex_error_summary(&other)
            ),
        })
}

/// Shared by URIs and patterns: non-empty, bounded, printable ASCII only.
fn check_length_and_characters(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("must not be empty");
    }
    if value.len() > MAX_URL_LEN {
        return Err("must be at most 2048 bytes long");
    }
    for byte in value.bytes() {
        if byte.is_ascii_whitespace() || byte.is_ascii_control() {
            return Err("must not contain whitespace or control characters");
        }
        if !byte.is_ascii() {
            return Err("must be ASCII: percent-encode other characters (RFC 3986 section 2.1)");
        }
    }
    Ok(())
}

/// RFC 3986 §3.1: `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_scheme(scheme: &str) -> bool {
    let mut bytes = scheme.bytes();
    bytes
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// Whether the whole of `candidate` matches `pattern`; false when the pattern does not compile
/// within the limits.
fn regex_full_match(pattern: &str, candidate: &str) -> bool {
    compile_anchored(pattern).is_ok_and(|regex| regex.is_match(candidate))
}

/// Compiles `pattern` anchored at both ends of the input.
///
/// The pattern's syntax is checked alone first: a pattern that is not a whole regex by itself,
/// such as `x)|(?:.*`, would otherwise close `(?:` early and leave an unanchored branch behind.
/// That check only parses: with a size limit of zero, compilation stops at its first state, so a
/// well-formed pattern fails there with `CompiledTooBig` and a malformed one earlier with a
/// syntax error.
fn compile_anchored(pattern: &str) -> Result<Regex, regex::Error> {
    match build_regex(pattern, 0) {
        Ok(_) | Err(regex::Error::CompiledTooBig(_)) => {}
        Err(syntax) => return Err(syntax),
    }
    build_regex(&format!(r"\A(?:{pattern})\z"), REGEX_SIZE_LIMIT)
}

fn build_regex(pattern: &str, size_limit: usize) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .size_limit(size_limit)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .nest_limit(REGEX_NEST_LIMIT)
        .build()
}

/// The one line of a `regex` error that says what is wrong (its messages draw the pattern with a
/// caret over several lines).
fn regex_error_summary(err: &regex::Error) -> String {
    let message = err.to_string();
    message
        .lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix("error: "))
        .unwrap_or_else(|| message.lines().next().unwrap_or("invalid"))
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests;
