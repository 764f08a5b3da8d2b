//! The bundle on disk: round trip, determinism, atomicity, file names, CSV and safety.

mod common;

use std::collections::HashSet;
use std::path::{Component, Path};

use common::{created_at, entries, export, finding, options, record, snapshot};
use sha2::{Digest, Sha256};
use webriskops_domain::{extract_marker, CardExport, CredentialRef, Finding, TargetState};
use webriskops_portable::{
    card_file_name, CardRecord, CardsFile, FallbackCause, FallbackTrigger, PortableBundle,
    PortableError, PortableExport, PortableOptions, RecordSummary, CARDS_CSV, CARDS_JSON,
    CSV_HEADER, MANIFEST_FILE,
};

fn three() -> Vec<Finding> {
    let mut closed = finding("wro-3", "Old TLS version");
    closed.status = webriskops_domain::Status::Resolved;
    closed.remediation_steps.clear();
    vec![
        finding("wro-2", "Missing HSTS"),
        closed,
        finding("wro-1", "XSS in search"),
    ]
}

#[tokio::test]
async fn round_trip_returns_the_cards_sorted_with_their_markers() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bundle");
    let findings = three();
    export(options(&out), &findings).await.unwrap();

    let loaded = PortableBundle::load(&out).unwrap();
    let ids: Vec<&str> = loaded.cards.iter().map(|c| c.finding_id.as_str()).collect();
    assert_eq!(ids, ["wro-1", "wro-2", "wro-3"]);
    for card in &loaded.cards {
        let f = findings.iter().find(|f| f.id == card.finding_id).unwrap();
        let plan = CardExport::from_finding(f, false);
        assert_eq!(
            card.description, plan.body,
            "description is the tracker body"
        );
        assert_eq!(card.marker, plan.marker());
        assert_eq!(extract_marker(&card.description).as_ref(), Some(&f.id));
        assert_eq!(card.title, plan.title);
        assert_eq!(card.checklist, plan.checklist);
        assert_eq!(card.target, plan.target);
        assert_eq!(card.assignee.as_deref(), Some("jdoe"));
        assert_eq!(card.due, f.due);
        assert_eq!(card.destination_id, "5e9f8f8f8f8f8f8f8f8f8f02");
        let labels: Vec<String> = plan.labels.iter().map(|l| l.name.clone()).collect();
        assert_eq!(card.labels, labels);
        assert!(card
            .routing_notes
            .contains(&"Assign to jdoe (not a member of the board)".to_owned()));
        let md = std::fs::read_to_string(out.join(&card.file)).unwrap();
        assert!(md.starts_with(&format!("# {}\n", card.title)), "{md}");
        assert!(md.contains(&card.marker));
        for step in &card.checklist {
            assert!(md.contains(&format!("- [ ] {step}\n")), "{md}");
        }
    }
    assert_eq!(loaded.cards[2].target, TargetState::Archived);

    let m = &loaded.manifest;
    assert_eq!(m.format_version, 1);
    assert_eq!(m.created_at, created_at());
    assert_eq!(m.card_count, 3);
    assert_eq!(m.source_checksum, options(&out).source_checksum);
    assert_eq!(m.provider, Some(RecordSummary::from(&record())));
    assert_eq!(m.fallback, Some(FallbackTrigger::Blocked));
    assert_eq!(m.fallback_reasons, options(&out).fallback.reasons());
    let listed: Vec<&str> = m.files.keys().map(String::as_str).collect();
    assert_eq!(
        listed,
        [
            "cards.csv",
            "cards.json",
            "cards/wro-1.md",
            "cards/wro-2.md",
            "cards/wro-3.md"
        ]
    );
}

#[tokio::test]
async fn the_manifest_says_a_requested_bundle_was_requested() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("asked");
    export(
        PortableOptions {
            fallback: FallbackCause::Requested,
            ..options(&out)
        },
        &three(),
    )
    .await
    .unwrap();
    let m = PortableBundle::load(&out).unwrap().manifest;
    assert_eq!(m.fallback, Some(FallbackTrigger::Requested));
    assert!(m.fallback_reasons.is_empty());
    let raw: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(MANIFEST_FILE)).unwrap()).unwrap();
    assert_eq!(raw["fallback"], "requested");
}

