//! Property tests of the domain rules: findings parsing, visible truncation, card
//! plans and fingerprints, readiness, description ownership and duplicate resolution.
//!
//! Case counts are kept moderate so the whole domain test run stays quick on a small
//! machine; `PROPTEST_CASES` raises them for a deeper run.

use std::collections::BTreeSet;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use webriskops_domain::text::prefix_within;
use webriskops_domain::{
    evaluate, extract_marker, read_document, resolve_duplicates, split_owned, tracker_len,
    truncate_visibly, AuthMethod, BlockedCode, BoardObservation, CardExport, CredentialRef,
    DeploymentMode, Finding, FindingError, FindingId, ItemId, JsonLines, ListObservation,
    Observations, ObservedItem, Permission, Position, Priority, ProviderKey, ProviderRecord, Scope,
    Severity, Status, TenantId, TokenObservation, TrackerStatus, MARKER_PREFIX, TRELLO_TEXT_LIMIT,
};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(cases),
        ..ProptestConfig::default()
    }
}

// ---- Generators ----------------------------------------------------------------------

/// Any Unicode text of `min..=max` characters (scalar values), control characters included.
fn text(min: usize, max: usize) -> BoxedStrategy<String> {
    vec(any::<char>(), min..=max)
        .prop_map(|cs| cs.into_iter().collect())
        .boxed()
}

/// Text that sometimes quotes the marker of another finding, as a pasted card would.
fn text_quoting_markers(min: usize, max: usize) -> BoxedStrategy<String> {
    prop_oneof![
        4 => text(min, max),
        1 => (text(0, 20), "[A-Za-z0-9._:-]{1,20}", text(0, 20))
            .prop_map(|(a, id, b)| format!("{a}{MARKER_PREFIX}{id}]{b}")),
        1 => (text(0, 20), text(0, 20)).prop_map(|(a, b)| format!("{a}{MARKER_PREFIX}{b}")),
    ]
    .boxed()
}

fn finding_id() -> impl Strategy<Value = FindingId> {
    "[A-Za-z0-9._:-]{1,128}".prop_map(|s| FindingId::new(s).unwrap())
}

fn severity() -> impl Strategy<Value = Severity> {
    proptest::sample::select(Severity::ALL)
}

fn status() -> impl Strategy<Value = Status> {
    proptest::sample::select(Status::ALL)
}

fn priority() -> impl Strategy<Value = Priority> {
    proptest::sample::select(Priority::ALL)
}

fn date() -> impl Strategy<Value = NaiveDate> {
    (1i32..=9999, 1u32..=12, 1u32..=31)
        .prop_filter_map("a real day", |(y, m, d)| NaiveDate::from_ymd_opt(y, m, d))
}

fn timestamp() -> impl Strategy<Value = DateTime<FixedOffset>> {
    (
        0i64..4_102_444_800,
        prop_oneof![Just(0u32), 0u32..1_000_000_000],
        -1439i32..=1439,
    )
        .prop_map(|(secs, nanos, offset_min)| {
            let offset = FixedOffset::east_opt(offset_min * 60).unwrap();
            offset.timestamp_opt(secs, nanos).unwrap()
        })
}

/// A finding within every rule of `findings-v1.schema.json` (collections kept short).
fn finding_with(
    prose: fn(usize, usize) -> BoxedStrategy<String>,
) -> impl Strategy<Value = Finding> {
    let head = (
        finding_id(),
        text(1, 512),
        severity(),
        status(),
        option::of(prose(0, 120)),
        option::of(prose(1, 64)),
        option::of(prose(1, 80)),
        option::of(priority()),
        option::of(date()),
    );
    let tail = (
        option::of(prose(0, 400)),
        vec(text(1, 60), 0..6),
        vec(prose(0, 60), 0..4),
        vec(text(1, 64), 0..4),
        option::of(timestamp()),
        option::of(timestamp()),
    );
    (head, tail).prop_map(
        |(
            (id, title, severity, status, asset, component, assignee, priority, due),
            (description, remediation_steps, references, tags, first_seen, last_seen),
        )| Finding {
            id,
            title,
            severity,
            status,
            asset,
            component,
            assignee,
            priority,
            due,
            description,
            remediation_steps,
            references,
            tags,
            first_seen,
            last_seen,
        },
    )
}

fn finding() -> impl Strategy<Value = Finding> {
    finding_with(text)
}

