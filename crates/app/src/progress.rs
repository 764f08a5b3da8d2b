//! Export progress on stderr: a bar on a terminal, sparse plain lines otherwise.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use webriskops_service::Progress;

use crate::redact::redact;

/// Plain lines are written at most this often (and at every tenth of the total).
const PLAIN_INTERVAL: Duration = Duration::from_secs(5);

/// Phases smaller than this finish too fast to be worth plain progress lines.
const PLAIN_MIN_TOTAL: u64 = 100;

/// Progress for an operator: picks the bar or plain lines by whether stderr is a terminal.
pub struct StderrProgress {
    bar: Option<ProgressBar>,
    plain: Mutex<Plain>,
}

#[derive(Default)]
struct Plain {
    phase: String,
    total: Option<u64>,
    done: u64,
    last_tenth: u64,
    last_line: Option<Instant>,
}

impl StderrProgress {
    /// A bar when stderr is a terminal and `quiet` is false; plain lines otherwise.
    pub fn new(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self {
            bar,
            plain: Mutex::new(Plain::default()),
        }
    }

    /// Removes the bar before the summary is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn plain(&self) -> std::sync::MutexGuard<'_, Plain> {
        self.plain.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Progress for StderrProgress {
    fn phase(&self, name: &str, total: Option<u64>) {
        if let Some(bar) = &self.bar {
            bar.reset();
            bar.set_position(0);
            match total {
                Some(n) => {
                    bar.set_length(n);
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{msg:>14} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                }
                None => {
                    bar.unset_length();
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {msg} {pos}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                }
            }
            bar.set_message(name.to_owned());
            return;
        }
        let mut p = self.plain();
        *p = Plain {
            phase: name.to_owned(),
            total,
            ..Plain::default()
        };
        if let Some(n) = total.filter(|n| *n >= PLAIN_MIN_TOTAL) {
            eprintln!("export: {name}: 0/{n}");
            p.last_line = Some(Instant::now());
        }
    }

    fn advance(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
            return;
        }
        let mut p = self.plain();
        p.done += n;
        let Some(total) = p.total.filter(|t| *t >= PLAIN_MIN_TOTAL) else {
            return;
        };
        let tenth = (p.done * 10 / total).min(10);
        let due = p.last_line.is_none_or(|t| t.elapsed() >= PLAIN_INTERVAL);
        if tenth > p.last_tenth || due {
            p.last_tenth = tenth;
            p.last_line = Some(Instant::now());
            eprintln!(
                "export: {}: {}/{total} ({}%)",
                p.phase,
                p.done,
                p.done * 100 / total
            );
        }
    }

    fn note(&self, message: &str) {
        let line = redact(&format!("note: {message}"));
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }
}
