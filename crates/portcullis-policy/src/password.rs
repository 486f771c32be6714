//! authentik's password policy: static rules (length and character classes), a breached-password
//! check, and Dropbox's zxcvbn strength estimate, in that order; the first failing check answers.
//!
//! authentik's breached-password check asks the Have I Been Pwned API. Portcullis makes no network
//! calls from policies, so `check_have_i_been_pwned` consults [`BreachedPasswords`] instead: by
//! default an embedded, hand-written list of ~200 notorious passwords (`data/breached-passwords.txt`),
//! replaceable by a larger list read from a file by the caller.
//!
//! One deliberate difference: authentik compares the uppercase count against `amount_lowercase`
//! (a bug); here `amount_uppercase` is compared against the number of uppercase letters.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use serde_json::Value;

use crate::Policy;
use crate::error::PolicyError;
use crate::request::{PolicyRequest, PolicyResult};

/// authentik's default `symbol_charset`.
pub const DEFAULT_SYMBOL_CHARSET: &str = "!\\\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ ";
/// The flow-context key prompt stages store their answers under (authentik's `PLAN_CONTEXT_PROMPT`).
pub const PLAN_CONTEXT_PROMPT: &str = "prompt_data";
/// zxcvbn only looks at this many characters (authentik: "with over 72 chars ... they'll surpass").
const ZXCVBN_MAX_CHARS: usize = 72;

static EMBEDDED: &str = include_str!("../data/breached-passwords.txt");
static EMBEDDED_LIST: LazyLock<Arc<BreachedPasswords>> =
    LazyLock::new(|| Arc::new(BreachedPasswords::from_lines(EMBEDDED)));

/// A set of known-breached passwords.
#[derive(Debug, Clone, Default)]
pub struct BreachedPasswords {
    passwords: HashSet<String>,
}

impl BreachedPasswords {
    /// The embedded list of notorious passwords.
    pub fn embedded() -> Arc<Self> {
        Arc::clone(&EMBEDDED_LIST)
    }

    /// One password a line; empty lines and lines starting with `#` are skipped.
    pub fn from_lines(text: &str) -> Self {
        let passwords = text
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
        Self { passwords }
    }

    pub fn len(&self) -> usize {
        self.passwords.len()
    }

    pub fn is_empty(&self) -> bool {
        self.passwords.is_empty()
    }

    /// Whether `password`, or its lower-case form (`Password1` is as guessable as `password1`),
    /// is on the list.
    pub fn contains(&self, password: &str) -> bool {
        self.passwords.contains(password) || self.passwords.contains(&password.to_lowercase())
    }
}

/// authentik's `PasswordPolicy`, with its field names and defaults.
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    /// Context key of the password, looked up in `prompt_data` first, then in the context itself.
    pub password_field: String,
    pub check_static_rules: bool,
    /// Checks [`BreachedPasswords`] (the embedded list unless replaced).
    pub check_have_i_been_pwned: bool,
    pub check_zxcvbn: bool,
    pub amount_digits: u32,
    pub amount_uppercase: u32,
    pub amount_lowercase: u32,
    pub amount_symbols: u32,
    pub length_min: u32,
    pub symbol_charset: String,
    pub error_message: String,
    /// A listed password counts as found once; it fails when that exceeds this count.
    pub hibp_allowed_count: u32,
    /// The policy fails when the zxcvbn score (0..=4) is equal to or less than this.
    pub zxcvbn_score_threshold: u8,
    pub breached: Arc<BreachedPasswords>,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            password_field: "password".to_owned(),
            check_static_rules: true,
            check_have_i_been_pwned: false,
            check_zxcvbn: false,
            amount_digits: 0,
            amount_uppercase: 0,
            amount_lowercase: 0,
            amount_symbols: 0,
            length_min: 0,
            symbol_charset: DEFAULT_SYMBOL_CHARSET.to_owned(),
            error_message: String::new(),
            hibp_allowed_count: 0,
            zxcvbn_score_threshold: 2,
            breached: BreachedPasswords::embedded(),
        }
    }
}

fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

impl PasswordPolicy {
    /// The password under test: `context["prompt_data"][field]`, else `context[field]`.
    fn password(&self, req: &PolicyRequest) -> Option<String> {
        req.context
            .get(PLAN_CONTEXT_PROMPT)
            .and_then(|p| p.get(&self.password_field))
            .or_else(|| req.context.get(&self.password_field))
            .and_then(as_text)
            .filter(|p| !p.is_empty())
    }

    fn fail(&self) -> PolicyResult {
        let message = if self.error_message.is_empty() {
            "Invalid password."
        } else {
            &self.error_message
        };
        PolicyResult::with_message(false, message)
    }

