//! Helpers shared by the bundle and port tests: cards built the way the export builds them.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use webriskops_domain::{
    route, BlockedCode, BlockedState, CardExport, Finding, FindingId, ProviderRecord,
    RoutingContext, Severity, TenantId, CHECKLIST_NAME,
};
use webriskops_portable::{
    sha256_hex, FallbackCause, PortableExport, PortableOptions, RecordSummary,
};
use webriskops_ports::{NewItem, Placement, WorkItems};

pub fn created_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap()
}

pub fn record() -> ProviderRecord {
    let mut r = ProviderRecord::new_trello(TenantId::new("acme").unwrap());
    r.board_id = Some("5e9f8f8f8f8f8f8f8f8f8f01".into());
    r.list_id = Some("5e9f8f8f8f8f8f8f8f8f8f02".into());
    r
}

pub fn options(out_dir: &Path) -> PortableOptions {
    PortableOptions {
        out_dir: out_dir.to_owned(),
        source_checksum: sha256_hex(&b"findings"[..]).unwrap(),
        record_summary: Some(RecordSummary::from(&record())),
        fallback: FallbackCause::Blocked(vec![BlockedState {
            code: BlockedCode::ProviderScopeUnavailable,
            field: "token".into(),
            fix: "create a token with read,write scope or use the portable export".into(),
        }]),
        created_at: created_at(),
        ..Default::default()
    }
}

/// A finding with every field the card uses.
pub fn finding(id: &str, title: &str) -> Finding {
    let mut f = Finding::minimal(FindingId::new(id).unwrap(), title, Severity::High);
    f.component = Some("storefront".into());
    f.assignee = Some("jdoe".into());
    f.due = NaiveDate::from_ymd_opt(2025, 3, 1);
    f.description = Some(format!("Details of {id}."));
    f.remediation_steps = vec!["Encode output".into(), "Add CSP".into()];
    f.tags = vec!["pci".into()];
    f
}

/// The create request the export service sends a write-only tracker for `f`.
pub fn new_item(f: &Finding) -> (NewItem, Vec<String>) {
    let card = CardExport::from_finding(f, false);
    let routing = route(&card, &RoutingContext::default());
    let item = NewItem {
        finding_id: card.finding_id.clone(),
        destination_id: "5e9f8f8f8f8f8f8f8f8f8f02".into(),
        title: card.title.clone(),
        body: card.body.clone(),
        label_ids: vec![],
        member_ids: vec![],
        due: card.due,
        placement: Placement::Bottom,
        label_names: card.labels.iter().map(|l| l.name.clone()).collect(),
        assignee: card.assignee.clone(),
        notes: routing.notes,
        target: card.target,
        priority: None,
    };
    (item, card.checklist)
}

/// Drives the port the way the export service does: create, checklist, steps, flush.
pub async fn export(
    opts: PortableOptions,
    findings: &[Finding],
) -> Result<(), webriskops_ports::PortError> {
    let exp = PortableExport::new(opts).expect("options are valid");
    for f in findings {
        let (item, steps) = new_item(f);
        let created = exp.create_item(&item).await?;
        if !steps.is_empty() {
            let list = exp.create_checklist(&created.id, CHECKLIST_NAME).await?;
            for (i, step) in steps.iter().enumerate() {
                exp.add_check_item(&list.id, step, i as u32 + 1).await?;
            }
        }
    }
    exp.flush().await
}

/// Every file under `dir`, by path relative to it, with its bytes.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// Names in a directory, sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
