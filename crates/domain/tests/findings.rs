//! Findings files as they arrive: the contract's sample, byte order marks, broken
//! encodings and failing readers, and the cards made from them.

use std::io::{BufReader, Read};

use webriskops_domain::{
    extract_marker, read_document, split_owned, survey, tracker_len, CardExport, DocumentFindings,
    Finding, FindingError, FindingId, FindingsFormat, JsonLines, Position, Priority, ReadLimits,
    Severity, Status, MARKER_PREFIX, TRELLO_TEXT_LIMIT,
};

/// The contract's own sample (docs/contracts/, the findings-v1 contract as published).
const SAMPLE: &str = include_str!("../../../docs/contracts/findings-v1.sample.json");

fn format_of(input: &[u8]) -> FindingsFormat {
    survey(input, &ReadLimits::default())
        .expect("findings input")
        .format
}

fn read_all_document(input: &[u8]) -> Vec<Result<Finding, FindingError>> {
    let mut seen = Vec::new();
    read_document(input, |r| seen.push(r)).expect("a valid document");
    seen
}

#[test]
fn the_contract_sample_parses_and_every_card_fits() {
    assert_eq!(format_of(SAMPLE.as_bytes()), FindingsFormat::Document);
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
    assert_eq!(format_of(jsonl.as_bytes()), FindingsFormat::JsonLines);
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
    assert_eq!(format_of(jsonl.as_bytes()), FindingsFormat::JsonLines);
    let out: Vec<_> = JsonLines::new(jsonl.as_bytes()).collect();
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(Result::is_ok), "{out:?}");

    let doc = format!("\u{feff}{{\"schema_version\":1,\"findings\":[{line}]}}");
    assert_eq!(format_of(doc.as_bytes()), FindingsFormat::Document);
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
    let err = survey(BrokenDisk, &ReadLimits::default()).unwrap_err();
    assert_eq!(err.position, Position::Document);
    assert!(err.reason.contains("device gone"), "{err}");
    let out: Vec<_> = DocumentFindings::new(BrokenDisk, ReadLimits::default())
        .take(5)
        .collect();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].as_ref().unwrap_err().position, Position::Document);
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

// ── hostile input ────────────────────────────────────────────────────────────────────

fn line(id: &str) -> String {
    format!(r#"{{"id":"{id}","title":"t","severity":"low","status":"open"}}"#)
}

fn ids_of(results: &[Result<Finding, FindingError>]) -> Vec<&str> {
    results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|f| f.id.as_str())
        .collect()
}

#[test]
fn the_format_follows_the_structure_not_the_first_key() {
    let doc = format!(
        "{{\"generated_at\":\"2026-11-30T08:00:00Z\",\n\"schema_version\":1,\n\"findings\":[\n{},\n{}\n]}}",
        line("a"),
        line("b")
    );
    assert_eq!(format_of(doc.as_bytes()), FindingsFormat::Document);
    assert_eq!(ids_of(&read_all_document(doc.as_bytes())), ["a", "b"]);
    // A one-line document, keys in any order.
    let doc = format!(
        "{{\"findings\":[{}],\"note\":null,\"schema_version\":1}}",
        line("a")
    );
    assert_eq!(format_of(doc.as_bytes()), FindingsFormat::Document);
    // Lines that each carry a schema_version are still one finding a line.
    let lines = format!(
        "{{\"schema_version\":1,{}\n{{\"schema_version\":1,{}\n",
        &line("a")[1..],
        &line("b")[1..]
    );
    assert_eq!(format_of(lines.as_bytes()), FindingsFormat::JsonLines);
    let out: Vec<_> = JsonLines::new(lines.as_bytes()).collect();
    assert_eq!(ids_of(&out), ["a", "b"]);
}

#[test]
fn a_pretty_printed_document_broken_before_its_findings_is_refused_whole() {
    // A syntax error ahead of the `findings` key: the one-finding-a-line reading would
    // export the findings that happen to sit on lines of their own.
    let doc = format!(
        "{{\n  \"schema_version\": 1,\n  \"generated\": oops,\n  \"findings\": [\n    {}\n  ]\n}}\n",
        line("a")
    );
    let e =
        survey(doc.as_bytes(), &ReadLimits::default()).expect_err("a broken document is refused");
    assert_eq!(e.position, Position::Document);
    assert!(e.reason.contains("line 3"), "{}", e.reason);
    // A broken first line of JSON Lines is still that line's error alone.
    let lines = format!("{{\"id\": \"x\"\n{}\n", line("b"));
    assert_eq!(format_of(lines.as_bytes()), FindingsFormat::JsonLines);
    let out: Vec<_> = JsonLines::new(lines.as_bytes()).collect();
    assert_eq!(ids_of(&out), ["b"]);
    assert!(out[0].is_err());
}

