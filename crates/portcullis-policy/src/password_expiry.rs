//! authentik's password expiry policy: fails once `request.user`'s password is `days` days old.
//!
//! ```text
//!  request.user ──anonymous, or no password_change_date──> pass
//!       └─> age = now - password_change_date
//!             age <  days × 24 h ──> pass
//!             age >= days × 24 h ──> fail
//!                 deny_only:  "Password has expired."
//!                 otherwise:  "Password expired N days ago. Please update your password."
//!                             and the flow engine makes the password unusable (see below)
//! ```
//!
//! The boundary is authentik's: it compares whole days (`(now - changed).days >= days`), so a
//! password is expired from the instant it is exactly `days × 24 h` old and still passes one
//! second earlier. A change date in the future (clock skew) is never expired.
//!
//! authentik's policy calls `set_unusable_password()` itself when `deny_only` is false. Policies
//! here are pure (no store), so this one only answers: the flow engine, which knows the policy it
//! ran, makes the password unusable when `!deny_only && expired(req, now)`. It should take `now`
//! once and pass it to both [`PasswordExpiryPolicy::evaluate_at`] and
//! [`PasswordExpiryPolicy::expired`], so the two cannot disagree at the boundary.
//!
//! Two deliberate differences: the anonymous user passes (authentik raises on Django's
//! `AnonymousUser`, which has no change date), and `days: 0` is a configuration error rather than
//! "every password has expired".

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use portcullis_core::Clock;

use crate::Policy;
use crate::error::PolicyError;
use crate::request::{PolicyRequest, PolicyResult};

/// The message when `deny_only` is set (authentik's wording).
pub const EXPIRED_MESSAGE: &str = "Password has expired.";

/// authentik's `PasswordExpiryPolicy`.
#[derive(Debug, Clone)]
pub struct PasswordExpiryPolicy {
    /// Age in days from which a password has expired; at least 1.
    pub days: u32,
    /// Only deny; otherwise the flow engine also makes the expired password unusable.
    pub deny_only: bool,
    clock: Arc<dyn Clock>,
}

impl PasswordExpiryPolicy {
    /// authentik has no default for `days`; `deny_only` defaults to false there.
    pub fn new(days: u32, deny_only: bool, clock: Arc<dyn Clock>) -> Self {
        Self {
            days,
            deny_only,
            clock,
        }
    }

    /// How long ago the password expired, when it has: `None` for the anonymous user, a user
    /// without a change date, or a password younger than `days × 24 h`.
    fn overdue(&self, req: &PolicyRequest, now: DateTime<Utc>) -> Option<TimeDelta> {
        let user = &req.user;
        let changed = user
            .password_change_date
            .filter(|_| user.is_authenticated)?;
        let max_age = TimeDelta::try_days(i64::from(self.days))?;
        now.signed_duration_since(changed)
            .checked_sub(&max_age)
            .filter(|overdue| *overdue >= TimeDelta::zero())
    }

    /// Whether `request.user`'s password has expired at `now`: the user is authenticated, has a
    /// change date, and the password is at least `days × 24 h` old.
    pub fn expired(&self, req: &PolicyRequest, now: DateTime<Utc>) -> bool {
        self.overdue(req, now).is_some()
    }

    /// The answer at `now`.
    pub fn evaluate_at(
        &self,
        req: &PolicyRequest,
        now: DateTime<Utc>,
    ) -> Result<PolicyResult, PolicyError> {
        if self.days == 0 {
            return Err(PolicyError::Config("days must be at least 1".to_owned()));
        }
        let Some(overdue) = self.overdue(req, now) else {
            return Ok(PolicyResult::new(true));
        };
        if self.deny_only {
            return Ok(PolicyResult::with_message(false, EXPIRED_MESSAGE));
        }
        // Whole days since the password expired (authentik's `days_since_expiry`).
        Ok(PolicyResult::with_message(
            false,
            format!(
                "Password expired {} days ago. Please update your password.",
                overdue.num_days()
            ),
        ))
    }

