//! Group commit for issued tokens: every token the OAuth provider hands out is stored first
//! (by its hash), and under load one commit per token is what limits the rate (SQLite commits
//! one at a time with a full fsync). Tokens waiting to be stored are written together by one
//! task, in one `INSERT` of up to [`MAX_BATCH`] rows: each caller still returns only once its
//! row is durable, but many share one commit.
//!
//! The task starts on first use and ends when the last `Store` handle is dropped. When it
//! cannot take a row (its runtime has shut down), the row is inserted directly.

use std::sync::OnceLock;

use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait};
use tokio::sync::{mpsc, oneshot};

use crate::StoreError;
use crate::entity::oauth_grant;

/// Most rows in one `INSERT` (12 columns each: well within both databases' parameter limits).
const MAX_BATCH: usize = 256;

type Job = (
    oauth_grant::ActiveModel,
    oneshot::Sender<Result<(), StoreError>>,
);

#[derive(Debug, Default)]
pub(crate) struct GrantWriter {
    jobs: OnceLock<mpsc::UnboundedSender<Job>>,
}

impl GrantWriter {
    /// Stores `row`; returns once it is committed (alone or with others).
    pub(crate) async fn insert(
        &self,
        pool: &DatabaseConnection,
        row: oauth_grant::ActiveModel,
    ) -> Result<(), StoreError> {
        let jobs = self.jobs.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(run(pool.clone(), rx));
            tx
        });
        let (done, wait) = oneshot::channel();
        if let Err(mpsc::error::SendError((row, _))) = jobs.send((row, done)) {
            row.insert(pool).await?;
            return Ok(());
        }
        wait.await
            .unwrap_or_else(|_| Err(StoreError::Config("the grant writer stopped".into())))
    }
}

async fn run(pool: DatabaseConnection, mut jobs: mpsc::UnboundedReceiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let rows: Vec<oauth_grant::ActiveModel> = batch.iter().map(|(r, _)| r.clone()).collect();
        match oauth_grant::Entity::insert_many(rows).exec(&pool).await {
            Ok(_) => {
                for (_, done) in batch.drain(..) {
                    let _ = done.send(Ok(()));
                }
            }
            // One bad row must not fail the others: each on its own, with its own answer.
            Err(_) => {
                for (row, done) in batch.drain(..) {
                    let result = row.insert(&pool).await.map(|_| ()).map_err(Into::into);
                    let _ = done.send(result);
                }
            }
        }
    }
}
