//! authentik's dummy policy: a fixed result after a random wait, for exercising the engine
//! (timeouts, concurrency). The wait goes through a [`Sleeper`] so tests never really sleep.

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use async_trait::async_trait;

use crate::Policy;
use crate::error::PolicyError;
use crate::request::{PolicyRequest, PolicyResult};

/// A future that completes after a while.
pub type SleepFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Waiting, made injectable: the dummy policy and the engine's binding timeouts sleep through it.
pub trait Sleeper: Send + Sync {
    fn sleep(&self, duration: Duration) -> SleepFuture;
}

/// A runtime-agnostic sleeper: one short-lived OS thread per sleep wakes the future. Fine for the
/// debug-only dummy policy; a server passes a sleeper backed by its async runtime's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadSleeper;

#[derive(Default)]
struct SleepState {
    done: bool,
    waker: Option<Waker>,
}

struct ThreadSleep {
    state: Arc<Mutex<SleepState>>,
}

impl Future for ThreadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Ok(mut state) = self.state.lock() else {
            return Poll::Ready(());
        };
        if state.done {
            Poll::Ready(())
        } else {
            state.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

impl Sleeper for ThreadSleeper {
    fn sleep(&self, duration: Duration) -> SleepFuture {
        let state = Arc::new(Mutex::new(SleepState::default()));
        let remote = Arc::clone(&state);
        std::thread::spawn(move || {
            std::thread::sleep(duration);
            if let Ok(mut s) = remote.lock() {
                s.done = true;
                if let Some(w) = s.waker.take() {
                    w.wake();
                }
            }
        });
        Box::pin(ThreadSleep { state })
    }
}

/// authentik's `DummyPolicy`.
#[derive(Clone)]
pub struct DummyPolicy {
    pub result: bool,
    /// Seconds; the wait is drawn from `wait_min..wait_max` (authentik's `randrange`).
    pub wait_min: u64,
    pub wait_max: u64,
    sleeper: Arc<dyn Sleeper>,
}

impl std::fmt::Debug for DummyPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DummyPolicy")
            .field("result", &self.result)
            .field("wait_min", &self.wait_min)
            .field("wait_max", &self.wait_max)
            .finish_non_exhaustive()
    }
}

impl DummyPolicy {
    /// authentik's defaults are `result=False, wait_min=5, wait_max=30`.
    pub fn new(result: bool, wait_min: u64, wait_max: u64, sleeper: Arc<dyn Sleeper>) -> Self {
        Self {
            result,
            wait_min,
            wait_max,
            sleeper,
        }
    }

    /// The wait for one run: uniform in `wait_min..wait_max`, or `wait_min` when the range is
    /// empty (authentik's `randrange` would raise there).
    pub fn draw_wait(&self) -> Result<Duration, PolicyError> {
        if self.wait_min > self.wait_max {
            return Err(PolicyError::Config(format!(
                "wait_min ({}) is greater than wait_max ({})",
                self.wait_min, self.wait_max
            )));
        }
        let span = self.wait_max - self.wait_min;
        let offset = if span == 0 {
            0
        } else {
            RandomState::new().hash_one(0u8) % span
        };
        Ok(Duration::from_secs(self.wait_min + offset))
    }
}

#[async_trait]
impl Policy for DummyPolicy {
    fn kind(&self) -> &'static str {
        "dummypolicy"
    }

    async fn passes(&self, _req: &PolicyRequest) -> Result<PolicyResult, PolicyError> {
        let wait = self.draw_wait()?;
        self.sleeper.sleep(wait).await;
        Ok(PolicyResult::with_message(self.result, "dummy"))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]

    use super::*;
    use crate::request::PolicyUser;

    /// Records the waits asked for and completes at once.
    #[derive(Default)]
    pub(crate) struct InstantSleeper(pub Mutex<Vec<Duration>>);

    impl Sleeper for InstantSleeper {
        fn sleep(&self, duration: Duration) -> SleepFuture {
            if let Ok(mut waits) = self.0.lock() {
                waits.push(duration);
            }
            Box::pin(std::future::ready(()))
        }
    }

    #[tokio::test]
    async fn returns_its_result_after_an_injected_wait() {
        let sleeper = Arc::new(InstantSleeper::default());
        let req = PolicyRequest::new(PolicyUser::anonymous());
        for result in [true, false] {
            let p = DummyPolicy::new(result, 5, 30, sleeper.clone());
            let r = p.passes(&req).await.unwrap();
            assert_eq!(r.passing, result);
            assert_eq!(r.messages, vec!["dummy".to_owned()]);
        }
        let waits = sleeper.0.lock().unwrap().clone();
        assert_eq!(waits.len(), 2);
        assert!(
            waits.iter().all(|w| (5..30).contains(&w.as_secs())),
            "{waits:?}"
        );
    }

    #[tokio::test]
    async fn fixed_and_invalid_ranges() {
        let sleeper = Arc::new(InstantSleeper::default());
        assert_eq!(
            DummyPolicy::new(true, 3, 3, sleeper.clone())
                .draw_wait()
                .unwrap()
                .as_secs(),
            3
        );
        let bad = DummyPolicy::new(true, 4, 3, sleeper);
        let req = PolicyRequest::new(PolicyUser::anonymous());
        assert!(matches!(
            bad.passes(&req).await,
            Err(PolicyError::Config(_))
        ));
    }

    #[test]
    fn thread_sleeper_really_waits() {
        let start = std::time::Instant::now();
        futures_lite_block_on(ThreadSleeper.sleep(Duration::from_millis(20)));
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    /// A minimal executor, to show the thread sleeper needs no runtime.
    fn futures_lite_block_on(mut fut: SleepFuture) {
        struct ThreadWaker(std::thread::Thread);
        impl std::task::Wake for ThreadWaker {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        while fut.as_mut().poll(&mut cx).is_pending() {
            std::thread::park();
        }
    }
}
