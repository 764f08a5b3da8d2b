//! Findings files as they arrive: the contract's sample, byte order marks, broken
//! encodings and failing readers, and the cards made from them.

use std::io::{BufReader, Read};

use webriskops_domain::{
    extract_marker, read_document, split_owned, tracker_len, CardExport, Finding, FindingError,
    FindingId, FindingsFormat, JsonLines, Position, Priority, Severity, Status, MARKER_PREFIX,
    TRELLO_TEXT_LIMIT,
};

const SAMPLE: &str = include_str!("data/findings-v1.sample.json");

fn read_all_document(input: &[u8]) -> Vec<Result<Finding, FindingError>> {
    let mut seen = Vec::new();
    read_document(input, |r| seen.push(r)).expect("a valid document");
    seen
}

#[test]
fn the_contract_sample_parses_and_every_card_fits() {
    assert_eq!(
        FindingsFormat::detect(SAMPLE.as_bytes()),
        FindingsFormat::Document
    );
    let findings: Vec<Finding> = read_all_document(SAMPLE.as_bytes())
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(findings.len(), 12);
    let ids: Vec<&str> = findings.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids[0], "wro-f-0001");
    assert_eq!(ids[11], "wro-f-0012");

    let first = &findings[0];
    assert_eq!(first.severity, Severity::High);
    assert_eq!(first.effective_priority(), Priority::P2);
    assert_eq!(first.remediation_steps.len(), 3);
    assert!(first.first_seen.is_some() && first.last_seen.is_some());
    assert_eq!(findings[1].effective_priority(), Priority::P1);
    assert!(findings[4].status.is_closed());
    assert_eq!(findings[6].status, Status::AcceptedRisk);

    for f in &findings {
        let card = CardExport::from_finding(f, true);
        assert!(tracker_len(&card.title) <= TRELLO_TEXT_LIMIT);
        assert!(tracker_len(&card.body) <= TRELLO_TEXT_LIMIT);
        assert_eq!(extract_marker(&card.body).as_ref(), Some(&f.id));
    }
    // wro-f-0008: non-ASCII title and a 22,826-character description (trimmed), cut visibly.
    let long = CardExport::from_finding(&findings[7], true);
    assert!(long.title.contains("ünïcödé 測試 ✓"));
    assert!(long
        .body
        .contains("[description truncated: 22826 characters in all"));
    assert!(long.body.starts_with("Long description follows."));
    assert!(long.body.ends_with("[webriskops:finding:wro-f-0008]"));
}

#[test]
fn the_contract_sample_as_json_lines_gives_the_same_findings() {
    let doc: serde_json::Value = serde_json::from_str(SAMPLE).unwrap();
    let lines: Vec<String> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.to_string())
        .collect();
    let jsonl = lines.join("\n") + "\n";
    assert_eq!(
        FindingsFormat::detect(jsonl.as_bytes()),
        FindingsFormat::JsonLines
    );
    let from_lines: Vec<Finding> = JsonLines::new(jsonl.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let from_doc: Vec<Finding> = read_all_document(SAMPLE.as_bytes())
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(from_lines, from_doc);
}

#[test]
fn a_byte_order_mark_is_ignored_in_both_formats() {
    let line = r#"{"id":"wro-1","title":"t","severity":"low","status":"open"}"#;
    let jsonl = format!("\u{feff}{line}\n{line}\n");
    assert_eq!(
        FindingsFormat::detect(jsonl.as_bytes()),
        FindingsFormat::JsonLines
    );
    let out: Vec<_> = JsonLines::new(jsonl.as_bytes()).collect();
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(Result::is_ok), "{out:?}");

    let doc = format!("\u{feff}{{\"schema_version\":1,\"findings\":[{line}]}}");
    assert_eq!(
        FindingsFormat::detect(doc.as_bytes()),
        FindingsFormat::Document
    );
    let seen = read_all_document(doc.as_bytes());
    assert_eq!(seen.len(), 1);
    assert!(seen[0].is_ok());
    // Short documents (fewer bytes than a byte order mark) still read.
    assert!(read_document(&b"{}"[..], |_| {}).is_err());
}

#[test]
fn a_line_that_is_not_utf8_does_not_swallow_the_next_one() {
    let mut input = Vec::new();
    input.extend_from_slice(
        b"{\"id\":\"a\",\"title\":\"t\",\"severity\":\"low\",\"status\":\"open\"}\n",
    );
    input.extend_from_slice(b"{\"id\":\"b\",\"title\":\"caf\xe9\"}\n");
    input.extend_from_slice(
        b"{\"id\":\"c\",\"title\":\"t\",\"severity\":\"low\",\"status\":\"open\"}\n",
    );
    let out: Vec<_> = JsonLines::new(&input[..]).collect();
    assert_eq!(out.len(), 3, "{out:?}");
    let err = out[1].as_ref().unwrap_err();
    assert_eq!(err.position, Position::Line(2));
    assert!(err.reason.contains("UTF-8"), "{err}");
    assert_eq!(out[2].as_ref().unwrap().id.as_str(), "c");
}

struct BrokenDisk;

impl Read for BrokenDisk {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("device gone"))
    }
}

#[test]
fn a_failing_reader_is_reported_once_and_ends_the_stream() {
    let out: Vec<_> = JsonLines::new(BufReader::new(BrokenDisk)).take(5).collect();
    assert_eq!(out.len(), 1);
    assert!(out[0].as_ref().unwrap_err().reason.contains("device gone"));
    let err = read_document(BrokenDisk, |_| {}).unwrap_err();
    assert_eq!(err.position, Position::Document);
}

#[test]
fn a_description_quoting_another_cards_marker_keeps_this_findings_identity() {
    let mut f = Finding::minimal(
        FindingId::new("wro-f-0100").unwrap(),
        "Open redirect",
        Severity::Medium,
    );
    f.description = Some(
        "Same root cause as the card below:\n\n[webriskops:finding:wro-f-0042]\nsee there".into(),
    );
    f.references = vec!["[webriskops:finding:wro-f-0043]".into()];
    let card = CardExport::from_finding(&f, false);
    assert_eq!(extract_marker(&card.body).unwrap().as_str(), "wro-f-0100");
    assert_eq!(card.body.matches(MARKER_PREFIX).count(), 1);
    assert!(card.body.ends_with("[webriskops:finding:wro-f-0100]"));
    // The quoted markers still read the same once rendered (a Markdown escape).
    assert!(card.body.contains(r"[webriskops\:finding:wro-f-0042]"));
    // A later rewrite keeps what people wrote under the marker.
    let edited = format!("{}\n\nops: waiting on vendor", card.body);
    assert_eq!(split_owned(&edited).0, card.body);
    assert_eq!(card.merged_body(&edited), edited);
}