/// Findings as they come, including over-long text that the card has to cut.
fn any_finding() -> impl Strategy<Value = Finding> {
    let big = prop_oneof![
        3 => Just(None),
        1 => (any::<char>(), 0usize..40_000).prop_map(|(c, n)| Some(c.to_string().repeat(n))),
        1 => (text(1, 8), 0usize..6_000).prop_map(|(s, n)| Some(s.repeat(n))),
    ];
    let many_refs = prop_oneof![
        3 => Just(Vec::new()),
        1 => (any::<char>(), 1usize..=2048, 0usize..=100)
            .prop_map(|(c, len, n)| vec![c.to_string().repeat(len); n]),
    ];
    let long_title = option::weighted(
        0.2,
        (any::<char>(), 0usize..20_000).prop_map(|(c, n)| c.to_string().repeat(n)),
    );
    (
        finding_with(text_quoting_markers),
        big,
        many_refs,
        long_title,
    )
        .prop_map(|(mut f, big, refs, title)| {
            if big.is_some() {
                f.description = big;
            }
            if !refs.is_empty() {
                f.references = refs;
            }
            if let Some(t) = title {
                f.title = t;
            }
            f
        })
}

// ---- Parsing -------------------------------------------------------------------------

fn to_value(f: &Finding) -> Value {
    serde_json::to_value(f).unwrap()
}

