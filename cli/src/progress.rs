//! Progress for a step that may take more than a moment, on standard error, only when
//! standard error is a terminal and the output is not JSON (a redirected or captured run
//! prints nothing of it): a bar with the share done where the size is known (a CSV file
//! being registered, a product's files being fetched), a spinner with the time spent where
//! it is not (a job running, waiting for one).

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A spinner or a bar, cleared when dropped.
pub struct Progress {
    bar: Option<ProgressBar>,
    /// Stops the thread that follows a counter.
    done: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
}

fn watched(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}

impl Progress {
    /// Starts a spinner saying `message`, when someone is watching.
    pub fn start(message: impl Into<String>, json: bool) -> Progress {
        if !watched(json) {
            return Progress::none();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.set_message(message.into());
        bar.enable_steady_tick(Duration::from_millis(100));
        Progress {
            bar: Some(bar),
            done: None,
        }
    }

    /// Starts a bar of `len` steps (`bytes`: shown as sizes) saying `message`, when
    /// someone is watching.
    pub fn bar(message: impl Into<String>, len: u64, bytes: bool, json: bool) -> Progress {
        if !watched(json) {
            return Progress::none();
        }
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        let template = if bytes {
            "{msg} [{bar:30}] {bytes}/{total_bytes} {percent}% ({eta})"
        } else {
            "{msg} [{bar:30}] {pos}/{len} {percent}%"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(message.into());
        Progress {
            bar: Some(bar),
            done: None,
        }
    }

    /// Starts a bar of `len` bytes that follows `counter` (bytes done so far, as another
    /// part of the program counts them).
    pub fn following(
        message: impl Into<String>,
        len: u64,
        counter: Arc<AtomicU64>,
        json: bool,
    ) -> Progress {
        let mut p = Progress::bar(message, len, true, json);
        if let Some(bar) = p.bar.clone() {
            let stop = Arc::new(AtomicBool::new(false));
            let stopped = stop.clone();
            let thread = std::thread::spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    bar.set_position(counter.load(Ordering::Relaxed).min(len));
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
            p.done = Some((stop, thread));
        }
        p
    }

    /// One more step done.
    pub fn step(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn none() -> Progress {
        Progress {
            bar: None,
            done: None,
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.done.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = thread.join();
        }
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
