//! Text limits: visible truncation that never splits a character and never fails.
//!
//! Trello caps card names and descriptions at 16,384 characters. Its server counts
//! JavaScript string length (UTF-16 code units), which is never less than the number
//! of Unicode scalar values, so lengths here are counted in UTF-16 units to stay
//! within the limit for any text, emoji included.

use std::borrow::Cow;

/// Trello's limit for a card name and description (UTF-16 units).
pub const TRELLO_TEXT_LIMIT: usize = 16_384;

/// The most a single checklist item may take once percent-encoded. Trello documents a
/// JSON body only for cards, so checklist items travel in the URL, which Trello refuses
/// past about 8 KB (414, FACTS §0); 4 KB leaves room for the rest of the request.
pub const CHECK_ITEM_URL_BUDGET: usize = 4096;

/// Length of `s` percent-encoded in a query string: unreserved ASCII stays one byte,
/// every other byte takes three.
pub fn url_encoded_len(s: &str) -> usize {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                1
            } else {
                3
            }
        })
        .sum()
}

/// Cuts `s` so that, with `notice` appended, it percent-encodes to at most `budget` bytes;
/// unchanged when it fits. Cuts fall on character boundaries.
pub fn truncate_url_encoded<'a>(s: &'a str, budget: usize, notice: &str) -> Cow<'a, str> {
    if url_encoded_len(s) <= budget {
        return Cow::Borrowed(s);
    }
    let room = budget.saturating_sub(url_encoded_len(notice));
    let mut used = 0;
    let mut end = 0;
    for (i, c) in s.char_indices() {
        let mut buf = [0u8; 4];
        used += url_encoded_len(c.encode_utf8(&mut buf));
        if used > room {
            break;
        }
        end = i + c.len_utf8();
    }
    Cow::Owned(format!("{}{notice}", &s[..end]))
}

/// Length as the tracker counts it (UTF-16 code units).
pub fn tracker_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// Cuts `s` to at most `max` UTF-16 units. When it has to cut, it ends the text with
/// `notice` (which must itself fit) so that a reader sees that text is missing. Cuts
/// fall on character boundaries only.
pub fn truncate_visibly<'a>(s: &'a str, max: usize, notice: &str) -> Cow<'a, str> {
    if tracker_len(s) <= max {
        return Cow::Borrowed(s);
    }
    let notice_len = tracker_len(notice);
    if notice_len >= max {
        return Cow::Owned(prefix_within(notice, max).to_owned());
    }
    let mut out = prefix_within(s, max - notice_len).to_owned();
    out.push_str(notice);
    Cow::Owned(out)
}

/// The longest prefix of `s` within `max` UTF-16 units, ending on a character boundary.
pub fn prefix_within(s: &str, max: usize) -> &str {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        used += c.len_utf16();
        if used > max {
            return &s[..i];
        }
    }
    s
}

/// The most characters of untrusted text (findings input) a message echoes.
pub const ECHO_MAX_CHARS: usize = 80;

/// Whether `c` must not reach a terminal or a log line as it is: control characters
/// (C0, DEL, C1: `\n` and ESC among them), the line and paragraph separators, the bidi
/// controls that reorder what follows (U+061C, U+200E/F, U+202A–U+202E, U+2066–U+2069)
/// and the invisible format characters that hide text (U+200B–U+200D, U+2060–U+2064,
/// U+FEFF, U+FFF9–U+FFFB). Unicode's list of bidi controls: UAX #9, "Explicit
/// Directional Formatting" and the "Trojan Source" advisory (CVE-2021-42574).
fn is_unsafe_to_print(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061C}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}')
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c => {
            use std::fmt::Write;
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
}

