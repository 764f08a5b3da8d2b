//! The properties every fuzz target checks, one function per target.
//!
//! Targets: the findings reader, the marker parser and the Trello adapter's reading of
//! answers. Each function takes arbitrary bytes and panics when a property a user relies on does
//! not hold. `fuzz/fuzz_targets/*.rs` (cargo fuzz, run by `cargo xtask fuzz`) call them
//! with libFuzzer's inputs; `tests/corpus.rs` replays the committed seed corpus and every
//! input that once failed (`fuzz/regressions/`) in `cargo xtask test`.

use webriskops_domain::{extract_marker, marker, split_owned, CardExport, CardOptions, FindingId};
use webriskops_findings_file::FileSource;
use webriskops_ports::FindingSource;

/// The longest message about one input we accept to print: a hostile input must not turn
/// into a huge error line.
pub const MAX_MESSAGE_CHARS: usize = 2_000;

/// A target's properties, checked on one input.
pub type Target = fn(&[u8]);

/// The fuzz targets, by the name cargo fuzz knows them by.
pub const TARGETS: &[(&str, Target)] = &[
    ("findings_reader", findings_reader),
    ("marker", marker_parser),
    ("trello_answers", trello_answers),
];

/// A message printed about hostile input: bounded, and without a character that could
/// move the cursor, forge a line or recolour a terminal.
fn assert_printable(what: &str, message: &str) {
    assert!(
        message.chars().count() <= MAX_MESSAGE_CHARS,
        "{what} is {} characters long",
        message.chars().count()
    );
    if let Some(c) = message.chars().find(|c| c.is_control()) {
        panic!("{what} holds the control character {c:?}: {message:?}");
    }
}

/// The findings reader (JSON document or JSON Lines) on arbitrary bytes:
/// - it never panics and always ends;
/// - every message about an invalid finding or an unreadable file is bounded and free of
///   control characters;
/// - every finding it accepts becomes a card that carries exactly its finding's marker,
///   whatever text the finding holds, and keeps it when a person's text follows.
pub fn findings_reader(data: &[u8]) {
    let source = FileSource::from_bytes("<fuzz>", data.to_vec());
    let stream = match source.open() {
        Ok(s) => s,
        Err(e) => return assert_printable("the open error", &e.to_string()),
    };
    for item in stream {
        match item {
            Ok(finding) => {
                let card = CardExport::from_finding(&finding, true);
                assert_eq!(
                    extract_marker(&card.body).as_ref(),
                    Some(&finding.id),
                    "the card of finding {:?} is not identified as it",
                    finding.id.as_str()
                );
                let in_body = CardExport::build(
                    &finding,
                    &CardOptions {
                        has_done_list: true,
                        steps_in_body: true,
                        ..CardOptions::default()
                    },
                );
                assert_eq!(
                    extract_marker(&in_body.body).as_ref(),
                    Some(&finding.id),
                    "with the steps in the body, the card of {:?} is not identified as it",
                    finding.id.as_str()
                );
                let edited =
                    card.merged_body(&format!("{}\n\nnote {}", card.body, marker(&finding.id)));
                assert_eq!(extract_marker(&edited).as_ref(), Some(&finding.id));
            }
            Err(e) => assert_printable("the finding error", &source.describe_error(&e)),
        }
    }
}

/// A key and a token as the adapter would hold them; the fuzzer may put them in answers.
const KEY: &str = "0123456789abcdef0123456789abcdef";
const TOKEN: &str = "ATTAfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz";

/// The Trello adapter reading an answer: the first two bytes pick the status, the rest is
/// the body, in which the bytes `K` and `T` after a `%` stand for the key and the token.
/// Every message the answer produces, for any route and any decoded shape, is bounded,
/// free of control characters, and never holds the key or the token.
pub fn trello_answers(data: &[u8]) {
    let Some((status, body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let status = 100 + u16::from_be_bytes(*status) % 500;
    let mut expanded = Vec::with_capacity(body.len());
    let mut bytes = body.iter().peekable();
    while let Some(&b) = bytes.next() {
        match (b, bytes.peek()) {
            (b'%', Some(b'K')) => {
                bytes.next();
                expanded.extend_from_slice(KEY.as_bytes());
            }
            (b'%', Some(b'T')) => {
                bytes.next();
                expanded.extend_from_slice(TOKEN.as_bytes());
            }
            _ => expanded.push(b),
        }
    }
    for message in webriskops_trello::fuzzing::read_answer(status, &expanded, &[KEY, TOKEN]) {
        assert_printable("a Trello answer's message", &message);
        assert!(
            !message.contains(KEY) && !message.contains(TOKEN),
            "a secret reached a message: {message:?}"
        );
    }
}

/// The marker parser on arbitrary text:
/// - a marker it finds is literally in the text, and the exporter's part ends with it;
/// - a marker written for any valid id is found again, whatever text stands after it.
pub fn marker_parser(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Some(id) = extract_marker(&text) {
        assert!(
            text.contains(&marker(&id)),
            "found a marker that is not there"
        );
    }
    let (owned, theirs) = split_owned(&text);
    assert_eq!(owned.len() + theirs.len(), text.len(), "split loses text");

    let (head, tail) = text.split_once('\n').unwrap_or((&text, ""));
    if let Ok(id) = FindingId::new(head) {
        let body = format!("{}{tail}", marker(&id));
        assert_eq!(extract_marker(&body), Some(id), "a written marker is lost");
    }
}
