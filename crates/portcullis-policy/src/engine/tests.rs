#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use uuid::Uuid;

use super::*;
use crate::dummy::SleepFuture;
use crate::dummy::tests::InstantSleeper;
use crate::expression::ExpressionPolicy;
use crate::request::{GroupRef, PolicyUser};

/// A policy that counts its runs and answers a fixed result.
struct Counting {
    result: Result<PolicyResult, PolicyError>,
    calls: AtomicUsize,
}

impl Counting {
    fn new(result: Result<PolicyResult, PolicyError>) -> Arc<Self> {
        Arc::new(Self {
            result,
            calls: AtomicUsize::new(0),
        })
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Policy for Counting {
    fn kind(&self) -> &'static str {
        "counting"
    }
    async fn passes(&self, _req: &PolicyRequest) -> Result<PolicyResult, PolicyError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.result.clone()
    }
}

/// Never answers.
struct Hang;

#[async_trait]
impl Policy for Hang {
    fn kind(&self) -> &'static str {
        "hang"
    }
    async fn passes(&self, _req: &PolicyRequest) -> Result<PolicyResult, PolicyError> {
        std::future::pending().await
    }
}

/// A timer that never fires.
struct Never;

impl Sleeper for Never {
    fn sleep(&self, _: Duration) -> SleepFuture {
        Box::pin(std::future::pending())
    }
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn bind(n: u128, policy: Arc<dyn Policy>) -> PolicyBinding {
    PolicyBinding::new(
        id(n),
        BindingTarget::Policy {
            pk: id(100 + n),
            policy,
        },
        n as i32,
    )
}

fn pass(msg: &str) -> Arc<Counting> {
    Counting::new(Ok(PolicyResult::with_message(true, msg)))
}

fn fail(msg: &str) -> Arc<Counting> {
    Counting::new(Ok(PolicyResult::with_message(false, msg)))
}

fn req() -> PolicyRequest {
    let mut user = PolicyUser::anonymous();
    user.pk = 5;
    user.is_authenticated = true;
    user.groups = vec![GroupRef {
        pk: id(900),
        name: "admins".into(),
    }];
    PolicyRequest::new(user)
}

async fn eval(mode: PolicyEngineMode, bindings: &[PolicyBinding]) -> EngineResult {
    PolicyEngine::new(mode)
        .evaluate(bindings, &req(), &PolicyCache::new())
        .await
}

#[tokio::test]
async fn empty_binding_list_passes() {
    assert!(eval(PolicyEngineMode::All, &[]).await.passing);
    assert!(eval(PolicyEngineMode::Any, &[]).await.passing);
    let mut disabled = bind(1, fail("no"));
    disabled.enabled = false;
    let r = eval(PolicyEngineMode::All, &[disabled]).await;
    assert!(r.passing && r.outcomes.is_empty());
}

#[tokio::test]
async fn all_and_any_modes() {
    let b = [bind(1, pass("a")), bind(2, fail("b"))];
    let all = eval(PolicyEngineMode::All, &b).await;
    assert!(!all.passing);
    assert_eq!(all.messages, vec!["a".to_owned(), "b".to_owned()]);
    assert!(eval(PolicyEngineMode::Any, &b).await.passing);
    assert!(
        eval(
            PolicyEngineMode::All,
            &[bind(1, pass("a")), bind(2, pass("b"))]
        )
        .await
        .passing
    );
    assert!(
        !eval(
            PolicyEngineMode::Any,
            &[bind(1, fail("a")), bind(2, fail("b"))]
        )
        .await
        .passing
    );
}

#[tokio::test]
async fn bindings_run_in_order() {
    let b = [
        bind(3, pass("third")),
        bind(1, pass("first")),
        bind(2, pass("second")),
    ];
    let r = eval(PolicyEngineMode::All, &b).await;
    assert_eq!(
        r.messages,
        vec!["first".to_owned(), "second".to_owned(), "third".to_owned()]
    );
}

#[tokio::test]
async fn negate_inverts_results_but_not_messages() {
    let mut b = bind(1, fail("kept"));
    b.negate = true;
    let r = eval(PolicyEngineMode::All, &[b]).await;
    assert!(r.passing);
    assert_eq!(r.messages, vec!["kept".to_owned()]);
}

#[tokio::test]
async fn errors_use_failure_result_unnegated() {
    let broken = Counting::new(Err(PolicyError::Runtime {
        line: Some(1),
        message: "boom".into(),
    }));
    for (failure_result, negate) in [(false, false), (true, false), (false, true), (true, true)] {
        let mut b = bind(1, broken.clone());
        b.failure_result = failure_result;
        b.negate = negate;
        let r = eval(PolicyEngineMode::All, &[b]).await;
        assert_eq!(
            r.passing, failure_result,
            "failure_result={failure_result} negate={negate}"
        );
        assert_eq!(r.errors().count(), 1);
        assert!(r.messages.first().is_some_and(|m| m.contains("boom")));
    }
}

#[tokio::test]
async fn expression_over_budget_gives_failure_result() {
    let looping: Arc<dyn Policy> = Arc::new(ExpressionPolicy::new(
        "loop",
        "for i in range(100000000):\n    pass\nreturn True",
    ));
    let mut b = bind(1, looping);
    b.failure_result = true;
    let r = eval(PolicyEngineMode::All, &[b]).await;
    assert!(r.passing);
    let (_, error) = r.errors().next().unwrap();
    assert!(error.is_budget_exceeded(), "{error:?}");
}

#[tokio::test]
async fn group_and_user_targets() {
    let group = |pk| PolicyBinding::new(id(1), BindingTarget::Group { pk }, 0);
    let user = |pk| PolicyBinding::new(id(2), BindingTarget::User { pk }, 0);
    assert!(eval(PolicyEngineMode::All, &[group(id(900))]).await.passing);
    assert!(!eval(PolicyEngineMode::All, &[group(id(901))]).await.passing);
    assert!(eval(PolicyEngineMode::All, &[user(5)]).await.passing);
    assert!(!eval(PolicyEngineMode::All, &[user(6)]).await.passing);
    let mut negated = group(id(900));
    negated.negate = true;
    assert!(!eval(PolicyEngineMode::All, &[negated]).await.passing);
    // The anonymous user (pk -1) is never "that user".
    let anon = PolicyEngine::new(PolicyEngineMode::All)
        .evaluate(
            &[user(-1)],
            &PolicyRequest::new(PolicyUser::anonymous()),
            &PolicyCache::new(),
        )
        .await;
    assert!(!anon.passing);
}

#[tokio::test]
async fn results_are_cached_per_request_by_policy() {
    let counted = pass("once");
    let policy: Arc<dyn Policy> = counted.clone();
    let shared_pk = id(555);
    let b1 = PolicyBinding::new(
        id(1),
        BindingTarget::Policy {
            pk: shared_pk,
            policy: policy.clone(),
        },
        1,
    );
    let mut b2 = PolicyBinding::new(
        id(2),
        BindingTarget::Policy {
            pk: shared_pk,
            policy,
        },
        2,
    );
    b2.negate = true;
    let engine = PolicyEngine::new(PolicyEngineMode::Any);
    let cache = PolicyCache::new();
    let r = engine
        .evaluate(&[b1.clone(), b2.clone()], &req(), &cache)
        .await;
    assert_eq!(counted.calls(), 1);
    assert!(r.outcomes.first().is_some_and(|o| o.passing && !o.cached));
    assert!(r.outcomes.get(1).is_some_and(|o| !o.passing && o.cached));
    // A later check in the same request reuses the memo...
    engine
        .evaluate(std::slice::from_ref(&b1), &req(), &cache)
        .await;
    assert_eq!(counted.calls(), 1);
    assert_eq!(cache.len(), 1);
    // ...and a new request runs it again.
    engine.evaluate(&[b1], &req(), &PolicyCache::new()).await;
    assert_eq!(counted.calls(), 2);
}

#[tokio::test]
async fn errors_are_cached_and_reported_once() {
    let broken = Counting::new(Err(PolicyError::Config("bad".into())));
    let policy: Arc<dyn Policy> = broken.clone();
    let b1 = PolicyBinding::new(
        id(1),
        BindingTarget::Policy {
            pk: id(9),
            policy: policy.clone(),
        },
        1,
    );
    let b2 = PolicyBinding::new(id(2), BindingTarget::Policy { pk: id(9), policy }, 2);
    let r = eval(PolicyEngineMode::All, &[b1, b2]).await;
    assert_eq!(broken.calls(), 1);
    assert_eq!(r.errors().count(), 1);
}

#[tokio::test]
async fn timeout_uses_failure_result() {
    let engine =
        PolicyEngine::new(PolicyEngineMode::All).with_timer(Arc::new(InstantSleeper::default()));
    let mut b = bind(1, Arc::new(Hang));
    b.timeout = Duration::from_secs(3);
    b.failure_result = true;
    let r = engine
        .evaluate(&[b.clone()], &req(), &PolicyCache::new())
        .await;
    assert!(r.passing);
    assert!(
        matches!(r.outcomes.first().and_then(|o| o.error.clone()), Some(PolicyError::Timeout(d)) if d == Duration::from_secs(3))
    );
    // A policy that answers at once wins over a timer that is already due.
    let quick = engine
        .evaluate(&[bind(2, fail("fast"))], &req(), &PolicyCache::new())
        .await;
    assert!(!quick.passing && quick.errors().count() == 0);
    // Without expiry, the answer comes through.
    let patient = PolicyEngine::new(PolicyEngineMode::All).with_timer(Arc::new(Never));
    assert!(
        patient
            .evaluate(&[bind(3, pass("ok"))], &req(), &PolicyCache::new())
            .await
            .passing
    );
}

#[tokio::test]
async fn dummy_policy_through_the_engine() {
    let sleeper = Arc::new(InstantSleeper::default());
    let dummy: Arc<dyn Policy> = Arc::new(crate::DummyPolicy::new(true, 5, 30, sleeper.clone()));
    let r = eval(PolicyEngineMode::All, &[bind(1, dummy)]).await;
    assert!(r.passing);
    assert_eq!(sleeper.0.lock().unwrap().len(), 1);
}