fn jsonl(values: &[Value]) -> String {
    values
        .iter()
        .map(|v| serde_json::to_string(v).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

fn document(values: &[Value]) -> String {
    json!({"schema_version": 1, "findings": values}).to_string()
}

fn read_jsonl(input: &[u8]) -> Vec<Result<Finding, FindingError>> {
    JsonLines::new(input).collect()
}

fn read_doc(input: &[u8]) -> (Result<(), FindingError>, Vec<Result<Finding, FindingError>>) {
    let mut seen = Vec::new();
    let outcome = read_document(input, |r| seen.push(r));
    (outcome, seen)
}

/// One way to break one field of a finding, and the field the error must name.
#[derive(Debug, Clone)]
enum Corruption {
    /// Replace a field's value.
    Set(&'static str, Value),
    /// Remove a field.
    Remove(&'static str),
    /// Make an array field `valid` items long, then append `bad`: the error names item `valid`.
    Item(&'static str, usize, Value),
    /// Make an array field one item too long.
    TooMany(&'static str, usize),
}

impl Corruption {
    fn apply(&self, obj: &mut Map<String, Value>) -> String {
        match self {
            Corruption::Set(field, v) => {
                obj.insert((*field).into(), v.clone());
                (*field).into()
            }
            Corruption::Remove(field) => {
                obj.remove(*field);
                (*field).into()
            }
            Corruption::Item(field, valid, bad) => {
                let mut items = vec![json!("ok"); *valid];
                items.push(bad.clone());
                obj.insert((*field).into(), Value::Array(items));
                format!("{field}[{valid}]")
            }
            Corruption::TooMany(field, max) => {
                obj.insert((*field).into(), json!(vec!["ok"; max + 1]));
                (*field).into()
            }
        }
    }
}

fn wrong_type() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(7)),
        Just(json!(true)),
        Just(json!(["x"])),
        Just(json!({"x": 1})),
    ]
}

fn corruption() -> impl Strategy<Value = Corruption> {
    const STRINGS: &[&str] = &[
        "id",
        "title",
        "severity",
        "status",
        "asset",
        "component",
        "assignee",
        "priority",
        "due",
        "description",
        "first_seen",
        "last_seen",
    ];
    const ARRAYS: &[&str] = &["remediation_steps", "references", "tags"];
    prop_oneof![
        // Wrong type.
        (proptest::sample::select(STRINGS), wrong_type()).prop_map(|(f, v)| Corruption::Set(f, v)),
        (
            proptest::sample::select(ARRAYS),
            prop_oneof![Just(json!("one step")), Just(json!(3)), Just(json!({}))]
        )
            .prop_map(|(f, v)| Corruption::Set(f, v)),
        (proptest::sample::select(ARRAYS), 0usize..4, wrong_type())
            .prop_map(|(f, i, v)| Corruption::Item(f, i, v)),
        // Required and missing, null or empty.
        proptest::sample::select(&["id", "title", "severity", "status"][..])
            .prop_map(Corruption::Remove),
        proptest::sample::select(&["id", "title", "severity", "status"][..])
            .prop_map(|f| Corruption::Set(f, Value::Null)),
        proptest::sample::select(&["id", "title", "component", "assignee"][..])
            .prop_map(|f| Corruption::Set(f, json!(""))),
        (
            proptest::sample::select(&["remediation_steps", "tags"][..]),
            0usize..4
        )
            .prop_map(|(f, i)| Corruption::Item(f, i, json!(""))),
        // Out-of-range length (counted in characters, so use a multi-byte one).
        (0usize..3).prop_map(|i| {
            let (field, max) = [("title", 512), ("component", 64), ("assignee", 254)][i];
            Corruption::Set(field, json!("é".repeat(max + 1)))
        }),
        Just(Corruption::Set("id", json!("a".repeat(129)))),
        Just(Corruption::Set("asset", json!("a".repeat(2049)))),
        Just(Corruption::Set("description", json!("a".repeat(200_001)))),
        (0usize..3, 0usize..4).prop_map(|(i, at)| {
            let (field, max) = [
                ("remediation_steps", 1000),
                ("tags", 64),
                ("references", 2048),
            ][i];
            Corruption::Item(field, at, json!("x".repeat(max + 1)))
        }),
        (0usize..3).prop_map(|i| {
            let (field, max) = [("remediation_steps", 50), ("tags", 20), ("references", 100)][i];
            Corruption::TooMany(field, max)
        }),
        // Values outside the enums, or malformed.
        prop_oneof![
            Just(Corruption::Set("severity", json!("urgent"))),
            Just(Corruption::Set("severity", json!("High"))),
            Just(Corruption::Set("status", json!("closed"))),
            Just(Corruption::Set("priority", json!("p5"))),
            Just(Corruption::Set("priority", json!("P1"))),
            Just(Corruption::Set("id", json!("wro 1"))),
            Just(Corruption::Set("id", json!("../etc/passwd"))),
            Just(Corruption::Set("due", json!("15/12/2026"))),
            Just(Corruption::Set("due", json!("2026-13-01"))),
            Just(Corruption::Set("due", json!("2026-1-5"))),
            Just(Corruption::Set("first_seen", json!("yesterday"))),
            Just(Corruption::Set("last_seen", json!("2026-11-02"))),
        ],
    ]
}

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn valid_findings_round_trip_through_json_lines_and_documents(
        findings in vec(finding(), 1..5)
    ) {
        let values: Vec<Value> = findings.iter().map(to_value).collect();

        let lines = read_jsonl(jsonl(&values).as_bytes());
        prop_assert_eq!(lines.len(), findings.len());
        for (got, want) in lines.iter().zip(&findings) {
            prop_assert_eq!(got.as_ref().unwrap(), want);
        }

        let (outcome, docs) = read_doc(document(&values).as_bytes());
        prop_assert!(outcome.is_ok(), "{:?}", outcome);
        prop_assert_eq!(docs.len(), findings.len());
        for (got, want) in docs.iter().zip(&findings) {
            prop_assert_eq!(got.as_ref().unwrap(), want);
        }
    }

    #[test]
    fn a_corrupted_field_is_named_at_its_position_and_the_rest_still_parse(
        findings in vec(finding(), 1..5),
        at in any::<prop::sample::Index>(),
        bad in corruption(),
    ) {
        let k = at.index(findings.len());
        let mut values: Vec<Value> = findings.iter().map(to_value).collect();
        let field = bad.apply(values[k].as_object_mut().unwrap());

        let check = |results: &[Result<Finding, FindingError>], pos: Position| {
            prop_assert_eq!(results.len(), findings.len());
            for (i, (got, want)) in results.iter().zip(&findings).enumerate() {
                if i == k {
                    let err = got.as_ref().expect_err("the corrupted finding must be rejected");
                    prop_assert_eq!(err.field.as_deref(), Some(field.as_str()), "{}", err);
                    prop_assert_eq!(err.position, pos);
                    prop_assert!(!err.reason.is_empty());
                    if !field.starts_with("id") {
                        prop_assert_eq!(err.id.as_deref(), Some(want.id.as_str()));
                    }
                } else {
                    prop_assert_eq!(got.as_ref().unwrap(), want);
                }
            }
            Ok(())
        };
        check(&read_jsonl(jsonl(&values).as_bytes()), Position::Line(k as u64 + 1))?;
        let (outcome, docs) = read_doc(document(&values).as_bytes());
        prop_assert!(outcome.is_ok(), "{:?}", outcome);
        check(&docs, Position::Index(k as u64))?;
    }

    #[test]
    fn a_line_that_is_not_utf8_is_reported_alone(
        findings in vec(finding(), 2..5),
        at in any::<prop::sample::Index>(),
        junk in vec(128u8..=255, 1..16),
    ) {
        let k = at.index(findings.len());
        let mut input = Vec::new();
        for (i, f) in findings.iter().enumerate() {
            if i == k {
                input.extend_from_slice(b"{\"id\":\"");
                input.extend_from_slice(&junk);
                input.extend_from_slice(b"\"}");
            } else {
                input.extend_from_slice(serde_json::to_string(f).unwrap().as_bytes());
            }
            input.push(b'\n');
        }
        let results = read_jsonl(&input);
        prop_assert_eq!(results.len(), findings.len());
        for (i, (got, want)) in results.iter().zip(&findings).enumerate() {
            if i == k {
                let err = got.as_ref().unwrap_err();
                prop_assert_eq!(err.position, Position::Line(i as u64 + 1));
            } else {
                prop_assert_eq!(got.as_ref().unwrap(), want);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_readers(
        bytes in vec(any::<u8>(), 0..600),
        prefix in prop_oneof![
            Just(&b""[..]),
            Just(&b"{\"schema_version\":1,\"findings\":["[..]),
            Just(&b"{\"id\":\"a\",\"title\":"[..]),
            Just(&b"\xEF\xBB\xBF"[..]),
        ],
    ) {
        let input = [prefix, &bytes[..]].concat();
        let lines = read_jsonl(&input);
        let newlines = input.iter().filter(|b| **b == b'\n').count();
        prop_assert!(lines.len() <= newlines + 1);
        let _ = read_doc(&input);
        let _ = webriskops_domain::survey(&input[..], &webriskops_domain::ReadLimits::default());
        let _: Vec<_> = webriskops_domain::DocumentFindings::new(&input[..], webriskops_domain::ReadLimits::default()).collect();
    }
}

// ---- Truncation ----------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn truncation_fits_and_shows_that_it_cut(
        s in prop_oneof![text(0, 200), "[a😀é測]{0,200}"],
        max in 0usize..260,
        notice in prop_oneof![Just(String::new()), Just(" …".to_owned()), text(0, 12)],
    ) {
        let out = truncate_visibly(&s, max, &notice);
        if tracker_len(&s) <= max {
            prop_assert_eq!(out.as_ref(), s.as_str());
        } else {
            prop_assert!(tracker_len(&out) <= max);
            if tracker_len(&notice) < max {
                let kept = out.strip_suffix(notice.as_str()).expect("ends with the notice");
                prop_assert!(s.starts_with(kept));
                prop_assert_eq!(kept, prefix_within(&s, max - tracker_len(&notice)));
            } else {
                prop_assert!(notice.starts_with(out.as_ref()));
            }
        }
    }
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn card_text_stays_within_the_limit_and_ends_with_the_marker(
        f in any_finding(),
        has_done_list in any::<bool>(),
    ) {
        let card = CardExport::from_finding(&f, has_done_list);
        prop_assert!(tracker_len(&card.title) <= TRELLO_TEXT_LIMIT);
        prop_assert!(!card.title.is_empty());
        prop_assert!(tracker_len(&card.body) <= TRELLO_TEXT_LIMIT);
        prop_assert!(card.body.ends_with(&card.marker()));
        prop_assert_eq!(extract_marker(&card.body), Some(f.id.clone()));
        // The whole body is the exporter's: its only marker is the last thing in it.
        prop_assert_eq!(split_owned(&card.body), (card.body.as_str(), ""));
        prop_assert_eq!(card.body.matches(MARKER_PREFIX).count(), 1);
    }
}

// ---- Fingerprints --------------------------------------------------------------------

/// A change to one exported field of a finding.
#[derive(Debug, Clone, Copy)]
enum Edit {
    Title,
    Description,
    Severity,
    Status,
    Priority,
    Component,
    Tag,
    Step,
    Assignee,
    Due,
    Asset,
    Reference,
}

const EDITS: &[Edit] = &[
    Edit::Title,
    Edit::Description,
    Edit::Severity,
    Edit::Status,
    Edit::Priority,
    Edit::Component,
    Edit::Tag,
    Edit::Step,
    Edit::Assignee,
    Edit::Due,
    Edit::Asset,
    Edit::Reference,
];

fn next_of<T: Copy + PartialEq>(all: &[T], v: T) -> T {
    let i = all.iter().position(|x| *x == v).unwrap();
    all[(i + 1) % all.len()]
}

fn edit(f: &Finding, e: Edit) -> Finding {
    let mut g = f.clone();
    match e {
        Edit::Title => g.title.push('!'),
        Edit::Description => {
            g.description = Some(format!("{}x", g.description.unwrap_or_default()))
        }
        Edit::Severity => g.severity = next_of(Severity::ALL, g.severity),
        Edit::Status => g.status = next_of(Status::ALL, g.status),
        Edit::Priority => {
            g.priority = Some(next_of(Priority::ALL, g.effective_priority()));
        }
        Edit::Component => g.component = Some(format!("{}x", g.component.unwrap_or_default())),
        Edit::Tag => {
            let card = CardExport::from_finding(f, false);
            let mut tag = "new-tag".to_owned();
            while card
                .labels
                .iter()
                .any(|l| l.name.eq_ignore_ascii_case(&tag))
            {
                tag.push('x');
            }
            g.tags.push(tag);
        }
        Edit::Step => g.remediation_steps.push("Retest".into()),
        Edit::Assignee => g.assignee = Some(format!("{}x", g.assignee.unwrap_or_default())),
        Edit::Due => {
            g.due = Some(match g.due {
                Some(d) => d.pred_opt().unwrap_or(NaiveDate::MAX),
                None => NaiveDate::from_ymd_opt(2026, 12, 15).unwrap(),
            })
        }
        Edit::Asset => g.asset = Some(format!("{}x", g.asset.unwrap_or_default())),
        Edit::Reference => g.references.push("CWE-79".into()),
    }
    g
}

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn fingerprints_are_deterministic_and_follow_exported_content(
        f in finding(),
        e in proptest::sample::select(EDITS),
        has_done_list in any::<bool>(),
        seen in option::of(timestamp()),
    ) {
        let a = CardExport::from_finding(&f, has_done_list);
        let b = CardExport::from_finding(&f.clone(), has_done_list);
        prop_assert_eq!(&a.fingerprint, &b.fingerprint);
        prop_assert_eq!(a.fingerprint.len(), 64);

        let changed = CardExport::from_finding(&edit(&f, e), has_done_list);
        prop_assert_ne!(&changed.fingerprint, &a.fingerprint, "{:?} did not change it", e);

        // Detection history is not exported.
        let mut g = f.clone();
        g.first_seen = seen;
        g.last_seen = seen.map(|t| t + chrono::Duration::days(1));
        prop_assert_eq!(CardExport::from_finding(&g, has_done_list).fingerprint, a.fingerprint);
    }

    #[test]
    fn closing_or_reopening_moves_the_target_and_the_fingerprint(
        f in finding(),
        closed in proptest::sample::select(&[Status::Resolved, Status::AcceptedRisk, Status::FalsePositive][..]),
        has_done_list in any::<bool>(),
    ) {
        let mut open = f.clone();
        open.status = Status::Open;
        let mut shut = f;
        shut.status = closed;
        let a = CardExport::from_finding(&open, has_done_list);
        let b = CardExport::from_finding(&shut, has_done_list);
        prop_assert_ne!(a.target, b.target);
        prop_assert_ne!(a.fingerprint, b.fingerprint);
    }
}

// ---- Readiness -----------------------------------------------------------------------

const BOARD: &str = "6123456789abcdef01234567";
const OTHER_BOARD: &str = "61ffffffffffffffff000001";
const LIST: &str = "6123456789abcdef0123aaaa";
const DONE_LIST: &str = "6123456789abcdef0123bbbb";
const ORG: &str = "5f1a2b3c4d5e6f7a8b9c0d1e";
const OTHER_ORG: &str = "60aa11bb22cc33dd44ee55ff";

fn pick(values: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![
        4 => proptest::sample::select(values).prop_map(str::to_owned),
        1 => text(0, 30),
    ]
    .boxed()
}

fn record() -> impl Strategy<Value = ProviderRecord> {
    let first = (
        proptest::sample::select(ProviderKey::ALL),
        proptest::sample::select(DeploymentMode::ALL),
        option::of(pick(&[
            "",
            "  ",
            "https://trello.example.internal",
            "https://api.trello.com/1",
        ])),
        option::of(pick(&[BOARD, OTHER_BOARD, "Security Remediation", ""])),
        option::of(pick(&[LIST, DONE_LIST, "To do", ""])),
        option::of(pick(&[DONE_LIST, LIST, "Done"])),
        option::of(pick(&[ORG, OTHER_ORG, " "])),
    );
    let second = (
        proptest::sample::select(AuthMethod::ALL),
        proptest::sample::subsequence(Scope::ALL, 0..=Scope::ALL.len()),
        any::<bool>(),
        any::<bool>(),
    );
    (first, second).prop_map(
        |(
            (
                provider_key,
                deployment_mode,
                base_url,
                board_id,
                list_id,
                done_list_id,
                workspace_id,
            ),
            (auth_method, scopes, revoke_path_confirmed, has_credential),
        )| {
            let tenant = TenantId::new("acme").unwrap();
            ProviderRecord {
                credential: has_credential
                    .then(|| CredentialRef::for_provider(&tenant, provider_key)),
                tenant,
                provider_key,
                deployment_mode,
                base_url,
                board_id,
                list_id,
                done_list_id,
                workspace_id,
                auth_method,
                scopes: scopes.into_iter().collect::<BTreeSet<_>>(),
                token_expires_at: None,
                revoke_path_confirmed,
                api_root: None,
                draft: None,
            }
        },
    )
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()
}

fn permission() -> impl Strategy<Value = Permission> {
    (
        pick(&["*", BOARD, OTHER_BOARD, ORG, OTHER_ORG]),
        pick(&[
            "Board",
            "board",
            "Organization",
            "organization",
            "Member",
            "*",
            "Enterprise",
        ]),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(id_model, model_type, read, write)| Permission {
            id_model,
            model_type,
            read,
            write,
        })
}

fn token() -> impl Strategy<Value = TokenObservation> {
    prop_oneof![
        1 => Just(TokenObservation::Missing),
        1 => pick(&["invalid token", "unauthorized token"])
            .prop_map(|reason| TokenObservation::Rejected { reason }),
        3 => (vec(permission(), 0..4), option::of(-400i64..400)).prop_map(|(permissions, days)| {
            TokenObservation::Valid {
                permissions,
                expires_at: days.map(|d| now() + chrono::Duration::days(d)),
            }
        }),
    ]
}

fn board() -> impl Strategy<Value = BoardObservation> {
    prop_oneof![
        3 => (text(0, 20), any::<bool>(), option::of(pick(&[ORG, OTHER_ORG]))).prop_map(
            |(name, closed, organization_id)| BoardObservation::Found { name, closed, organization_id }
        ),
        1 => Just(BoardObservation::NotFound),
        1 => Just(BoardObservation::NoAccess),
    ]
}

fn list() -> impl Strategy<Value = ListObservation> {
    prop_oneof![
        3 => (text(0, 20), any::<bool>(), pick(&[BOARD, OTHER_BOARD])).prop_map(
            |(name, closed, board_id)| ListObservation::Found { name, closed, board_id }
        ),
        1 => Just(ListObservation::NotFound),
        1 => Just(ListObservation::NoAccess),
    ]
}

fn observations() -> impl Strategy<Value = Observations> {
    (
        token(),
        option::of(board()),
        option::of(list()),
        option::of(list()),
        option::of(any::<bool>()),
        option::of(any::<bool>()),
    )
        .prop_map(
            |(token, board, list, done_list, labels, members)| Observations {
                now: now(),
                token,
                board,
                list,
                done_list,
                labels_readable: labels,
                members_readable: members,
                board_lists: None,
            },
        )
}

fn ready_record() -> ProviderRecord {
    let mut r = ProviderRecord::new_trello(TenantId::new("acme").unwrap());
    r.workspace_id = Some(ORG.into());
    r.board_id = Some(BOARD.into());
    r.list_id = Some(LIST.into());
    r.done_list_id = Some(DONE_LIST.into());
    r.revoke_path_confirmed = true;
    r
}

fn ready_observations() -> Observations {
    let mut o = Observations::new(
        now(),
        TokenObservation::Valid {
            permissions: vec![Permission {
                id_model: "*".into(),
                model_type: "Board".into(),
                read: true,
                write: true,
            }],
            expires_at: None,
        },
    );
    o.board = Some(BoardObservation::Found {
        name: "Security Remediation".into(),
        closed: false,
        organization_id: Some(ORG.into()),
    });
    let list = |name: &str| ListObservation::Found {
        name: name.into(),
        closed: false,
        board_id: BOARD.into(),
    };
    o.list = Some(list("To do"));
    o.done_list = Some(list("Done"));
    o.labels_readable = Some(true);
    o.members_readable = Some(true);
    o
}

/// Mostly random setups, and ready setups with a few parts swapped for random ones
/// (where the rules between states are tested hardest).
fn scenario() -> impl Strategy<Value = (ProviderRecord, Observations)> {
    prop_oneof![
        (record(), observations()),
        (
            record(),
            observations(),
            vec(prop::bool::weighted(0.15), 17)
        )
            .prop_map(|(r, o, swap)| {
                let (mut rec, mut obs) = (ready_record(), ready_observations());
                let mut i = 0..;
                let mut take = || swap[i.next().unwrap()];
                if take() {
                    rec.provider_key = r.provider_key;
                }
                if take() {
                    rec.deployment_mode = r.deployment_mode;
                }
                if take() {
                    rec.base_url = r.base_url;
                }
                if take() {
                    rec.board_id = r.board_id;
                }
                if take() {
                    rec.list_id = r.list_id;
                }
                if take() {
                    rec.done_list_id = r.done_list_id;
                }
                if take() {
                    rec.workspace_id = r.workspace_id;
                }
                if take() {
                    rec.scopes = r.scopes;
                }
                if take() {
                    rec.revoke_path_confirmed = r.revoke_path_confirmed;
                }
                if take() {
                    rec.auth_method = r.auth_method;
                }
                if take() {
                    obs.token = o.token;
                }
                if take() {
                    obs.board = o.board;
                }
                if take() {
                    obs.list = o.list;
                }
                if take() {
                    obs.done_list = o.done_list;
                }
                if take() {
                    obs.labels_readable = o.labels_readable;
                }
                if take() {
                    obs.members_readable = o.members_readable;
                }
                if take() {
                    rec.credential = r.credential;
                }
                (rec, obs)
            }),
    ]
}

/// The ready state a blocked code stands in the way of.
fn state_of(code: BlockedCode, r: &webriskops_domain::ReadyStates) -> bool {
    match code {
        BlockedCode::ProviderDeploymentUnsupported => r.cloud_target,
        BlockedCode::ProviderAuthRequired | BlockedCode::ProviderScopeUnavailable => r.scope,
        BlockedCode::DestinationBoardRequired
        | BlockedCode::BoardNotInWorkspace
        | BlockedCode::DestinationTeamRequired
        | BlockedCode::TeamNotInWorkspace => r.board,
        BlockedCode::DestinationListRequired
        | BlockedCode::ListNotOnBoard
        | BlockedCode::DestinationStateRequired
        | BlockedCode::StateNotInTeam => r.list,
        BlockedCode::RevokePathUnconfirmed => r.revoke_path,
    }
}

#[test]
fn the_near_ready_base_is_ready() {
    assert!(evaluate(&ready_record(), &ready_observations()).is_ready());
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn readiness_is_total_and_consistent((rec, obs) in scenario()) {
        let r = evaluate(&rec, &obs);
        prop_assert_eq!(&r, &evaluate(&rec, &obs), "deterministic");

        // Ready means: nothing blocked and all five ready. Saving requires all five.
        prop_assert_eq!(r.is_ready(), r.blocked.is_empty() && r.ready.all());
        if r.is_ready() {
            prop_assert!(r.ready.cloud_target && r.ready.board && r.ready.list);
            prop_assert!(r.ready.scope && r.ready.revoke_path);
        }
        // The five states and the blocked list never contradict each other.
        for b in &r.blocked {
            prop_assert!(!state_of(b.code, &r.ready), "{} while its state is ready", b.code);
            prop_assert!(!b.field.trim().is_empty());
            prop_assert!(!b.fix.trim().is_empty());
        }
        if r.ready.all() {
            prop_assert!(r.blocked.is_empty(), "{:?}", r.blocked);
        }
        // Codes come deduplicated in the order of the setup path.
        let codes = r.codes();
        let order: Vec<usize> = codes
            .iter()
            .map(|c| BlockedCode::ALL.iter().position(|x| x == c).unwrap())
            .collect();
        prop_assert!(order.windows(2).all(|w| w[0] < w[1]));

        if rec.base_url.as_deref().is_some_and(|u| !u.trim().is_empty()) {
            prop_assert!(!r.is_ready());
            prop_assert!(!r.ready.cloud_target);
            prop_assert!(r.has(BlockedCode::ProviderDeploymentUnsupported));
        }
        if rec.deployment_mode == DeploymentMode::SelfHosted {
            prop_assert!(!r.is_ready());
        }
        if !rec.revoke_path_confirmed {
            prop_assert!(!r.is_ready());
            prop_assert!(r.has(BlockedCode::RevokePathUnconfirmed));
        }
        match &obs.token {
            TokenObservation::Valid { expires_at: Some(at), .. } if *at > obs.now => {}
            TokenObservation::Valid { expires_at: None, .. } => {}
            _ => {
                prop_assert!(r.has(BlockedCode::ProviderAuthRequired));
                prop_assert!(!r.is_ready());
            }
        }
    }
}

// ---- Description ownership -----------------------------------------------------------

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn people_text_after_the_marker_survives_a_rewrite(
        f in finding_with(text_quoting_markers),
        old_title in text(1, 40),
        theirs in prop_oneof![text_quoting_markers(0, 200), "[a-z \\]\\[\n]{0,80}"],
        big in option::weighted(0.2, 0usize..20_000),
    ) {
        let card = CardExport::from_finding(&f, false);
        // The card as a previous export wrote it, then edited by people below the marker.
        let mut older = f.clone();
        older.title = old_title;
        older.description = Some("an older description".into());
        let theirs = match big {
            Some(n) => format!("{theirs}{}", "z".repeat(n)),
            None => theirs,
        };
        let existing = format!("{}{theirs}", CardExport::from_finding(&older, false).body);

        let merged = card.merged_body(&existing);
        prop_assert_eq!(split_owned(&merged).0, card.body.as_str());
        prop_assert!(tracker_len(&merged) <= TRELLO_TEXT_LIMIT);
        let kept = merged.strip_prefix(card.body.as_str()).expect("starts with the body");
        if tracker_len(&card.body) + tracker_len(&theirs) <= TRELLO_TEXT_LIMIT {
            prop_assert_eq!(kept, theirs.as_str());
        } else {
            prop_assert!(theirs.starts_with(kept));
        }
        // Rewriting again changes nothing.
        prop_assert_eq!(card.merged_body(&merged), merged);
    }
}

// ---- Duplicates ----------------------------------------------------------------------

fn item(index: usize, created_secs: u64, id: &str) -> ObservedItem {
    ObservedItem {
        item_id: ItemId::new(id).unwrap(),
        finding_id: FindingId::new("wro-f-0001").unwrap(),
        url: None,
        created_secs,
        status: TrackerStatus::Open,
        // The index tells the items apart even when id and time are equal.
        title: index.to_string(),
        body: String::new(),
        label_ids: vec![],
        member_ids: vec![],
        due: None,
        checklist_items: None,
        priority: None,
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn duplicates_keep_the_oldest_and_report_every_other_once(
        raw in vec((0u64..6, "[a-f0-9]{1,3}"), 0..12)
    ) {
        let items: Vec<ObservedItem> =
            raw.iter().enumerate().map(|(i, (t, id))| item(i, *t, id)).collect();
        let Some(res) = resolve_duplicates(items.clone()) else {
            prop_assert!(items.is_empty());
            return Ok(());
        };
        let key = |o: &ObservedItem| (o.created_secs, o.item_id.clone());
        let min = items.iter().map(key).min().unwrap();
        prop_assert_eq!(key(&res.keep), min);
        prop_assert_eq!(res.duplicates.len(), items.len() - 1);
        let mut seen: Vec<&str> = std::iter::once(&res.keep)
            .chain(&res.duplicates)
            .map(|o| o.title.as_str())
            .collect();
        seen.sort_unstable();
        let mut all: Vec<&str> = items.iter().map(|o| o.title.as_str()).collect();
        all.sort_unstable();
        prop_assert_eq!(seen, all);
    }
}
