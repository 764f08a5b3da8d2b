//! What every HTTP tracker adapter shares when text from outside (an answer body, a
//! client error) may reach an error message or a log: secrets redacted, text cut and
//! escaped, URLs stripped, and the client error kept as the port error's source only
//! when nothing in it needed cleaning. One copy, so the Trello and Linear adapters (and
//! the next) cannot drift apart on what they let through.

use std::net::IpAddr;
use std::sync::Arc;

use url::{Host, Url};

use webriskops_domain::text::escape_untrusted;
use webriskops_ports::ErrorSource;

/// Room searched past an excerpt's end for a secret that straddles it: the longest
/// secret any adapter holds (Linear's OAuth token set) is under 4 KiB.
const SECRET_WINDOW: usize = 4096;

/// Whether `url` points at this machine (127.0.0.0/8, ::1, `localhost`): the only hosts
/// an adapter may reach over plain http (the simulators), so that credentials never
/// cross a network unencrypted.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        None => false,
    }
}

/// Replaces secrets in text that came from outside (bodies, client errors).
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    needles: Vec<String>,
}

impl Redactor {
    /// A redactor for `secrets`; strings shorter than 4 bytes are ignored (they would
    /// redact ordinary words).
    pub fn new(secrets: &[&str]) -> Self {
        Redactor {
            needles: secrets
                .iter()
                .filter(|s| s.len() >= 4)
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }

    /// `text` with every secret replaced by `<redacted>`.
    pub fn clean(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), "<redacted>");
            }
        }
        out
    }

    /// [`excerpt`] of `text` with secrets replaced. Only the start of `text` is
    /// searched, with room for a whole secret.
    pub fn excerpt(&self, text: &str, max: usize) -> String {
        let head = match text.char_indices().nth(max + SECRET_WINDOW) {
            Some((i, _)) => &text[..i],
            None => text,
        };
        excerpt(&self.clean(head), max)
    }
}

/// Outside text as it may appear in an error message: cut to `max` characters with `…`,
/// then every character that could forge a line or restyle a terminal escaped by the
/// domain's [`escape_untrusted`], so that a hostile answer can neither flood a log line
/// nor forge one.
pub fn excerpt(s: &str, max: usize) -> String {
    let (head, cut) = match s.char_indices().nth(max) {
        Some((i, _)) => (&s[..i], true),
        None => (s, false),
    };
    let mut out = escape_untrusted(head).into_owned();
    if cut {
        out.push('…');
    }
    out
}

/// `s` with every `http://` or `https://` URL replaced by `<url>`: a client error's text
/// may carry the request URL, and a URL may carry an id or a token.
pub fn strip_urls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    loop {
        let at = match (rest.find("http://"), rest.find("https://")) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => break,
        };
        out.push_str(&rest[..at]);
        out.push_str("<url>");
        let after = &rest[at..];
        let end = after
            .find(|c: char| c.is_whitespace() || c == ')')
            .unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Why a request got no (complete) answer: the client error's text, without URLs and
/// secrets, and the client error itself (`reqwest::Error` without its URL) as the port
/// error's source, but only when nothing in its whole chain needed cleaning, so that a
/// caller printing the chain cannot see what the text hides.
#[derive(Debug)]
pub struct Cause {
    pub text: String,
    pub source: Option<ErrorSource>,
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Cause {
    /// `e` (already without its URL) described by `text` (its chain, cleaned and cut),
    /// kept when its raw chain reads the same as the cleaned one.
    pub fn new(e: reqwest::Error, raw_chain: &str, cleaned_chain: &str, text: String) -> Self {
        let source: Option<ErrorSource> = (raw_chain == cleaned_chain).then(|| Arc::new(e) as _);
        Cause { text, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_echoed_text_is_short_and_escaped() {
        let r = Redactor::new(&["s3cr3t-token", "abc"]);
        assert_eq!(r.clean("x s3cr3t-token y abc"), "x <redacted> y abc");
        let long = format!("{}\u{1b}[31m{}", "a".repeat(10), "s3cr3t-token");
        let e = r.excerpt(&long, 12);
        assert!(!e.contains('\u{1b}') && e.ends_with('…'), "{e}");
        assert_eq!(excerpt("abc", 10), "abc");
    }

    #[test]
    fn every_url_is_stripped_whichever_scheme_comes_first() {
        assert_eq!(
            strip_urls("error sending request for url (https://h/1/tokens/T) and http://x y"),
            "error sending request for url (<url>) and <url> y"
        );
        assert_eq!(strip_urls("no url here"), "no url here");
    }
}
