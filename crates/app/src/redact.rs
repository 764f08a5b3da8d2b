//! Secret redaction: every byte the process writes passes through here first.
//!
//! Secrets (the token and the API key) are registered as soon as they are read; from
//! then on any occurrence in stdout, stderr, logs or panic messages becomes `[redacted]`.

use std::io::{self, Write};
use std::sync::{OnceLock, RwLock};

/// What a registered secret is replaced with.
pub const MASK: &str = "[redacted]";

/// Secrets shorter than this are not registered: masking common short strings would
/// mangle ordinary output, and no real token or key is that short.
const MIN_LEN: usize = 8;

fn registry() -> &'static RwLock<Vec<String>> {
    static SECRETS: OnceLock<RwLock<Vec<String>>> = OnceLock::new();
    SECRETS.get_or_init(|| RwLock::new(Vec::new()))
}

/// Registers a secret so that it never appears in any output of this process.
pub fn register(secret: &str) {
    let secret = secret.trim();
    if secret.len() < MIN_LEN {
        return;
    }
    let mut list = registry().write().unwrap_or_else(|p| p.into_inner());
    if !list.iter().any(|s| s == secret) {
        list.push(secret.to_owned());
        // Longest first, so a secret containing another is masked whole.
        list.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// `text` with every registered secret replaced by [`MASK`].
pub fn redact(text: &str) -> String {
    let list = registry().read().unwrap_or_else(|p| p.into_inner());
    let mut out = text.to_owned();
    for s in list.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    out
}

/// A writer that redacts each write before passing it on. Callers write whole lines or
/// whole log events in one call (the tracing formatter and [`crate::output`] do).
#[derive(Debug)]
pub struct RedactingWriter<W: Write>(pub W);

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_secrets_are_masked_everywhere() {
        register("0123456789abcdefSECRET");
        register("short");
        let text = "token=0123456789abcdefSECRET and 0123456789abcdefSECRET; short stays";
        assert_eq!(redact(text), "token=[redacted] and [redacted]; short stays");
        let mut buf = Vec::new();
        RedactingWriter(&mut buf)
            .write_all(b"x 0123456789abcdefSECRET y")
            .unwrap();
        assert_eq!(String::from_utf8(buf).unwrap(), "x [redacted] y");
    }
}
