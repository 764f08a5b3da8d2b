//! Hostile and unusual findings input through the one reader: documents whose keys come
//! in any order, unsupported versions, duplicate keys, deep nesting, huge numbers in
//! unknown fields, terminal escapes and huge values in messages, pipes and devices.

use std::path::Path;

use webriskops_domain::Finding;
use webriskops_findings_file::{FileSource, FileSourceOptions};
use webriskops_ports::FindingSource;

fn finding(id: &str) -> String {
    format!(r#"{{"id":"{id}","title":"T {id}","severity":"low","status":"open"}}"#)
}

/// Every finding read and every message printed, an open failure included.
fn read_all(src: &FileSource) -> (Vec<Finding>, Vec<String>) {
    let (mut ok, mut messages) = (Vec::new(), Vec::new());
    match src.open() {
        Err(e) => messages.push(e.to_string()),
        Ok(stream) => {
            for item in stream {
                match item {
                    Ok(f) => ok.push(f),
                    Err(e) => messages.push(src.describe_error(&e)),
                }
            }
        }
    }
    (ok, messages)
}

fn ids(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.id.as_str()).collect()
}

fn bytes(label: &str, text: &str) -> FileSource {
    FileSource::from_bytes(label, text.as_bytes().to_vec())
}

#[test]
fn a_document_is_recognised_by_its_findings_array_whatever_key_comes_first() {
    let doc = format!(
        "{{\n  \"generated_at\": \"2026-11-30T08:00:00Z\",\n  \"schema_version\": 1,\n  \"findings\": [\n    {},\n    {}\n  ]\n}}\n",
        finding("a"),
        finding("b")
    );
    let (ok, messages) = read_all(&bytes("report.json", &doc));
    assert_eq!(ids(&ok), ["a", "b"], "{messages:?}");
    assert!(messages.is_empty(), "{messages:?}");
}

#[test]
fn an_unsupported_version_is_refused_before_any_finding_is_used() {
    for doc in [
        format!(
            "{{\"findings\": [{}], \"schema_version\": 2}}",
            finding("a")
        ),
        format!(
            "{{\"schema_version\": 2, \"findings\": [{}]}}",
            finding("a")
        ),
    ] {
        let (ok, messages) = read_all(&bytes("v2.json", &doc));
        assert!(
            ok.is_empty(),
            "a finding of an unsupported version was used: {ok:?}"
        );
        let all = messages.join("\n");
        assert!(
            all.contains("schema_version")
                && all.contains("is 2")
                && all.contains("supports version 1"),
            "{all}"
        );
    }
}

#[test]
fn duplicate_keys_are_rejected_with_their_position_and_name() {
    let lines = format!(
        "{}\n{{\"id\":\"b\",\"id\":\"c\",\"title\":\"t\",\"severity\":\"low\",\"status\":\"open\"}}\n{}\n",
        finding("a"),
        finding("d")
    );
    let (ok, messages) = read_all(&bytes("f.jsonl", &lines));
    assert_eq!(ids(&ok), ["a", "d"]);
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].starts_with("f.jsonl:2: field `id`: appears more than once"),
        "{messages:?}"
    );

    let doc = format!(
        "{{\"schema_version\":1,\"findings\":[{},{{\"id\":\"b\",\"title\":\"t\",\"title\":\"u\",\"severity\":\"low\",\"status\":\"open\"}}]}}",
        finding("a")
    );
    let (ok, messages) = read_all(&bytes("d.json", &doc));
    assert_eq!(ids(&ok), ["a"]);
    assert!(
        messages[0].starts_with("d.json:findings[1]: field `title`: appears more than once"),
        "{messages:?}"
    );

    let doc = format!(
        "{{\"schema_version\":1,\n\"findings\":[{}],\n\"findings\":[{}]}}",
        finding("a"),
        finding("b")
    );
    let (ok, messages) = read_all(&bytes("d.json", &doc));
    assert!(ok.is_empty(), "{ok:?}");
    assert!(
        messages[0].contains("field `findings`") && messages[0].contains("line 3"),
        "{messages:?}"
    );
}

#[test]
fn a_finding_nested_too_deep_is_rejected_alone_and_later_findings_are_read() {
    let deep = format!(
        r#"{{"id":"deep","title":"t","severity":"low","status":"open","x":{}1{}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let doc = format!(
        "{{\"schema_version\":1,\"findings\":[{},{deep},{}]}}",
        finding("a"),
        finding("c")
    );
    let (ok, messages) = read_all(&bytes("d.json", &doc));
    assert_eq!(ids(&ok), ["a", "c"], "{messages:?}");
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].starts_with("d.json:findings[1]:"),
        "{messages:?}"
    );
    assert!(messages[0].contains("deep"), "{messages:?}");

    let lines = format!("{}\n{deep}\n{}\n", finding("a"), finding("c"));
    let (ok, messages) = read_all(&bytes("f.jsonl", &lines));
    assert_eq!(ids(&ok), ["a", "c"]);
    assert!(messages[0].starts_with("f.jsonl:2:"), "{messages:?}");
}

