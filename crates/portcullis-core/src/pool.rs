//! A fixed pool of threads for CPU-bound work the async workers must not do themselves:
//! password hashes, sandboxed expressions.
//!
//! The threads (`<name>-N`) take jobs from one queue. A thread that finishes a job takes the
//! next waiting one at once, so under load no thread is woken or put to sleep between jobs;
//! and the pool never grows. tokio's blocking pool does both: it hands each job to whichever
//! thread is free and starts new threads up to 512 under a burst, each of which then keeps its
//! own allocator pages (64 concurrent token requests left 36 threads and 150 MB behind).
//! A job whose caller has gone (the request was dropped) is skipped when its turn comes.
//! Cloning is cheap; clones share the threads, which end when the last clone is dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

/// Why a job gave no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("no {0} thread could start")]
    NoThreads(String),
    #[error("the {0} threads stopped")]
    Stopped(String),
    #[error("the {0} job panicked")]
    Panicked(String),
}

#[derive(Debug, Clone)]
pub struct WorkerPool {
    jobs: std::sync::mpsc::Sender<Job>,
    threads: usize,
    name: Arc<str>,
}

impl WorkerPool {
    /// A pool of `threads` threads (at least one, at most 1024) named `<name>-N`.
    #[must_use]
    pub fn new(name: &str, threads: usize) -> Self {
        Self::start(name, threads, None)
    }

    /// As [`WorkerPool::new`], and `on_idle` runs on a pool thread once the pool has gone
    /// `idle` without a job after running some: for memory the jobs keep warm under load that
    /// should not outlive it (the argon2 working memory).
    #[must_use]
    pub fn with_idle(name: &str, threads: usize, idle: Duration, on_idle: fn()) -> Self {
        Self::start(name, threads, Some((idle, on_idle)))
    }

    fn start(name: &str, threads: usize, idle: Option<(Duration, fn())>) -> Self {
        let wanted = threads.clamp(1, 1024);
        // Whether a job ran since `on_idle` last ran.
        let used = Arc::new(AtomicBool::new(false));
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let mut started = 0;
        for i in 0..wanted {
            let queue = Arc::clone(&queue);
            let used = Arc::clone(&used);
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    loop {
                        // One thread waits in `recv` holding the lock, the others for the lock;
                        // the job (or `on_idle`) runs after the lock is released.
                        let next = match (queue.lock(), idle) {
                            (Ok(q), None) => q.recv().map_err(|_| RecvTimeoutError::Disconnected),
                            (Ok(q), Some((after, _))) => q.recv_timeout(after),
                            (Err(_), _) => return,
                        };
                        match next {
                            Ok(job) => {
                                job();
                                used.store(true, Ordering::Relaxed);
                            }
                            Err(RecvTimeoutError::Timeout) => {
                                if let Some((_, on_idle)) = idle
                                    && used.swap(false, Ordering::Relaxed)
                                {
                                    on_idle();
                                }
                            }
                            // Every clone of the pool is gone.
                            Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                });
            if spawned.is_ok() {
                started += 1;
            }
        }
        Self {
            jobs,
            threads: started,
            name: name.into(),
        }
    }

    /// As many threads as the machine has CPUs.
    #[must_use]
    pub fn per_cpu(name: &str) -> Self {
        Self::new(
            name,
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        )
    }

    /// How many jobs run at once at most (the threads started).
    #[must_use]
    pub fn concurrency(&self) -> usize {
        self.threads
    }

    /// Runs `work` on one of the pool's threads and waits for its result.
    ///
    /// # Errors
    /// When no thread started, the threads are gone, or `work` panicked (the panic fails this
    /// job, not the thread).
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        if self.threads == 0 {
            return Err(PoolError::NoThreads(self.name.to_string()));
        }
        // A runtime-agnostic oneshot: the core knows no async runtime.
        let (done, result) = futures_channel::oneshot::channel();
        let job: Job = Box::new(move || {
            if done.is_canceled() {
                return;
            }
            if let Ok(value) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
                let _ = done.send(value);
            }
        });
        self.jobs
            .send(job)
            .map_err(|_| PoolError::Stopped(self.name.to_string()))?;
        result
            .await
            .map_err(|_| PoolError::Panicked(self.name.to_string()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_on_the_pool_and_a_panic_fails_only_its_job() {
        let pool = WorkerPool::new("test-pool", 2);
        assert_eq!(pool.concurrency(), 2);
        let name = pool
            .run(|| std::thread::current().name().map(str::to_owned))
            .await
            .unwrap();
        assert!(name.is_some_and(|n| n.starts_with("test-pool-")));
        let err = pool.run(|| -> () { panic!("boom") }).await.unwrap_err();
        assert_eq!(err, PoolError::Panicked("test-pool".into()));
        // Both threads still work after the panic.
        let results = futures_join(&pool).await;
        assert_eq!(results, vec![0, 1, 4, 9]);
    }

    static IDLE_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    fn count_idle() {
        IDLE_CALLS.fetch_add(1, Ordering::SeqCst);
    }

    #[tokio::test]
    async fn on_idle_runs_once_after_each_busy_spell() {
        let pool = WorkerPool::with_idle("idle-pool", 2, Duration::from_millis(50), count_idle);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(IDLE_CALLS.load(Ordering::SeqCst), 0, "nothing ran yet");
        assert_eq!(futures_join(&pool).await, vec![0, 1, 4, 9]);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            IDLE_CALLS.load(Ordering::SeqCst),
            1,
            "once, not once per timeout"
        );
        pool.run(|| ()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(IDLE_CALLS.load(Ordering::SeqCst), 2);
    }

    async fn futures_join(pool: &WorkerPool) -> Vec<u32> {
        let mut out = Vec::new();
        let handles: Vec<_> = (0..4u32)
            .map(|i| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.run(move || i * i).await })
            })
            .collect();
        for h in handles {
            out.push(h.await.unwrap().unwrap());
        }
        out
    }
}
