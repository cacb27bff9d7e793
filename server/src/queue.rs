//! The job queue's runner: a dispatcher task that claims queued jobs from the store while
//! a job slot is free, and runs each on the blocking pool.
//!
//! The queue itself is the `jobs` table ([`jobs::claim_next`]), so queued jobs
//! survive a restart and several server processes over one data directory share the work;
//! the slots bound how many jobs this process runs at once. A submission wakes the
//! dispatcher at once; otherwise it looks again every second (for jobs another process
//! queued).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};

use super::AppState;
use sandbox_runtime::jobs::{self, Claimed};

/// Slots and the wake-up call of the dispatcher.
#[derive(Debug)]
pub struct Queue {
    slots: Arc<Semaphore>,
    wake: Notify,
    running: AtomicUsize,
    capacity: usize,
}

impl Queue {
    /// A queue running at most `slots` jobs at once.
    pub fn new(slots: usize) -> Queue {
        let capacity = slots.max(1);
        Queue {
            slots: Arc::new(Semaphore::new(capacity)),
            wake: Notify::new(),
            running: AtomicUsize::new(0),
            capacity,
        }
    }

    /// Tells the dispatcher a job was queued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Jobs this process is running now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    /// Jobs this process may run at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// A job this process runs. However its run ends (even by a panic), the slot's count goes
/// down, the dispatcher looks for the next job, and a job whose end was not recorded is
/// failed rather than left `running`.
struct Run<'a> {
    state: &'a AppState,
    job: String,
    ended: bool,
}

impl Drop for Run<'_> {
    fn drop(&mut self) {
        if !self.ended
            && let Err(e) = jobs::abandon(
                self.state.domain(),
                &self.job,
                "the server could not record the job's end",
            )
        {
            tracing::error!(job = %self.job, error = %e, "the job could not be failed either");
        }
        self.state.queue.running.fetch_sub(1, Ordering::Relaxed);
        self.state.queue.wake();
    }
}

/// Runs until the task is aborted: claim, run, repeat.
pub async fn dispatch(state: AppState) {
    let queue = state.queue.clone();
    loop {
        let Ok(permit) = queue.slots.clone().acquire_owned().await else {
            return;
        };
        match state.blocking(jobs::claim_next).await {
            Ok(Some(Claimed::Ready(ready))) => {
                let state = state.clone();
                queue.running.fetch_add(1, Ordering::Relaxed);
                tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    let mut guard = Run {
                        state: &state,
                        job: ready.id().to_string(),
                        ended: false,
                    };
                    let started = std::time::Instant::now();
                    match jobs::run_claimed(state.domain(), ready) {
                        Ok(report) => {
                            guard.ended = true;
                            state
                                .metrics
                                .job_ended(report.status.as_str(), started.elapsed());
                            tracing::info!(job = %guard.job, status = %report.status, error_kind = report.error_kind.as_deref().unwrap_or(""), elapsed_ms = started.elapsed().as_millis() as u64, "job ended");
                        }
                        Err(e) => {
                            state.metrics.job_ended("error", started.elapsed());
                            tracing::error!(job = %guard.job, error = %e, "the job's end could not be recorded");
                        }
                    }
                });
            }
            Ok(Some(Claimed::Ended(report))) => {
                drop(permit);
                state
                    .metrics
                    .job_ended(report.status.as_str(), Duration::ZERO);
                tracing::info!(job = %report.id, status = %report.status, error_kind = report.error_kind.as_deref().unwrap_or(""), "job ended before it started");
            }
            Ok(None) => {
                drop(permit);
                let _ = tokio::time::timeout(Duration::from_secs(1), queue.wake.notified()).await;
            }
            Err(e) => {
                drop(permit);
                tracing::error!(error = %e, "the job queue could not be read");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
