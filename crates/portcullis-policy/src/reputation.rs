//! authentik's reputation policy: scores kept per (username, client IP), lowered on failed logins
//! and raised on successful ones; the policy passes when the summed score is at or below the
//! threshold (authentik's semantics: it *detects* a bad reputation, so it is usually bound with
//! `negate` or used to add a captcha stage). The scores live in the store; this module holds the
//! pure rules and the trait the store implements.

use std::sync::Arc;

use async_trait::async_trait;

use crate::Policy;
use crate::error::PolicyError;
use crate::request::{PolicyRequest, PolicyResult};

/// Score change recorded on `login_failed` (and on an unknown identifier).
pub const LOGIN_FAILED_DELTA: i64 = -1;
/// Score change recorded on a successful `login`.
pub const LOGIN_DELTA: i64 = 1;

/// One stored score (authentik's `Reputation` row, unique per identifier and IP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReputationRecord {
    pub identifier: String,
    pub ip: String,
    pub score: i64,
}

/// The reputation scores, as the store keeps them.
pub trait ReputationScores: Send + Sync {
    /// Sum of the scores of every record whose IP is `ip` or whose identifier is `identifier`
    /// (either may be `None`, meaning "not part of the query"; both `None` sums every record,
    /// as authentik's empty `Q()` does).
    fn total_score(&self, ip: Option<&str>, identifier: Option<&str>) -> Result<i64, String>;
}

/// The pure sum over records, for in-memory stores and tests.
pub fn total_score(
    records: &[ReputationRecord],
    ip: Option<&str>,
    identifier: Option<&str>,
) -> i64 {
    records
        .iter()
        .filter(|r| {
            (ip.is_none() && identifier.is_none())
                || ip == Some(r.ip.as_str())
                || identifier == Some(r.identifier.as_str())
        })
        .map(|r| r.score)
        .sum()
}

impl ReputationScores for Vec<ReputationRecord> {
    fn total_score(&self, ip: Option<&str>, identifier: Option<&str>) -> Result<i64, String> {
        Ok(total_score(self, ip, identifier))
    }
}

/// authentik's `ReputationPolicy`.
#[derive(Clone)]
pub struct ReputationPolicy {
    pub check_ip: bool,
    pub check_username: bool,
    /// authentik's default is -5.
    pub threshold: i64,
    scores: Arc<dyn ReputationScores>,
}

impl std::fmt::Debug for ReputationPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReputationPolicy")
            .field("check_ip", &self.check_ip)
            .field("check_username", &self.check_username)
            .field("threshold", &self.threshold)
            .finish_non_exhaustive()
    }
}

impl ReputationPolicy {
    pub fn new(scores: Arc<dyn ReputationScores>) -> Self {
        Self {
            check_ip: true,
            check_username: true,
            threshold: -5,
            scores,
        }
    }

    /// Passing means "the reputation is this bad or worse": `score <= threshold`.
    pub fn is_passing(&self, score: i64) -> bool {
        score <= self.threshold
    }

    pub fn evaluate(&self, req: &PolicyRequest) -> Result<PolicyResult, PolicyError> {
        let ip = self.check_ip.then(|| req.client_ip());
        let username = self.check_username.then_some(req.user.username.as_str());
        let score = self
            .scores
            .total_score(ip, username)
            .map_err(PolicyError::Lookup)?;
        let mut result = PolicyResult::new(self.is_passing(score));
        result.log.push(format!(
            "debug: Score for user score={score} passing={}",
            result.passing
        ));
        Ok(result)
    }
}

#[async_trait]
impl Policy for ReputationPolicy {
    fn kind(&self) -> &'static str {
        "reputationpolicy"
    }

    async fn passes(&self, req: &PolicyRequest) -> Result<PolicyResult, PolicyError> {
        self.evaluate(req)
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

    use super::*;
    use crate::request::{HttpRequestInfo, PolicyUser};

    fn rec(identifier: &str, ip: &str, score: i64) -> ReputationRecord {
        ReputationRecord {
            identifier: identifier.into(),
            ip: ip.into(),
            score,
        }
    }

    fn req(username: &str, ip: &str) -> PolicyRequest {
        let mut user = PolicyUser::anonymous();
        user.username = username.into();
        let mut r = PolicyRequest::new(user);
        r.http_request = Some(HttpRequestInfo {
            client_ip: Some(ip.into()),
            ..Default::default()
        });
        r
    }

    fn records() -> Arc<Vec<ReputationRecord>> {
        Arc::new(vec![
            rec("alice", "10.0.0.1", -4),
            rec("alice", "10.0.0.2", -2),
            rec("bob", "10.0.0.1", -3),
            rec("carol", "10.0.0.9", 7),
        ])
    }

    #[test]
    fn sums_ip_or_username() {
        let r = records();
        assert_eq!(total_score(&r, Some("10.0.0.1"), Some("alice")), -9);
        assert_eq!(total_score(&r, Some("10.0.0.1"), None), -7);
        assert_eq!(total_score(&r, None, Some("alice")), -6);
        assert_eq!(total_score(&r, None, None), -2);
        assert_eq!(total_score(&r, Some("192.0.2.1"), Some("dave")), 0);
    }

    #[test]
    fn passes_at_or_below_threshold() {
        let p = ReputationPolicy::new(records());
        assert!(p.evaluate(&req("alice", "10.0.0.1")).unwrap().passing); // -9
        assert!(!p.evaluate(&req("dave", "192.0.2.1")).unwrap().passing); // 0
        let ip_only = ReputationPolicy {
            check_username: false,
            ..p.clone()
        };
        assert!(ip_only.evaluate(&req("alice", "10.0.0.1")).unwrap().passing); // -7
        let user_only = ReputationPolicy {
            check_ip: false,
            ..p.clone()
        };
        assert!(
            user_only
                .evaluate(&req("alice", "10.0.0.1"))
                .unwrap()
                .passing
        ); // -6
        let exact = ReputationPolicy {
            threshold: -6,
            ..user_only
        };
        assert!(exact.is_passing(-6) && !exact.is_passing(-5));
    }

    #[test]
    fn lookup_failure_is_an_error() {
        struct Down;
        impl ReputationScores for Down {
            fn total_score(&self, _: Option<&str>, _: Option<&str>) -> Result<i64, String> {
                Err("database unavailable".into())
            }
        }
        let p = ReputationPolicy::new(Arc::new(Down));
        assert!(matches!(
            p.evaluate(&req("a", "1.2.3.4")),
            Err(PolicyError::Lookup(_))
        ));
    }
}
