//! Sync: compare each exported card with the tracker and emit each status change once;
//! [`run`] is the use case end to end (preconditions, journal, request counts).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use webriskops_domain::{
    BlockedCode, BlockedState, LedgerEntry, ProviderRecord, StatusEvent, TargetState, TrackerStatus,
};
use webriskops_ports::{list_all_items, ExportLedger, LedgerScope, RemoteItem, RunKind, WorkItems};

use crate::context::{ServicePorts, Tenancy};
use crate::export::{status_of, ExportTarget, RequestCounts};
use crate::{blocked_code_for, ServiceError};

/// One sync: whose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    #[serde(flatten)]
    pub tenancy: Tenancy,
    /// The front end's other way to give credentials, added to the fix when there are
    /// none (the CLI: `set TRELLO_TOKEN and TRELLO_API_KEY`).
    #[serde(default)]
    pub credential_hint: Option<String>,
}

/// The outcome of [`run`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncOutcome {
    /// The sync ran; every status change was emitted.
    Synced(SyncSummary),
    /// It could not run (no record, no destination, no credentials, or the tracker
    /// refused them midway): the state to fix, with its fix.
    Blocked(BlockedState),
}

fn token_block(code: BlockedCode, fix: String) -> SyncOutcome {
    SyncOutcome::Blocked(BlockedState {
        code,
        field: "token".into(),
        fix,
    })
}

/// Sync, end to end: checks that the tenant has a record with a destination and that
/// `ports.tracker` is there, journals the run, runs [`sync`] (calling `emit` for each
/// status event, before the ledger records it) and records its counts.
///
/// Credentials refused midway end the run, journaled as `{"blocked": CODE}`, as a
/// blocked outcome.
///
/// # Errors
/// Store failures, an `emit` failure, or a tracker failure other than refused
/// credentials (the run stays unfinished; a re-run repeats no event it recorded).
pub async fn run(
    ports: &ServicePorts,
    req: &SyncRequest,
    now: DateTime<Utc>,
    emit: &mut (dyn FnMut(&StatusEvent) -> Result<(), ServiceError> + Send),
) -> Result<SyncOutcome, ServiceError> {
    let who = &req.tenancy;
    let words = who.vocabulary();
    let (title, setup) = (words.tracker, words.setup_command);
    let Some(record) = ports.record(who).await? else {
        return Ok(token_block(
            BlockedCode::DestinationBoardRequired,
            format!("no {title} provider record: run `{setup}` first"),
        ));
    };
    let Some(target) = ExportTarget::from_record(&record) else {
        return Ok(token_block(
            BlockedCode::DestinationListRequired,
            format!(
                "the record names no {} and {}: run `{setup}` again",
                words.container, words.destination
            ),
        ));
    };
    let Some(tracker) = &ports.tracker else {
        let or = req
            .credential_hint
            .as_ref()
            .map(|h| format!(" (or {h})"))
            .unwrap_or_default();
        return Ok(token_block(
            BlockedCode::ProviderAuthRequired,
            format!(
                "no {}: reconnect {title} with `{setup}`{or}",
                words.credential
            ),
        ));
    };
    let run = ports
        .journal
        .start_run(&who.tenant, who.provider, RunKind::Sync)
        .await?;
    let result = sync(
        tracker.items.as_ref(),
        ports.ledger.as_ref(),
        &record,
        &target,
        now,
        emit,
    )
    .await;
    let mut summary = match result {
        Ok(s) => s,
        Err(ServiceError::Port(e)) if blocked_code_for(&e).is_some() => {
            let code = blocked_code_for(&e).unwrap_or(BlockedCode::ProviderAuthRequired);
            let journal = serde_json::json!({ "blocked": code.as_str() });
            ports.journal.finish_run(run, &journal.to_string()).await?;
            return Ok(token_block(
                code,
                format!("{}; reconnect {title} with `{setup}`", e.reason()),
            ));
        }
        Err(e) => return Err(e),
    };
    if let Some(counts) = tracker.request_counts() {
        summary.requests = counts;
    }
    let counts = serde_json::json!({
        "checked": summary.checked,
        "events": summary.events,
        "unchanged": summary.unchanged,
        "adopted": summary.adopted,
    });
    ports.journal.finish_run(run, &counts.to_string()).await?;
    Ok(SyncOutcome::Synced(summary))
}

/// What a sync saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSummary {
    /// Ledger entries compared.
    pub checked: u64,
    /// Status events emitted.
    pub events: u64,
    pub unchanged: u64,
    /// Items the adapter read as a finding's that the ledger did not know (recorded, no event).
    pub adopted: u64,
    pub requests: RequestCounts,
}

/// Reads the destination once, emits a [`StatusEvent`] for every card whose status
/// differs from the one last recorded, then records the new statuses.
///
/// `emit` is called before the ledger is updated, so a crash in between emits that
/// change again on the next run rather than losing it (never on every run). An event log
/// makes that exactly once by skipping a repeat: an event equal in finding, item,
/// previous and new status to the finding's last event (`EventLog::append_event`), which
/// a real change never is (after A → B the next change starts from B).
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
    let remote = list_all_items(items, &target.listing(false)).await?;
    let pages = (remote.len() as u64 / u64::from(items.capabilities().max_page_size.max(1))) + 1;
    summary.requests.reads = pages;
    let entries = ledger.all(&scope).await?;
    let by_id: HashMap<&str, &RemoteItem> = remote.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut changed: Vec<LedgerEntry> = Vec::new();
    let known: std::collections::HashSet<&str> =
        entries.iter().map(|e| e.finding_id.as_str()).collect();
    for entry in &entries {
        summary.checked += 1;
        let status = by_id
            .get(entry.item_id.as_str())
            .map_or(TrackerStatus::Deleted, |c| status_of(c));
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
    for item in remote.iter().rev() {
        let Some(finding) = item.finding_id.clone() else {
            continue;
        };
        if known.contains(finding.as_str()) || !adopted.insert(finding.clone()) {
            continue;
        }
        summary.adopted += 1;
        changed.push(LedgerEntry {
            finding_id: finding,
            item_id: item.id.clone(),
            item_url: item.url.clone(),
            fingerprint: String::new(),
            target: TargetState::Open,
            observed: status_of(item),
            updated_at: now,
        });
    }
    if !changed.is_empty() {
        ledger.put_many(&scope, &changed).await?;
    }
    Ok(summary)
}