    /// The answer now, by the policy's clock.
    pub fn evaluate(&self, req: &PolicyRequest) -> Result<PolicyResult, PolicyError> {
        self.evaluate_at(req, self.clock.now())
    }
}

#[async_trait]
impl Policy for PasswordExpiryPolicy {
    fn kind(&self) -> &'static str {
        "passwordexpirypolicy"
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

    use chrono::TimeZone;
    use portcullis_core::FixedClock;
    use serde_json::json;
    use uuid::Uuid;

    use super::*;
    use crate::request::PolicyUser;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
    }

    fn clock() -> Arc<FixedClock> {
        Arc::new(FixedClock::new(now()))
    }

    fn user_changed(at: Option<DateTime<Utc>>) -> PolicyRequest {
        let mut user = PolicyUser::anonymous();
        user.pk = 7;
        user.username = "alice".into();
        user.is_active = true;
        user.is_authenticated = true;
        user.password_change_date = at;
        PolicyRequest::new(user)
    }

    fn aged(age: TimeDelta) -> PolicyRequest {
        user_changed(Some(now() - age))
    }

    fn policy(days: u32, deny_only: bool) -> PasswordExpiryPolicy {
        PasswordExpiryPolicy::new(days, deny_only, clock())
    }

    #[test]
    fn boundary_is_exactly_days_old() {
        let p = policy(30, true);
        let days = TimeDelta::days(30);
        let second = TimeDelta::seconds(1);
        let young = p.evaluate(&aged(days - second)).unwrap();
        assert!(young.passing);
        assert!(young.messages.is_empty());
        for age in [days, days + second, TimeDelta::days(3650)] {
            let r = p.evaluate(&aged(age)).unwrap();
            assert!(!r.passing, "{age}");
            assert_eq!(r.messages, vec![EXPIRED_MESSAGE.to_owned()]);
            assert!(p.expired(&aged(age), now()));
        }
        assert!(!p.expired(&aged(days - second), now()));
    }

    #[test]
    fn deny_only_both_ways() {
        let req = aged(TimeDelta::days(33) + TimeDelta::hours(23));
        let deny = policy(30, true).evaluate(&req).unwrap();
        assert!(!deny.passing);
        assert_eq!(deny.messages, vec!["Password has expired.".to_owned()]);
        let invalidate = policy(30, false).evaluate(&req).unwrap();
        assert!(!invalidate.passing);
        assert_eq!(
            invalidate.messages,
            vec!["Password expired 3 days ago. Please update your password.".to_owned()]
        );
        // Both say the password has expired; only `deny_only` tells the flow engine to leave it.
        assert!(policy(30, true).expired(&req, now()));
        assert!(policy(30, false).expired(&req, now()));
        let just = policy(30, false)
            .evaluate(&aged(TimeDelta::days(30)))
            .unwrap();
        assert_eq!(
            just.messages,
            vec!["Password expired 0 days ago. Please update your password.".to_owned()]
        );
        assert!(
            policy(30, false)
                .evaluate(&aged(TimeDelta::days(29)))
                .unwrap()
                .passing
        );
    }

    #[test]
    fn anonymous_user_passes() {
        let req = PolicyRequest::new(PolicyUser::anonymous());
        for deny_only in [true, false] {
            let p = policy(1, deny_only);
            assert!(p.evaluate(&req).unwrap().passing);
            assert!(!p.expired(&req, now()));
        }
        // Even with a change date, an unauthenticated user has no password to expire.
        let mut odd = PolicyRequest::new(PolicyUser::anonymous());
        odd.user.password_change_date = Some(now() - TimeDelta::days(400));
        assert!(policy(1, false).evaluate(&odd).unwrap().passing);
    }

    #[test]
    fn missing_change_date_passes() {
        let req = user_changed(None);
        for deny_only in [true, false] {
            assert!(policy(1, deny_only).evaluate(&req).unwrap().passing);
        }
        assert!(!policy(1, false).expired(&req, now()));
    }

    #[test]
    fn future_change_date_is_not_expired() {
        let req = user_changed(Some(now() + TimeDelta::days(400)));
        assert!(policy(1, false).evaluate(&req).unwrap().passing);
    }

    #[test]
    fn extreme_values_never_panic() {
        let oldest = user_changed(Some(DateTime::<Utc>::MIN_UTC));
        let newest = user_changed(Some(DateTime::<Utc>::MAX_UTC));
        let p = policy(u32::MAX, false);
        assert!(p.evaluate(&newest).unwrap().passing);
        // u32::MAX days is more than eleven million years: even the oldest date is younger.
        assert!(p.evaluate(&oldest).unwrap().passing);
        let short = policy(1, false);
        assert!(!short.evaluate(&oldest).unwrap().passing);
        assert!(short.evaluate(&newest).unwrap().passing);
        // Across the whole representable range, both ways.
        let (min, max) = (DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC);
        assert!(short.evaluate_at(&oldest, min).unwrap().passing);
        assert!(!short.expired(&newest, min));
        assert!(short.evaluate_at(&newest, min).unwrap().passing);
        assert!(short.expired(&oldest, max));
        let r = short.evaluate_at(&oldest, max).unwrap();
        assert!(!r.passing);
        assert!(r.messages[0].starts_with("Password expired "), "{r:?}");
        assert!(
            !p.expired(&oldest, max),
            "u32::MAX days is longer than the range"
        );
    }

    #[test]
    fn zero_days_is_a_configuration_error() {
        let p = policy(0, true);
        assert!(matches!(
            p.evaluate(&aged(TimeDelta::days(1))),
            Err(PolicyError::Config(_))
        ));
        assert!(matches!(
            p.evaluate(&PolicyRequest::new(PolicyUser::anonymous())),
            Err(PolicyError::Config(_))
        ));
    }

    #[test]
    fn follows_the_clock() {
        let clock = clock();
        let p = PasswordExpiryPolicy::new(7, true, clock.clone());
        let req = aged(TimeDelta::days(6));
        assert!(p.evaluate(&req).unwrap().passing);
        clock.advance(TimeDelta::days(1) - TimeDelta::seconds(1));
        assert!(p.evaluate(&req).unwrap().passing);
        clock.advance(TimeDelta::seconds(1));
        assert!(!p.evaluate(&req).unwrap().passing);
    }

    #[tokio::test]
    async fn runs_as_a_policy() {
        let p = policy(30, true);
        assert_eq!(p.kind(), "passwordexpirypolicy");
        assert!(!p.passes(&aged(TimeDelta::days(31))).await.unwrap().passing);
        assert!(p.passes(&aged(TimeDelta::days(1))).await.unwrap().passing);
    }

    #[test]
    fn change_date_comes_from_a_user_with_a_password() {
        let changed = now() - TimeDelta::days(40);
        let mut stored = portcullis_core::User {
            pk: 3,
            uuid: Uuid::from_u128(3),
            username: "bob".into(),
            name: "Bob".into(),
            email: "bob@example.org".into(),
            is_active: true,
            last_login: None,
            date_joined: changed,
            password_change_date: changed,
            last_updated: changed,
            attributes: json!({}),
            path: "users".into(),
            user_type: portcullis_core::UserType::Internal,
            is_superuser: false,
            has_password: true,
        };
        let user = PolicyUser::from_user(&stored, &[]);
        assert_eq!(user.password_change_date, Some(changed));
        let p = policy(30, true);
        assert!(!p.evaluate(&PolicyRequest::new(user)).unwrap().passing);
        // Without a usable password (an SSO-only user) there is nothing to expire.
        stored.has_password = false;
        let user = PolicyUser::from_user(&stored, &[]);
        assert_eq!(user.password_change_date, None);
        assert!(p.evaluate(&PolicyRequest::new(user)).unwrap().passing);
    }
}
