//! Sync: compare each exported card with the tracker and emit each status change once.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use webriskops_domain::{
    extract_marker, LedgerEntry, ProviderRecord, StatusEvent, TargetState, TrackerStatus,
};
use webriskops_ports::{list_all_items, ExportLedger, LedgerScope, RemoteItem, WorkItems};

use crate::export::{status_of, ExportTarget, RequestCounts};
use crate::ServiceError;

/// What a sync saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSummary {
    /// Ledger entries compared.
    pub checked: u64,
    /// Status events emitted.
    pub events: u64,
    pub unchanged: u64,
    /// Cards carrying a marker that the ledger did not know (recorded, no event).
    pub adopted: u64,
    pub requests: RequestCounts,
}

/// Reads the destination once, emits a [`StatusEvent`] for every card whose status
/// differs from the one last recorded, then records the new statuses.
///
/// `emit` is called before the ledger is updated, so a crash in between repeats an
/// event rather than losing it (at least once; never on every run).
///
/// # Errors
/// Listing or ledger failures; an `emit` failure stops the sync without recording.
pub async fn sync(
    items: &dyn WorkItems,
    ledger: &dyn ExportLedger,
    record: &ProviderRecord,
    target: &ExportTarget,
    now: DateTime<Utc>,
    emit: &mut (dyn FnMut(&StatusEvent) -> Result<(), ServiceError> + Send),
) -> Result<SyncSummary, ServiceError> {
    let scope = LedgerScope {
        tenant: record.tenant.clone(),
        provider: record.provider_key,
        container_id: target.container_id.clone(),
    };
    let tracker = record.provider_key.tracker_name();
    let mut summary = SyncSummary::default();
    let cards = list_all_items(items, &target.container_id, true, false).await?;
    let pages = (cards.len() as u64 / u64::from(items.capabilities().max_page_size.max(1))) + 1;
    summary.requests.reads = pages;
    let entries = ledger.all(&scope).await?;
    let by_id: HashMap<&str, &RemoteItem> = cards.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut changed: Vec<LedgerEntry> = Vec::new();
    let known: std::collections::HashSet<&str> =
        entries.iter().map(|e| e.finding_id.as_str()).collect();
    for entry in &entries {
        summary.checked += 1;
        let status = by_id
            .get(entry.item_id.as_str())
            .map_or(TrackerStatus::Deleted, |c| status_of(c, target));
        match StatusEvent::on_change(entry, status, tracker, now) {
            Some(event) => {
                emit(&event)?;
                summary.events += 1;
                let mut e = entry.clone();
                e.observed = status;
                e.updated_at = now;
                changed.push(e);
            }
            None => summary.unchanged += 1,
        }
    }
    let mut adopted = std::collections::HashSet::new();
    // Listings run newest first: walking them backwards adopts the oldest card of a finding.
    for card in cards.iter().rev() {
        let Some(finding) = extract_marker(&card.body) else {
            continue;
        };
        if known.contains(finding.as_str()) || !adopted.insert(finding.clone()) {
            continue;
        }
        summary.adopted += 1;
        changed.push(LedgerEntry {
            finding_id: finding,
            item_id: card.id.clone(),
            item_url: card.url.clone(),
            fingerprint: String::new(),
            target: TargetState::Open,
            observed: status_of(card, target),
            updated_at: now,
        });
    }
    if !changed.is_empty() {
        ledger.put_many(&scope, &changed).await?;
    }
    Ok(summary)
}