#[test]
fn a_blocked_fallback_without_reasons_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let err = PortableExport::new(PortableOptions {
        fallback: FallbackCause::Blocked(Vec::new()),
        ..options(&tmp.path().join("b"))
    })
    .unwrap_err();
    assert!(
        matches!(err, PortableError::InvalidOptions { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("blocked states"), "{err}");
}

#[test]
fn manifests_written_before_the_fallback_field_still_load() {
    let json = serde_json::json!({
        "format": "webriskops-portable",
        "format_version": 1,
        "created_at": "2025-01-02T03:04:05Z",
        "source_checksum": "00",
        "provider": null,
        "fallback_reasons": [],
        "card_count": 0,
        "files": {}
    });
    let m: webriskops_portable::Manifest = serde_json::from_value(json).unwrap();
    assert_eq!(m.fallback, None);
}

#[tokio::test]
async fn two_runs_write_byte_identical_files_whatever_the_order() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let findings = three();
    let mut reversed = findings.clone();
    reversed.reverse();
    export(options(&a), &findings).await.unwrap();
    export(options(&b), &reversed).await.unwrap();
    let (sa, sb) = (snapshot(&a), snapshot(&b));
    assert_eq!(sa.keys().collect::<Vec<_>>(), sb.keys().collect::<Vec<_>>());
    for (name, bytes) in &sa {
        assert_eq!(bytes, &sb[name], "{name} differs between runs");
    }

    // The streamed cards.json is exactly serde's own pretty form of the cards.
    let loaded = PortableBundle::load(&a).unwrap();
    let expected = serde_json::to_string_pretty(&CardsFile {
        format_version: 1,
        cards: loaded.cards,
    })
    .unwrap()
        + "\n";
    assert_eq!(String::from_utf8(sa[CARDS_JSON].clone()).unwrap(), expected);
}

#[tokio::test]
async fn an_empty_export_is_a_valid_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("empty");
    export(options(&out), &[]).await.unwrap();
    let loaded = PortableBundle::load(&out).unwrap();
    assert!(loaded.cards.is_empty());
    assert_eq!(loaded.manifest.card_count, 0);
    let csv = std::fs::read_to_string(out.join(CARDS_CSV)).unwrap();
    assert_eq!(csv, format!("{}\r\n", CSV_HEADER.join(",")));
}

#[tokio::test]
async fn a_failure_mid_write_leaves_the_previous_bundle_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bundle");
    export(options(&out), &three()).await.unwrap();
    let before = snapshot(&out);

    let next = vec![finding("wro-9", "Replacement"), finding("wro-8", "Another")];
    // 2 cards: cards.json, cards.csv, 2 Markdown files, manifest = 5 files.
    for fail_after in 0..5 {
        let mut opts = options(&out);
        opts.fail_after_files = Some(fail_after);
        let err = export(opts, &next)
            .await
            .expect_err("the injected failure surfaces");
        assert!(err.to_string().contains("injected failure"), "{err}");
        assert_eq!(snapshot(&out), before, "failing after {fail_after} files");
        assert_eq!(
            entries(tmp.path()),
            ["bundle"],
            "no staging directory is left behind"
        );
        PortableBundle::load(&out).unwrap();
    }

    let mut opts = options(&out);
    opts.fail_after_files = Some(5);
    export(opts, &next).await.unwrap();
    let ids: Vec<String> = PortableBundle::load(&out)
        .unwrap()
        .cards
        .iter()
        .map(|c| c.finding_id.to_string())
        .collect();
    assert_eq!(ids, ["wro-8", "wro-9"]);
    assert_eq!(
        entries(&out.join("cards")),
        ["wro-8.md", "wro-9.md"],
        "old cards are gone"
    );
    assert_eq!(entries(tmp.path()), ["bundle"], "the old bundle is removed");
}

#[tokio::test]
async fn other_directories_and_files_are_never_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("Documents");
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(docs.join("thesis.txt"), "keep me").unwrap();
    let err = PortableExport::new(options(&docs)).unwrap_err();
    assert!(matches!(err, PortableError::NotABundle { .. }), "{err}");
    assert!(
        err.to_string().contains("is not a portable bundle"),
        "{err}"
    );

    let file = tmp.path().join("file");
    std::fs::write(&file, "x").unwrap();
    assert!(matches!(
        PortableExport::new(options(&file)),
        Err(PortableError::NotABundle { .. })
    ));

    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    export(options(&empty), &three()).await.unwrap();
    assert_eq!(PortableBundle::load(&empty).unwrap().cards.len(), 3);
    assert_eq!(
        std::fs::read_to_string(docs.join("thesis.txt")).unwrap(),
        "keep me"
    );
}

#[tokio::test]
async fn tricky_ids_get_distinct_safe_files_inside_the_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bundle");
    let ids = [
        ".",
        "..",
        "...",
        "CON",
        "con",
        "con.txt",
        "LPT1:",
        "a:b",
        "a_b",
        "A_B",
        "-x",
        ".hidden",
        "trailing.",
        &"x".repeat(128),
        &"Y".repeat(128),
    ];
    let findings: Vec<Finding> = ids.iter().map(|id| finding(id, "Tricky")).collect();
    export(options(&out), &findings).await.unwrap();

    let loaded = PortableBundle::load(&out).unwrap();
    assert_eq!(loaded.cards.len(), ids.len());
    let cards_dir = out.join("cards").canonicalize().unwrap();
    let mut seen = HashSet::new();
    for card in &loaded.cards {
        let path = out.join(&card.file);
        assert_eq!(path.canonicalize().unwrap().parent().unwrap(), cards_dir);
        assert!(
            seen.insert(card.file.to_lowercase()),
            "{} is shared",
            card.file
        );
        assert_eq!(
            card.file,
            format!("cards/{}", card_file_name(card.finding_id.as_str()))
        );
    }
    assert_eq!(entries(&out.join("cards")).len(), ids.len());
}

