//! Progress of long phases: an indicatif bar with rate and ETA on a terminal, plain periodic
//! `tracing` lines (same numbers) when stderr is not a terminal (CI logs, `nohup`, files).

use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The bar currently drawn, if any; console log lines are printed around it.
static ACTIVE_BAR: Mutex<Option<(u64, ProgressBar)>> = Mutex::new(None);
/// Tags for bars, so a finished bar only unregisters itself.
static NEXT_BAR: AtomicU64 = AtomicU64::new(1);

/// How often plain progress lines are logged by default.
const DEFAULT_LINE_INTERVAL: Duration = Duration::from_secs(10);

/// Writes `buf` to stderr, hiding the active progress bar while doing so.
pub(crate) fn write_console(buf: &[u8]) -> std::io::Result<()> {
    let bar = ACTIVE_BAR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .as_ref()
        .map(|(_, bar)| bar.clone());
    match bar {
        Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf)),
        None => std::io::stderr().write_all(buf),
    }
}

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, lines otherwise.
    Auto,
    /// Always a bar.
    Bar,
    /// Always periodic log lines.
    Lines,
    /// Nothing but the final summary line.
    Hidden,
}

enum Display {
    Bar {
        bar: ProgressBar,
        tag: u64,
    },
    Lines {
        every: Duration,
        last: Mutex<Instant>,
    },
    Hidden,
}

/// Progress of one phase (`epoch 3/10`, `evaluating`), counted in items (batches, images).
/// Shareable between threads: every method takes `&self`.
pub struct Progress {
    label: String,
    total: u64,
    position: AtomicU64,
    started: Instant,
    message: Mutex<String>,
    display: Display,
}

impl Progress {
    /// Progress over `total` items (0 = unknown), shown as [`ProgressMode::Auto`] decides.
    pub fn new(label: impl Into<String>, total: u64) -> Self {
        Self::with_mode(label, total, ProgressMode::Auto)
    }

    /// Progress shown in the given mode; lines are logged every 10 seconds.
    pub fn with_mode(label: impl Into<String>, total: u64, mode: ProgressMode) -> Self {
        Self::build(label.into(), total, mode, DEFAULT_LINE_INTERVAL)
    }

    /// Progress logged as plain lines at most every `every` (and once at the end).
    pub fn lines_every(label: impl Into<String>, total: u64, every: Duration) -> Self {
        Self::build(label.into(), total, ProgressMode::Lines, every)
    }

    fn build(label: String, total: u64, mode: ProgressMode, every: Duration) -> Self {
        let started = Instant::now();
        let use_bar = match mode {
            ProgressMode::Auto => std::io::stderr().is_terminal(),
            ProgressMode::Bar => true,
            ProgressMode::Lines | ProgressMode::Hidden => false,
        };
        let display = if use_bar {
            let bar = new_bar(&label, total);
            let tag = NEXT_BAR.fetch_add(1, Ordering::Relaxed);
            *ACTIVE_BAR
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((tag, bar.clone()));
            Display::Bar { bar, tag }
        } else if mode == ProgressMode::Hidden {
            Display::Hidden
        } else {
            Display::Lines {
                every,
                last: Mutex::new(started),
            }
        };
        Self {
            label,
            total,
            position: AtomicU64::new(0),
            started,
            message: Mutex::new(String::new()),
            display,
        }
    }

    /// Advances by `n` items.
    pub fn inc(&self, n: u64) {
        let position = self.position.fetch_add(n, Ordering::Relaxed) + n;
        match &self.display {
            Display::Bar { bar, .. } => bar.inc(n),
            Display::Lines { every, last } => {
                let Ok(mut last) = last.try_lock() else {
                    return;
                };
                if last.elapsed() >= *every {
                    *last = Instant::now();
                    tracing::info!("{}", self.status_line(position));
                }
            }
            Display::Hidden => {}
        }
    }

    /// Items done so far.
    pub fn position(&self) -> u64 {
        self.position.load(Ordering::Relaxed)
    }