/// `s` with every character that could forge a line or restyle a terminal written as a
/// visible escape (`\n`, `\r`, `\t`, `\u{1b}`, `\u{202e}`); all other text unchanged.
///
/// Backslashes are left alone, so escaping twice changes nothing: safe to apply again at
/// every layer that prints. The escapes are for people reading messages, not a format
/// to parse back.
pub fn escape_untrusted(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe_to_print) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe_to_print(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Untrusted text (a value read from a findings file) made fit to quote in one line of
/// an error or message: escaped as [`escape_untrusted`] does and, past
/// [`ECHO_MAX_CHARS`] characters of output, cut with `…` and the original length, so a
/// 10 MB field gives a short message. Every message that echoes findings input uses it.
pub fn echo_untrusted(s: &str) -> Cow<'_, str> {
    if s.chars().count() <= ECHO_MAX_CHARS && !s.chars().any(is_unsafe_to_print) {
        return Cow::Borrowed(s);
    }
    let mut out = String::new();
    let mut shown = 0usize;
    let mut cut = false;
    for c in s.chars() {
        let mut piece = String::new();
        if is_unsafe_to_print(c) {
            push_escaped(&mut piece, c);
        } else {
            piece.push(c);
        }
        let len = piece.chars().count();
        if shown + len > ECHO_MAX_CHARS {
            cut = true;
            break;
        }
        shown += len;
        out.push_str(&piece);
    }
    if cut {
        out.push_str(&format!("… ({} characters in all)", s.chars().count()));
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_untouched() {
        assert!(matches!(
            truncate_visibly("abc", 3, "…"),
            Cow::Borrowed("abc")
        ));
    }

    #[test]
    fn long_text_ends_with_the_notice_and_fits() {
        let s = "測試✓😀".repeat(10);
        let out = truncate_visibly(&s, 11, " [cut]");
        assert!(out.ends_with(" [cut]"));
        assert!(tracker_len(&out) <= 11);
    }

    #[test]
    fn url_budget_counts_encoded_bytes_and_cuts_visibly() {
        assert_eq!(url_encoded_len("a-b_c.d~"), 8);
        assert_eq!(url_encoded_len("a b"), 5);
        assert_eq!(url_encoded_len("測"), 9);
        let step = "測".repeat(1000);
        let cut = truncate_url_encoded(&step, CHECK_ITEM_URL_BUDGET, " …");
        assert!(url_encoded_len(&cut) <= CHECK_ITEM_URL_BUDGET);
        assert!(cut.ends_with(" …") && cut.starts_with("測測"));
        assert!(matches!(
            truncate_url_encoded("short", 100, " …"),
            Cow::Borrowed("short")
        ));
    }

    #[test]
    fn surrogate_pairs_are_never_split() {
        // "😀" is two UTF-16 units: a limit of 3 fits one and a half, so only one remains.
        assert_eq!(prefix_within("😀😀", 3), "😀");
    }

    #[test]
    fn untrusted_text_is_escaped_and_shortened() {
        assert!(matches!(echo_untrusted("wro-1"), Cow::Borrowed("wro-1")));
        let forged = "a\u{1b}[31mred\nINFO fake\r\u{9b}\u{202e}x\u{2066}\u{feff}";
        let out = echo_untrusted(forged);
        assert_eq!(
            out,
            "a\\u{1b}[31mred\\nINFO fake\\r\\u{9b}\\u{202e}x\\u{2066}\\u{feff}"
        );
        assert!(!out.chars().any(is_unsafe_to_print));
        assert_eq!(
            escape_untrusted(&out),
            out,
            "escaping twice changes nothing"
        );

        let huge = "é".repeat(10_000_000);
        let out = echo_untrusted(&huge);
        assert!(out.chars().count() < ECHO_MAX_CHARS + 40, "{out}");
        assert!(out.ends_with("… (10000000 characters in all)"), "{out}");
        assert!(out.starts_with("éé"));
        // Escapes count towards the limit and are never split.
        let escapes = "\u{1b}".repeat(100);
        let out = echo_untrusted(&escapes);
        assert!(out.starts_with("\\u{1b}\\u{1b}") && out.contains("… (100 characters"));
        assert!(out.split('…').next().unwrap().chars().count() <= ECHO_MAX_CHARS);
        // Printable non-ASCII text is kept as it is.
        assert_eq!(escape_untrusted("ünïcödé 測試 ✓ 😀"), "ünïcödé 測試 ✓ 😀");
    }
}