    /// Length and character classes. Classes are ASCII, as authentik's `[a-z]`/`[A-Z]`/`[0-9]`;
    /// the length counts characters, not bytes.
    pub fn passes_static(&self, password: &str) -> PolicyResult {
        let count = |f: fn(&char) -> bool| password.chars().filter(f).count();
        let too_few = |amount: u32, found: usize| amount > 0 && found < amount as usize;
        if password.chars().count() < self.length_min as usize
            || too_few(self.amount_digits, count(char::is_ascii_digit))
            || too_few(self.amount_lowercase, count(char::is_ascii_lowercase))
            || too_few(self.amount_uppercase, count(char::is_ascii_uppercase))
        {
            return self.fail();
        }
        if self.amount_symbols > 0 {
            let symbols: usize = self
                .symbol_charset
                .chars()
                .map(|s| password.chars().filter(|&c| c == s).count())
                .sum();
            if symbols < self.amount_symbols as usize {
                return self.fail();
            }
        }
        PolicyResult::new(true)
    }

    pub fn passes_breached(&self, password: &str) -> PolicyResult {
        let count = u32::from(self.breached.contains(password));
        if count > self.hibp_allowed_count {
            return PolicyResult::with_message(
                false,
                format!("Password exists on {count} online lists."),
            );
        }
        PolicyResult::new(true)
    }

    /// zxcvbn over the first 72 characters, with the user's names as hints.
    pub fn passes_zxcvbn(&self, password: &str, req: &PolicyRequest) -> PolicyResult {
        let cut: String = password.chars().take(ZXCVBN_MAX_CHARS).collect();
        let user = &req.user;
        let inputs: Vec<&str> = if user.is_authenticated {
            vec![&user.username, &user.name, &user.email]
        } else {
            Vec::new()
        };
        let entropy = zxcvbn::zxcvbn(&cut, &inputs);
        let score = u8::from(entropy.score());
        let mut result = PolicyResult::new(score > self.zxcvbn_score_threshold);
        if !result.passing {
            result.messages.push("Password is too weak.".to_owned());
            if let Some(feedback) = entropy.feedback() {
                if let Some(warning) = feedback.warning() {
                    result.messages.push(warning.to_string());
                }
                result
                    .messages
                    .extend(feedback.suggestions().iter().map(ToString::to_string));
            }
        }
        result
    }

    pub fn evaluate(&self, req: &PolicyRequest) -> PolicyResult {
        let Some(password) = self.password(req) else {
            return PolicyResult::with_message(false, "Password not set in context");
        };
        if self.check_static_rules {
            let r = self.passes_static(&password);
            if !r.passing {
                return r;
            }
        }
        if self.check_have_i_been_pwned {
            let r = self.passes_breached(&password);
            if !r.passing {
                return r;
            }
        }
        if self.check_zxcvbn {
            let r = self.passes_zxcvbn(&password, req);
            if !r.passing {
                return r;
            }
        }
        PolicyResult::new(true)
    }
}