    /// A short note shown after the numbers (e.g. the running loss).
    pub fn set_message(&self, message: impl Into<String>) {
        let message = message.into();
        if let Display::Bar { bar, .. } = &self.display {
            bar.set_message(message.clone());
        }
        *self
            .message
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = message;
    }

    /// Ends the phase: clears the bar and logs one summary line (count, time, rate).
    pub fn finish(self) {
        if let Display::Bar { bar, .. } = &self.display {
            bar.finish_and_clear();
        }
        let position = self.position();
        let elapsed = self.started.elapsed().as_secs_f64();
        tracing::info!(
            "{}: {} done in {} ({})",
            self.label,
            position,
            format_duration(elapsed),
            format_rate(position, elapsed)
        );
    }

    /// `label: 30/120 (25%), 4.20 it/s, ETA 21s, message`.
    fn status_line(&self, position: u64) -> String {
        let elapsed = self.started.elapsed().as_secs_f64();
        let message = self.message.lock().map(|m| m.clone()).unwrap_or_default();
        let mut line = status_line(&self.label, position, self.total, elapsed);
        if !message.is_empty() {
            line.push_str(", ");
            line.push_str(&message);
        }
        line
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Display::Bar { bar, tag } = &self.display {
            bar.finish_and_clear();
            let mut active = ACTIVE_BAR
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if active.as_ref().is_some_and(|(t, _)| t == tag) {
                *active = None;
            }
        }
    }
}

fn new_bar(label: &str, total: u64) -> ProgressBar {
    let template = if total > 0 {
        "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec} ETA {eta} {msg}"
    } else {
        "{prefix} [{elapsed_precise}] {spinner} {pos} {per_sec} {msg}"
    };
    let bar = if total > 0 {
        ProgressBar::new(total)
    } else {
        ProgressBar::new_spinner()
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_prefix(label.to_string());
    bar
}

/// One plain progress line: `label: 30/120 (25%), 4.20 it/s, ETA 21s`; with an unknown total
/// (0), `label: 30, 4.20 it/s`.
pub(crate) fn status_line(label: &str, position: u64, total: u64, elapsed_seconds: f64) -> String {
    let rate = format_rate(position, elapsed_seconds);
    if total == 0 {
        return format!("{label}: {position}, {rate}");
    }
    let percent = 100.0 * position as f64 / total as f64;
    let eta = if position == 0 || elapsed_seconds <= 0.0 {
        "?".to_string()
    } else {
        let remaining = total.saturating_sub(position) as f64;
        format_duration(remaining * elapsed_seconds / position as f64)
    };
    format!("{label}: {position}/{total} ({percent:.0}%), {rate}, ETA {eta}")
}

fn format_rate(position: u64, elapsed_seconds: f64) -> String {
    if elapsed_seconds <= 0.0 {
        return "? it/s".into();
    }
    format!("{:.2} it/s", position as f64 / elapsed_seconds)
}

/// `3725.2` → `1h02m05s`, `125` → `2m05s`, `7.4` → `7s`.
pub fn format_duration(seconds: f64) -> String {
    let total = seconds.max(0.0).round() as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_hours_minutes_seconds() {
        assert_eq!(format_duration(3725.2), "1h02m05s");
        assert_eq!(format_duration(125.0), "2m05s");
        assert_eq!(format_duration(7.4), "7s");
        assert_eq!(format_duration(-1.0), "0s");
    }

    #[test]
    fn status_lines_show_count_rate_and_eta() {
        // 30 of 120 in 10 s: 3 it/s, 90 left → 30 s.
        assert_eq!(
            status_line("epoch 1/2", 30, 120, 10.0),
            "epoch 1/2: 30/120 (25%), 3.00 it/s, ETA 30s"
        );
        assert_eq!(
            status_line("eval", 0, 50, 0.0),
            "eval: 0/50 (0%), ? it/s, ETA ?"
        );
        assert_eq!(status_line("scan", 8, 0, 4.0), "scan: 8, 2.00 it/s");
    }
}