#[test]
fn the_version_is_checked_before_any_finding_wherever_it_stands() {
    for doc in [
        format!("{{\"findings\":[{}],\"schema_version\":2}}", line("a")),
        format!("{{\"schema_version\":\"1\",\"findings\":[{}]}}", line("a")),
        format!("{{\"findings\":[{}]}}", line("a")),
    ] {
        let mut handed = 0;
        let err = read_document(doc.as_bytes(), |_| handed += 1).unwrap_err();
        assert_eq!(
            handed, 0,
            "{doc}: a finding was used before the version was checked"
        );
        assert_eq!(err.field.as_deref(), Some("schema_version"), "{err}");
        assert!(err.reason.contains("supports version 1"), "{err}");
    }
    let err = read_document(
        format!("{{\"findings\":[{}],\"schema_version\":2}}", line("a")).as_bytes(),
        |_| {},
    )
    .unwrap_err();
    assert!(err.reason.starts_with("is 2;"), "{err}");
}

#[test]
fn duplicate_keys_are_rejected_in_findings_and_documents() {
    let lines = format!(
        "{}\n{{\"id\":\"a\",\"id\":\"b\",\"title\":\"t\",\"severity\":\"low\",\"status\":\"open\"}}\n{}\n",
        line("x"),
        line("y")
    );
    let out: Vec<_> = JsonLines::new(lines.as_bytes()).collect();
    assert_eq!(ids_of(&out), ["x", "y"]);
    let err = out[1].as_ref().unwrap_err();
    assert_eq!(
        (err.position, err.field.as_deref()),
        (Position::Line(2), Some("id"))
    );
    assert!(err.reason.contains("more than once"), "{err}");

    let doc = format!(
        "{{\"schema_version\":1,\"findings\":[{}],\n\"schema_version\":1}}",
        line("a")
    );
    let mut handed = 0;
    let err = read_document(doc.as_bytes(), |_| handed += 1).unwrap_err();
    assert_eq!(handed, 0);
    assert_eq!(err.field.as_deref(), Some("schema_version"));
    assert!(err.reason.contains("line 2"), "{err}");
}

#[test]
fn a_deep_finding_is_rejected_alone_and_unknown_fields_may_hold_any_number() {
    let deep = format!(
        r#"{{"id":"deep","title":"t","severity":"low","status":"open","x":{}{}}}"#,
        "{\"y\":".repeat(3000),
        "1".to_owned() + &"}".repeat(3000)
    );
    let huge = format!(
        r#"{{"id":"huge","title":"t","severity":"low","status":"open","x":1e999,"y":{}}}"#,
        "9".repeat(400)
    );
    let doc = format!(
        "{{\"schema_version\":1,\"findings\":[{},{deep},{huge},{}]}}",
        line("a"),
        line("z")
    );
    let seen = read_all_document(doc.as_bytes());
    assert_eq!(ids_of(&seen), ["a", "huge", "z"]);
    let err = seen[1].as_ref().unwrap_err();
    assert_eq!(err.position, Position::Index(1));
    assert!(err.reason.contains("128 levels"), "{err}");
    // A known field with an out-of-range number is the finding's error, named.
    let bad = r#"{"id":"n","title":1e999,"severity":"low","status":"open"}"#;
    let err = webriskops_domain::parse_finding(bad.as_bytes(), Position::Line(1)).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("title"), "{err}");
}

#[test]
fn errors_never_carry_raw_control_characters_or_huge_values() {
    let id = "a\u{1b}[2J\r\nFORGED\u{85}\u{2067}";
    let long = "L".repeat(1 << 20);
    let lines = [
        serde_json::json!({"id": id, "title": "t", "severity": "low", "status": "open"}),
        serde_json::json!({"id": id, "title": "t", "severity": long, "status": "open"}),
        serde_json::json!({"id": "ok", "title": "t", "severity": "low", "status": "open", "due": id}),
    ];
    let key = serde_json::to_string(id).unwrap();
    let dup =
        format!(r#"{{"id":"ok","title":"t","severity":"low","status":"open",{key}:1,{key}:2}}"#);
    let text: String = lines
        .iter()
        .map(|l| l.to_string() + "\n")
        .collect::<String>()
        + &dup;
    let out: Vec<_> = JsonLines::new(text.as_bytes()).collect();
    assert_eq!(out.len(), 4);
    for r in &out {
        let e = r.as_ref().unwrap_err();
        let shown = format!("{e} {:?} {:?}", e.id, e.field);
        assert!(!e.to_string().chars().any(char::is_control), "{e}");
        for part in [e.id.as_deref(), e.field.as_deref(), Some(e.reason.as_str())]
            .into_iter()
            .flatten()
        {
            assert!(
                !part.chars().any(|c| c.is_control() || c == '\u{2067}'),
                "{shown}"
            );
            assert!(part.chars().count() < 400, "{} characters", part.len());
        }
    }
}