#[test]
fn any_string_maps_to_a_single_path_component() {
    let long = "é".repeat(500);
    for id in [
        "../../etc/passwd",
        "..\\..\\boot.ini",
        "/",
        "",
        "🔥💥",
        "C:\\x",
        "nul.md",
        &long,
    ] {
        let name = card_file_name(id);
        let comps: Vec<Component<'_>> = Path::new(&name).components().collect();
        assert!(
            matches!(comps[..], [Component::Normal(_)]),
            "{id:?} -> {name}"
        );
        assert!(
            !name.starts_with('.') && !name.contains(':'),
            "{id:?} -> {name}"
        );
        assert!(name.len() <= 100, "{id:?} -> {name}");
    }
    assert_ne!(card_file_name("🔥"), card_file_name("💥"));
}

#[tokio::test]
async fn csv_parses_back_to_the_cards() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bundle");
    let mut tricky = finding("wro-q", "Quotes \"here\", commas, and 🔥 émoji");
    tricky.description = Some("Line one\r\nline \"two\", with comma\n\nunicode: 測試".into());
    tricky.remediation_steps = vec![
        "Step, with comma".into(),
        "Step \"quoted\"\nover two lines".into(),
    ];
    tricky.tags = vec!["a,b".into(), "ünï".into()];
    tricky.assignee = Some("o'neil, pat".into());
    let findings = vec![tricky, finding("wro-p", "Plain")];
    export(options(&out), &findings).await.unwrap();
    let loaded = PortableBundle::load(&out).unwrap();

    let raw = std::fs::read(out.join(CARDS_CSV)).unwrap();
    let text = String::from_utf8(raw.clone()).expect("UTF-8");
    assert!(text.starts_with(&format!("{}\r\n", CSV_HEADER.join(","))));
    assert!(text.ends_with("\r\n"));

    let mut reader = csv::ReaderBuilder::new().from_reader(&raw[..]);
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header, CSV_HEADER);
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), loaded.cards.len());
    for (row, card) in rows.iter().zip(&loaded.cards) {
        assert_eq!(row[..], card.csv_row()[..]);
        assert_eq!(row[0], card.title);
        assert_eq!(row[1], card.description, "the description keeps the marker");
        assert_eq!(extract_marker(&row[1]).as_ref(), Some(&card.finding_id));
        assert_eq!(row[3], card.checklist.join("\n"));
        assert_eq!(row[6], card.finding_id.as_str());
    }
    let q: &CardRecord = &loaded.cards[1];
    assert_eq!(q.finding_id.as_str(), "wro-q");
    assert!(rows[1][1].contains("Line one\r\nline \"two\", with comma"));
    assert_eq!(rows[1][4], "o'neil, pat");
}

#[tokio::test]
async fn load_names_a_modified_or_missing_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bundle");
    export(options(&out), &three()).await.unwrap();

    let md = out.join("cards/wro-2.md");
    let original = std::fs::read(&md).unwrap();
    std::fs::write(&md, b"# tampered\n").unwrap();
    let err = PortableBundle::load(&out).unwrap_err();
    assert!(
        matches!(&err, PortableError::ChecksumMismatch { file, .. } if file == "cards/wro-2.md")
    );
    assert!(
        err.to_string()
            .starts_with("cards/wro-2.md in the portable bundle"),
        "{err}"
    );

    std::fs::write(&md, &original).unwrap();
    PortableBundle::load(&out).unwrap();
    std::fs::remove_file(out.join(CARDS_CSV)).unwrap();
    let err = PortableBundle::load(&out).unwrap_err();
    assert!(
        matches!(&err, PortableError::MissingFile { file, .. } if file == CARDS_CSV),
        "{err}"
    );

    let manifest = out.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("\"cards.csv\"", "\"../outside\"")).unwrap();
    let err = PortableBundle::load(&out).unwrap_err();
    assert!(
        err.to_string().contains("a path outside the bundle"),
        "{err}"
    );
    std::fs::remove_file(&manifest).unwrap();
    assert!(matches!(
        PortableBundle::load(&out),
        Err(PortableError::MissingFile { .. })
    ));
}

#[tokio::test]
async fn no_secret_reaches_any_file() {
    let token = hex::encode(Sha256::digest(
        format!("{:?}{}", std::time::SystemTime::now(), std::process::id()).as_bytes(),
    ));
    std::env::set_var("WEBRISKOPS_PORTABLE_TEST_TOKEN", &token);
    let mut rec = record();
    rec.credential = Some(CredentialRef(token.clone()));
    rec.base_url = Some(format!("https://api.trello.com/1?token={token}"));
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bundle");
    let mut opts = options(&out);
    opts.record_summary = Some(RecordSummary::from(&rec));
    export(opts, &three()).await.unwrap();
    let files = snapshot(&out);
    assert_eq!(files.len(), 6);
    for (name, bytes) in files {
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "the token leaked into {name}"
        );
    }
    std::env::remove_var("WEBRISKOPS_PORTABLE_TEST_TOKEN");
}