#[async_trait]
impl Policy for PasswordPolicy {
    fn kind(&self) -> &'static str {
        "passwordpolicy"
    }

    async fn passes(&self, req: &PolicyRequest) -> Result<PolicyResult, PolicyError> {
        Ok(self.evaluate(req))
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]

    use serde_json::json;

    use super::*;
    use crate::request::PolicyUser;

    fn req(password: Value) -> PolicyRequest {
        let mut r = PolicyRequest::new(PolicyUser::anonymous());
        r.context
            .insert(PLAN_CONTEXT_PROMPT.into(), json!({ "password": password }));
        r
    }

    fn strict() -> PasswordPolicy {
        PasswordPolicy {
            length_min: 8,
            amount_digits: 1,
            amount_uppercase: 1,
            amount_lowercase: 1,
            amount_symbols: 1,
            error_message: "too simple".into(),
            ..PasswordPolicy::default()
        }
    }

    #[test]
    fn static_rules_each_fail_alone() {
        let p = strict();
        assert!(p.evaluate(&req(json!("Abcdef1!"))).passing);
        for bad in ["Abcde1!", "Abcdefg!", "abcdef1!", "ABCDEF1!", "Abcdef12"] {
            let r = p.evaluate(&req(json!(bad)));
            assert!(!r.passing, "{bad}");
            assert_eq!(r.messages, vec!["too simple".to_owned()]);
        }
    }

    #[test]
    fn uppercase_uses_its_own_amount() {
        let p = PasswordPolicy {
            amount_uppercase: 2,
            amount_lowercase: 0,
            ..Default::default()
        };
        assert!(!p.evaluate(&req(json!("Abc"))).passing);
        assert!(p.evaluate(&req(json!("ABc"))).passing);
    }

    #[test]
    fn unicode_counts_characters_and_ascii_classes() {
        let p = PasswordPolicy {
            length_min: 5,
            ..Default::default()
        };
        // Five characters, fifteen bytes: long enough.
        assert!(p.evaluate(&req(json!("éééàà"))).passing);
        assert!(!p.evaluate(&req(json!("éééà"))).passing);
        // Non-ASCII letters are not `[a-z]`, as in authentik.
        let lower = PasswordPolicy {
            amount_lowercase: 1,
            ..Default::default()
        };
        assert!(!lower.evaluate(&req(json!("ÉÀÜ123"))).passing);
        assert!(!lower.evaluate(&req(json!("éàü123"))).passing);
        assert!(lower.evaluate(&req(json!("éàü123x"))).passing);
        // Symbols count per character of the charset, even multi-byte ones.
        let sym = PasswordPolicy {
            amount_symbols: 2,
            symbol_charset: "€!".into(),
            ..Default::default()
        };
        assert!(sym.evaluate(&req(json!("a€b!"))).passing);
        assert!(!sym.evaluate(&req(json!("a€b"))).passing);
    }

    #[test]
    fn default_symbols_include_space_and_backslash() {
        let p = PasswordPolicy {
            amount_symbols: 2,
            ..Default::default()
        };
        assert!(p.evaluate(&req(json!("a b\\c"))).passing);
        assert!(!p.evaluate(&req(json!("abc d"))).passing);
    }

    #[test]
    fn missing_password_fails_with_authentiks_message() {
        let p = PasswordPolicy::default();
        let r = p.evaluate(&PolicyRequest::new(PolicyUser::anonymous()));
        assert!(!r.passing);
        assert_eq!(r.messages, vec!["Password not set in context".to_owned()]);
        assert!(!p.evaluate(&req(json!(""))).passing);
        assert!(!p.evaluate(&req(Value::Null)).passing);
    }

    #[test]
    fn password_can_come_from_the_context_itself() {
        let p = PasswordPolicy {
            password_field: "new_password".into(),
            ..Default::default()
        };
        let mut r = PolicyRequest::new(PolicyUser::anonymous());
        r.context.insert("new_password".into(), json!("x"));
        assert!(p.evaluate(&r).passing);
    }

    #[test]
    fn empty_error_message_has_a_default() {
        let p = PasswordPolicy {
            length_min: 10,
            ..Default::default()
        };
        assert_eq!(
            p.evaluate(&req(json!("short"))).messages,
            vec!["Invalid password.".to_owned()]
        );
    }

    #[test]
    fn breached_list_embedded_and_from_file() {
        let list = BreachedPasswords::embedded();
        assert!(list.len() >= 200, "{}", list.len());
        assert!(list.contains("123456") && list.contains("Password1") && list.contains("qwerty"));
        assert!(!list.contains("# Portcullis' embedded list"));
        let p = PasswordPolicy {
            check_have_i_been_pwned: true,
            ..Default::default()
        };
        let r = p.evaluate(&req(json!("password1")));
        assert!(!r.passing);
        assert_eq!(
            r.messages,
            vec!["Password exists on 1 online lists.".to_owned()]
        );
        assert!(
            p.evaluate(&req(json!("correct horse battery staple")))
                .passing
        );
        let custom = PasswordPolicy {
            check_have_i_been_pwned: true,
            breached: Arc::new(BreachedPasswords::from_lines("hunter3\r\n\n# c\n")),
            ..Default::default()
        };
        assert!(!custom.evaluate(&req(json!("hunter3"))).passing);
        assert!(custom.evaluate(&req(json!("123456"))).passing);
        let allowed = PasswordPolicy {
            hibp_allowed_count: 1,
            ..p
        };
        assert!(allowed.evaluate(&req(json!("password1"))).passing);
    }

    #[test]
    fn zxcvbn_threshold_is_exclusive() {
        let p = PasswordPolicy {
            check_zxcvbn: true,
            zxcvbn_score_threshold: 2,
            ..Default::default()
        };
        let weak = p.evaluate(&req(json!("password")));
        assert!(!weak.passing);
        assert_eq!(
            weak.messages.first().map(String::as_str),
            Some("Password is too weak.")
        );
        assert!(p.evaluate(&req(json!("x7#Qe9!vLm2$Tz4&uR"))).passing);
        // Score 4 passes threshold 3 but nothing passes threshold 4.
        let max = PasswordPolicy {
            zxcvbn_score_threshold: 4,
            ..p.clone()
        };
        assert!(!max.evaluate(&req(json!("x7#Qe9!vLm2$Tz4&uR"))).passing);
    }

    #[test]
    fn zxcvbn_uses_the_users_names() {
        let p = PasswordPolicy {
            check_zxcvbn: true,
            zxcvbn_score_threshold: 2,
            ..Default::default()
        };
        let mut user = PolicyUser::anonymous();
        user.is_authenticated = true;
        user.username = "quintessentialzebra".into();
        let mut r = req(json!("quintessentialzebra"));
        let anonymous = p.evaluate(&r).passing;
        r.user = user;
        assert!(anonymous, "a long unusual word passes without hints");
        assert!(!p.evaluate(&r).passing, "the user's own name is guessable");
    }
}
