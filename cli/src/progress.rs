//! Progress for a step that may take more than a moment (ingest, a job, waiting for one):
//! a spinner with the time spent, on standard error, only when standard error is a
//! terminal and the output is not JSON; a redirected or captured run prints nothing of it.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A spinner that is cleared when dropped.
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// Starts a spinner saying `message`, when someone is watching.
    pub fn start(message: impl Into<String>, json: bool) -> Progress {
        if json || !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.set_message(message.into());
        bar.enable_steady_tick(Duration::from_millis(100));
        Progress(Some(bar))
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}
