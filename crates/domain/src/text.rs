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
}
