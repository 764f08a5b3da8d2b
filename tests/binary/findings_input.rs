//! Findings input as users and producers really hand it to `webriskops export`: documents
//! whose keys come in any order, versions it does not support, duplicate keys, deep
//! nesting, huge numbers, terminal escapes, pipes and devices. Every export here writes
//! the portable bundle (`--fallback always`), so no Trello setup is needed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{finding, Run, World};

const BUNDLE: [&str; 5] = ["--fallback", "always", "--out", "bundle", "--json"];

fn export(w: &World, file: &str) -> Run {
    let mut args = vec!["export", file];
    args.extend(BUNDLE);
    w.run(&args, &[])
}

fn write(w: &World, name: &str, text: &str) -> PathBuf {
    let p = w.path(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn run_of(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Finding ids in the bundle's `cards.json`.
fn bundle_ids(w: &World) -> Vec<String> {
    let text = std::fs::read_to_string(w.path("bundle/cards.json")).unwrap();
    let cards: Value = serde_json::from_str(&text).unwrap();
    let mut ids: Vec<String> = cards["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["finding_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn five_findings() -> Vec<String> {
    ["a", "b", "c", "d", "e"]
        .iter()
        .map(|id| finding(id, &format!("Finding {id}")))
        .collect()
}

#[test]
fn a_document_whose_first_key_is_not_the_envelope_exports_every_finding() {
    let w = World::new();
    let doc = format!(
        "{{\n  \"generated_at\": \"2026-11-30T08:00:00Z\",\n  \"scanner\": {{\"name\": \"wro\", \"version\": \"9.1\"}},\n  \"schema_version\": 1,\n  \"findings\": [\n    {}\n  ]\n}}\n",
        five_findings().join(",\n    ")
    );
    let file = write(&w, "report.json", &doc);
    let run = export(&w, file.to_str().unwrap());
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["created"], Value::from(5));
    assert_eq!(run.json()["invalid_count"], Value::from(0));
}

#[test]
fn an_unsupported_version_exports_nothing_and_names_both_versions() {
    let w = World::new();
    let doc = format!(
        "{{\"findings\": [{}], \"schema_version\": 2}}",
        five_findings().join(",")
    );
    let file = write(&w, "v2.json", &doc);
    let run = export(&w, file.to_str().unwrap());
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("is 2") && run.stderr.contains("supports version 1"),
        "{}",
        run.stderr
    );
    assert!(
        !w.path("bundle/cards.json").exists(),
        "findings of an unsupported version were exported"
    );
}

#[test]
fn duplicate_keys_are_rejected_by_line_and_key_name() {
    let w = World::new();
    let dup = r#"{"id":"b","title":"t","severity":"low","status":"open","id":"z"}"#;
    let lines = [finding("a", "A"), dup.into(), finding("c", "C")];
    let file = w.findings_file("dup.jsonl", &lines);
    let run = export(&w, file.to_str().unwrap());
    assert_eq!(run.code, 4, "{run:?}");
    let want = format!("{}:2: field `id`: appears more than once", file.display());
    assert!(run.stderr.contains(&want), "{}", run.stderr);
    assert_eq!(bundle_ids(&w), ["a", "c"], "neither b nor z is exported");
}

#[test]
fn a_finding_nested_too_deep_is_rejected_alone_and_the_rest_export() {
    let w = World::new();
    let deep = format!(
        r#"{{"id":"deep","title":"t","severity":"low","status":"open","x":{}0{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let mut items = five_findings();
    items.insert(1, deep);
    let doc = format!(
        "{{\"schema_version\": 1, \"findings\": [{}]}}",
        items.join(",")
    );
    let file = write(&w, "deep.json", &doc);
    let run = export(&w, file.to_str().unwrap());
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("{}:findings[1]:", file.display())),
        "{}",
        run.stderr
    );
    assert_eq!(bundle_ids(&w), ["a", "b", "c", "d", "e"]);
}

#[test]
fn out_of_range_numbers_in_unknown_fields_are_ignored() {
    let w = World::new();
    let with = |id: &str, extra: &str| {
        format!(r#"{{"id":"{id}","title":"t","severity":"low","status":"open","x":{extra}}}"#)
    };
    let lines = [with("a", "1e999"), with("b", &"7".repeat(400))];
    let file = w.findings_file("numbers.jsonl", &lines);
    let run = export(&w, file.to_str().unwrap());
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(bundle_ids(&w), ["a", "b"]);
}

#[test]
fn terminal_escapes_and_huge_values_are_escaped_and_shortened_in_messages() {
    let w = World::new();
    let forged = serde_json::json!({
        "id": "x\u{1b}[31m\nINFO export finished: 0 invalid\u{202e}",
        "title": "t", "severity": "low", "status": "open"
    });
    let huge = serde_json::json!({
        "id": "big", "title": "t", "severity": "A".repeat(5 << 20), "status": "open"
    });
    let lines = [forged.to_string(), huge.to_string(), finding("ok", "OK")];
    let file = w.findings_file("hostile.jsonl", &lines);
    for json in [true, false] {
        let mut args = vec!["export", file.to_str().unwrap(), "--fallback", "always"];
        if json {
            args.push("--json");
        }
        let run = w.run(&args, &[]);
        assert_eq!(run.code, 4, "{run:?}");
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(
            !all.contains('\u{1b}') && !all.contains('\u{202e}'),
            "raw escapes: {all:?}"
        );
        assert!(
            !all.lines().any(|l| l.starts_with("INFO export finished")),
            "a forged line: {all}"
        );
        assert!(all.contains(r"x\u{1b}[31m\nINFO"), "{all}");
        assert!(all.len() < 20_000, "a {}-byte output", all.len());
    }
}

#[test]
fn dev_stdin_and_dash_read_a_pipe_once_and_export_everything() {
    for arg in ["/dev/stdin", "-"] {
        let w = World::new();
        let mut args = vec!["export", arg];
        args.extend(BUNDLE);
        let mut child = w
            .command()
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all((five_findings().join("\n") + "\n").as_bytes())
            .unwrap();
        drop(stdin);
        let run = run_of(child.wait_with_output().unwrap());
        assert_eq!(run.code, 0, "{arg}: {run:?}");
        assert_eq!(run.json()["created"], Value::from(5), "{arg}");
        assert_eq!(bundle_ids(&w), ["a", "b", "c", "d", "e"], "{arg}");
    }
}

#[test]
fn process_substitution_is_read_once_and_exports_everything() {
    let w = World::new();
    let file = w.findings_file("f.jsonl", &five_findings());
    let base = w.command();
    let mut c = Command::new("bash");
    c.current_dir(w.dir.path()).env_clear();
    for (k, v) in base.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    let out = c
        .arg("-c")
        .arg(r#""$0" export <(cat "$1") --fallback always --out bundle --json"#)
        .arg(base.get_program())
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let run = run_of(out);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(bundle_ids(&w), ["a", "b", "c", "d", "e"]);
}

/// Runs to the end, or is killed after `limit`: a guard against a hang (before the fix
/// `export /dev/zero` never returned), not a measure of speed.
fn run_guarded(mut c: Command, limit: Duration) -> Run {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the export did not end: it hangs on its input");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    run_of(child.wait_with_output().unwrap())
}

#[test]
fn dev_zero_and_other_non_findings_fail_at_once_with_a_clear_message() {
    let w = World::new();
    let mut c = w.command();
    c.args(["export", "/dev/zero"]).args(BUNDLE);
    let run = run_guarded(c, Duration::from_secs(120));
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("/dev/zero") && run.stderr.contains("not a findings file"),
        "{}",
        run.stderr
    );
    let page = write(
        &w,
        "page.html",
        "<html><body>502 Bad Gateway</body></html>\n",
    );
    let run = export(&w, page.to_str().unwrap());
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("not a findings file"), "{}", run.stderr);
    assert!(!Path::new(&w.path("bundle/cards.json")).exists());
}