#[test]
fn unknown_fields_are_ignored_whatever_numbers_they_hold() {
    let huge = "9".repeat(400);
    let with = |id: &str, extra: &str| {
        format!(r#"{{"id":"{id}","title":"t","severity":"low","status":"open",{extra}}}"#)
    };
    let lines = [
        with("a", r#""x": 1e999"#),
        with("b", &format!(r#""x": {huge}"#)),
        with("c", &format!(r#""x": {{"y": [-{huge}.5e-99999]}}"#)),
    ];
    let (ok, messages) = read_all(&bytes("f.jsonl", &(lines.join("\n") + "\n")));
    assert_eq!(ids(&ok), ["a", "b", "c"], "{messages:?}");
    let doc = format!(
        "{{\"schema_version\":1,\"findings\":[{}]}}",
        lines.join(",")
    );
    let (ok, messages) = read_all(&bytes("d.json", &doc));
    assert_eq!(ids(&ok), ["a", "b", "c"], "{messages:?}");
}

#[test]
fn messages_escape_what_they_quote_and_stay_short() {
    let id = "x\u{1b}[31m\nINFO export finished ok\u{202e}";
    // 5 MiB: under the line limit, so the finding is parsed and its value quoted.
    let big = "A".repeat(5 << 20);
    let lines = [
        serde_json::json!({"id": id, "title": "t", "severity": "low", "status": "open"}).to_string(),
        serde_json::json!({"id": "ok-1", "title": "t", "severity": big, "status": "open"}).to_string(),
        serde_json::json!({"id": id, "title": "t", "severity": "low", "status": "open", "due": big}).to_string(),
    ];
    let (ok, messages) = read_all(&bytes("f.jsonl", &(lines.join("\n") + "\n")));
    assert!(ok.is_empty());
    assert_eq!(messages.len(), 3, "{messages:?}");
    for m in &messages {
        assert!(
            !m.chars()
                .any(|c| c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c)),
            "{m:?}"
        );
        assert!(m.len() < 1000, "a {}-byte message", m.len());
    }
    assert!(
        messages[0].contains(r"x\u{1b}[31m\nINFO export finished ok\u{202e}"),
        "{messages:?}"
    );
    assert!(
        messages[1].contains("(5242880 characters in all)"),
        "{messages:?}"
    );
}

#[test]
fn a_line_or_finding_past_the_size_limit_is_rejected_and_the_next_still_read() {
    // Over the default 8 MiB limit, but a valid finding otherwise.
    let big = format!(
        r#"{{"id":"big","title":"t","severity":"low","status":"open","pad":"{}"}}"#,
        "p".repeat(9 << 20)
    );
    let lines = format!("{}\n{big}\n{}\n", finding("a"), finding("c"));
    let (ok, messages) = read_all(&bytes("f.jsonl", &lines));
    assert_eq!(ids(&ok), ["a", "c"]);
    assert!(
        messages.len() == 1
            && messages[0].starts_with("f.jsonl:2:")
            && messages[0].contains("longer than"),
        "{messages:?}"
    );
    let doc = format!(
        "{{\"schema_version\":1,\"findings\":[{},{big},{}]}}",
        finding("a"),
        finding("c")
    );
    let (ok, messages) = read_all(&bytes("d.json", &doc));
    assert_eq!(ids(&ok), ["a", "c"]);
    assert!(
        messages.len() == 1
            && messages[0].starts_with("d.json:findings[1]:")
            && messages[0].contains("larger than"),
        "{messages:?}"
    );
}

#[test]
fn input_that_is_not_findings_is_refused_at_once() {
    // /dev/zero never ends: only refusing at its first byte gets past it.
    let e = FileSource::open_path(Path::new("/dev/zero"))
        .expect_err("/dev/zero is not findings")
        .to_string();
    assert!(
        e.starts_with("/dev/zero:") && e.contains("byte 0x00"),
        "{e}"
    );
    for (input, said) in [
        ("", "empty"),
        ("<html>502 Bad Gateway</html>", "`<`"),
        ("[{\"id\":\"a\"}]", "`[`"),
    ] {
        let (ok, messages) = read_all(&bytes("x", input));
        assert!(ok.is_empty());
        assert!(
            messages.len() == 1 && messages[0].contains(said),
            "{input}: {messages:?}"
        );
    }
}

#[cfg(unix)]
mod pipes {
    use std::io::Write;
    use std::process::Command;

    use super::*;

    /// A named pipe fed by a thread with `data`, as `<(cmd)` gives one.
    fn fifo(dir: &Path, data: Vec<u8>) -> std::path::PathBuf {
        let path = dir.join("findings.pipe");
        let status = Command::new("mkfifo")
            .arg(&path)
            .status()
            .expect("mkfifo runs");
        assert!(status.success());
        let writer = path.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(writer)
                .unwrap();
            // The reader may stop early (a refused input): a broken pipe is expected then.
            let _ = f.write_all(&data);
        });
        path
    }

    #[test]
    fn a_pipe_is_read_once_and_opens_again_and_again() {
        let dir = tempfile::tempdir().unwrap();
        let lines = format!("{}\n{}\n", finding("a"), finding("b"));
        let path = fifo(dir.path(), lines.clone().into_bytes());
        let src = FileSource::open_path(&path).unwrap();
        for _ in 0..3 {
            let (ok, messages) = read_all(&src);
            assert_eq!(ids(&ok), ["a", "b"], "{messages:?}");
        }
        assert_eq!(src.checksum(), bytes("x", &lines).checksum());
    }

    #[test]
    fn a_pipe_past_the_spool_limit_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let lines: String = (0..200)
            .map(|i| finding(&format!("f-{i}")) + "\n")
            .collect();
        let path = fifo(dir.path(), lines.into_bytes());
        let opts = FileSourceOptions {
            spool_limit: 4096,
            ..FileSourceOptions::default()
        };
        let e = FileSource::open_path_with(&path, &opts)
            .expect_err("too large")
            .to_string();
        assert!(
            e.contains("more than 4096 bytes") && e.contains("regular file"),
            "{e}"
        );
    }
}
