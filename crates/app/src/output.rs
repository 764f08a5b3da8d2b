//! Writing to stdout and stderr: whole lines, redacted, flushed.

use std::io::{self, Write};

use serde::Serialize;

use crate::redact::redact;

/// Where command output goes. `json` selects machine-readable output on stdout.
#[derive(Debug, Clone, Copy, Default)]
pub struct Out {
    pub json: bool,
}

fn write_to(mut w: impl Write, text: &str) {
    let mut line = redact(text);
    line.push('\n');
    // A closed pipe (e.g. `| head`) is not worth a panic.
    let _ = w.write_all(line.as_bytes());
    let _ = w.flush();
}

impl Out {
    /// A line of human output on stdout (suppressed with `--json`).
    pub fn say(&self, text: impl AsRef<str>) {
        if !self.json {
            write_to(io::stdout().lock(), text.as_ref());
        }
    }

    /// A line on stderr, in every mode.
    pub fn note(&self, text: impl AsRef<str>) {
        write_to(io::stderr().lock(), text.as_ref());
    }

    /// A JSON document on stdout (with `--json`).
    pub fn json_doc(&self, value: &impl Serialize) {
        let text = serde_json::to_string_pretty(value)
            .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialise the output: {e}\"}}"));
        write_to(io::stdout().lock(), &text);
    }

    /// One compact JSON line on stdout, flushed, whatever the mode.
    ///
    /// # Errors
    /// Stdout is closed.
    pub fn json_line(&self, value: &impl Serialize) -> io::Result<()> {
        let mut text = serde_json::to_string(value).map_err(io::Error::other)?;
        text = redact(&text);
        text.push('\n');
        let mut w = io::stdout().lock();
        w.write_all(text.as_bytes())?;
        w.flush()
    }

    /// One compact JSON line on stderr.
    pub fn json_note(&self, value: &impl Serialize) {
        let text = serde_json::to_string(value).unwrap_or_default();
        write_to(io::stderr().lock(), &text);
    }

    /// A line on stdout that deliberately bypasses redaction. Used only for the
    /// authorize URL, which must carry the API key, and for a new API token, shown this
    /// once (see docs/security.md).
    pub fn say_unredacted(&self, text: &str) {
        let mut w = io::stdout().lock();
        let _ = writeln!(w, "{text}");
        let _ = w.flush();
    }
}
