//! Status sync for the server: the sync use case, with every status event appended to the
//! tenant's event log (before the ledger records it, so none is lost), run on demand, on
//! a webhook hint, and on a timer as the safety net.

use chrono::Utc;
use webriskops_domain::ProviderKey;
use webriskops_service::{ServiceError, SyncOutcome, SyncRequest, Tenancy};

use crate::error::ApiError;
use crate::state::AppState;

/// Syncs one tenancy now.
///
/// # Errors
/// Store or tracker failures.
pub async fn sync_now(state: &AppState, who: &Tenancy) -> Result<SyncOutcome, ApiError> {
    let _one_at_a_time = state.jobs.tenancy(who).await;
    sync_locked(state, who).await
}

/// Syncs one tenancy whose guard the caller holds, and counts it for `/metrics`.
async fn sync_locked(state: &AppState, who: &Tenancy) -> Result<SyncOutcome, ApiError> {
    let result = sync_counted(state, who).await;
    let tracker = who.provider.tracker_name();
    let outcome = match &result {
        Ok(SyncOutcome::Synced(summary)) => {
            state.metrics.add(
                "webriskops_status_events_total",
                &[("tracker", tracker)],
                summary.events,
            );
            state.metrics.requests(who.provider, &summary.requests);
            "synced"
        }
        Ok(SyncOutcome::Blocked(_)) => "blocked",
        Err(_) => "failed",
    };
    state.metrics.inc(
        "webriskops_syncs_total",
        &[("tracker", tracker), ("outcome", outcome)],
    );
    result
}

async fn sync_counted(state: &AppState, who: &Tenancy) -> Result<SyncOutcome, ApiError> {
    let tracker = state.composer.tracker(who, None).await?;
    let ports = state.composer.local_ports().with_tracker(tracker);
    let events = state.composer.events();
    let req = SyncRequest {
        tenancy: who.clone(),
        credential_hint: Some("set it up again on /settings".into()),
    };
    // `emit` runs before the ledger records each change: the event is in the log first,
    // so a crash in between repeats an event (consumers de-duplicate on the cursor's
    // content), never loses one. The use case calls it synchronously, so the append
    // blocks this worker thread for its duration.
    let tenant = who.tenant.clone();
    let handle = tokio::runtime::Handle::current();
    let outcome = webriskops_service::sync::run(&ports, &req, Utc::now(), &mut |e| {
        let json = serde_json::to_string(e).map_err(|e| ServiceError::Input(e.to_string()))?;
        tokio::task::block_in_place(|| {
            handle.block_on(events.append_event(&tenant, &json, Utc::now()))
        })?;
        Ok(())
    })
    .await?;
    Ok(outcome)
}

/// Syncs every saved integration of every tenant, every `sync_interval`.
pub async fn poll_forever(state: AppState) {
    loop {
        tokio::time::sleep(state.config.sync_interval).await;
        let tenants = match state.composer.accounts().tenants().await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list tenants for the scheduled sync");
                continue;
            }
        };
        for tenant in tenants {
            for provider in ProviderKey::ALL.iter().copied() {
                let who = Tenancy {
                    tenant: tenant.clone(),
                    provider,
                };
                let saved = state
                    .composer
                    .local_ports()
                    .records
                    .load(&who.tenant, provider)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|r| !r.is_draft() && r.credential.is_some());
                if !saved {
                    continue;
                }
                // A tenancy busy with an export or a sync is synced at the next tick.
                let Some(_guard) = state.jobs.tenancy_if_idle(&who) else {
                    continue;
                };
                if let Err(e) = sync_locked(&state, &who).await {
                    tracing::warn!(tenant = %who.tenant, tracker = provider.tracker_name(), error = %e.message, "scheduled sync failed");
                }
            }
        }
    }
}
