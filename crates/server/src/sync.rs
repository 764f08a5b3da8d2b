//! Status sync for the server: the sync use case, with every status event appended to the
//! tenant's event log (before the ledger records it, so none is lost; the log skips the
//! repeat a stopped sync's successor emits, so none is doubled), run on demand, and
//! as a job of the queue (`JobKind::Sync`) after a webhook hint and on a schedule, the
//! safety net. Sync jobs are claimed like exports, by any replica, one job of a tenancy at
//! a time across replicas; the schedule and the deliveries only queue them.

use chrono::Utc;
use serde_json::json;
use webriskops_domain::{ProviderKey, TenantId};
use webriskops_ports::{EventChange, ExportJob, JobEnd};
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
    // so a crash in between never loses one. The next sync emits that change again, and
    // the log skips it (the finding's last event already made it): each event once. The
    // use case calls it synchronously, so the append blocks this worker thread for its
    // duration.
    let tenant = who.tenant.clone();
    let handle = tokio::runtime::Handle::current();
    let outcome = webriskops_service::sync::run(&ports, &req, Utc::now(), &mut |e| {
        let json = serde_json::to_string(e).map_err(|e| ServiceError::Input(e.to_string()))?;
        tokio::task::block_in_place(|| {
            handle.block_on(events.append_event(&tenant, &EventChange::of(e), &json, Utc::now()))
        })?;
        Ok(())
    })
    .await?;
    Ok(outcome)
}

/// Queues a sync of `who` (a webhook delivery's follow-up), joining the one that waits if
/// there is one, and wakes this process's worker. `true` when a job was added.
///
/// # Errors
/// Store failures.
pub async fn queue_sync(state: &AppState, who: &Tenancy) -> Result<bool, ApiError> {
    let added = state
        .composer
        .queue()
        .enqueue_sync(
            &crate::jobs::new_id(),
            &who.tenant,
            who.provider,
            Utc::now(),
        )
        .await?;
    state.jobs.wake();
    Ok(added)
}

/// Runs a claimed sync job: the tenancy is synced (in this process, after any export or
/// on-demand sync of it here), and the outcome becomes the job's end.
pub(crate) async fn sync_job(state: &AppState, job: &ExportJob) -> JobEnd {
    let who = Tenancy {
        tenant: job.tenant.clone(),
        provider: job.provider,
    };
    let _one_at_a_time = state.jobs.tenancy(&who).await;
    let result = sync_locked(state, &who).await;
    let (succeeded, summary) = match &result {
        Ok(SyncOutcome::Synced(s)) => (true, json!({"outcome": "synced", "events": s.events})),
        Ok(SyncOutcome::Blocked(_)) => (false, json!({"outcome": "blocked"})),
        Err(e) => {
            tracing::warn!(tenant = %who.tenant, tracker = who.provider.tracker_name(), error = %e.message, "sync job failed; the schedule tries again");
            (
                false,
                json!({"outcome": "failed", "error": {"code": e.code, "message": e.message}}),
            )
        }
    };
    JobEnd {
        succeeded,
        progress_json: "{}".into(),
        summary_json: Some(summary.to_string()),
        bundle_dir: None,
        finished_at: Utc::now(),
    }
}

/// Whether the tenancy has a saved integration with a credential (what a scheduled sync
/// needs).
async fn is_saved(state: &AppState, tenant: &TenantId, provider: ProviderKey) -> bool {
    state
        .composer
        .local_ports()
        .records
        .load(tenant, provider)
        .await
        .ok()
        .flatten()
        .is_some_and(|r| !r.is_draft() && r.credential.is_some())
}

/// The schedule: every `sync_interval`, queues a sync of every saved integration of every
/// tenant that had none queued within the interval. Every replica ticks; the store decides
/// once across them (`JobQueue::enqueue_sync_if_due`), so a tenancy gets one scheduled sync
/// per interval however many replicas run, and whichever worker claims it runs it.
///
/// Each tick also deletes the held setup tokens that expired, of every tenant, so none
/// outlives its expiry by more than an interval even if its tenant never comes back.
pub async fn poll_forever(state: AppState) {
    loop {
        tokio::time::sleep(state.config.sync_interval).await;
        schedule_once(&state).await;
        sweep_held(&state).await;
    }
}

/// Deletes the expired held setup tokens, authorizations in progress and setup-page
/// nonces (every replica may sweep; deleting twice is harmless).
pub(crate) async fn sweep_held(state: &AppState) -> webriskops_service::integration::SweptHolds {
    let c = &state.composer;
    match webriskops_service::integration::sweep_expired_holds(
        &c.local_ports(),
        c.accounts().as_ref(),
        Utc::now(),
    )
    .await
    {
        Ok(swept) => {
            if swept.tokens > 0 || swept.authorizations > 0 {
                tracing::info!(
                    tokens = swept.tokens,
                    authorizations = swept.authorizations,
                    "deleted expired held setup tokens and authorizations"
                );
            }
            swept
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot sweep expired held setup tokens and authorizations");
            Default::default()
        }
    }
}

/// One tick of the schedule. Returns how many syncs it queued.
pub(crate) async fn schedule_once(state: &AppState) -> usize {
    let tenants = match state.composer.accounts().tenants().await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list tenants for the scheduled sync");
            return 0;
        }
    };
    let queue = state.composer.queue();
    let mut queued = 0;
    for tenant in tenants {
        for provider in ProviderKey::ALL.iter().copied() {
            if !is_saved(state, &tenant, provider).await {
                continue;
            }
            match queue
                .enqueue_sync_if_due(
                    &crate::jobs::new_id(),
                    &tenant,
                    provider,
                    Utc::now(),
                    state.config.sync_interval,
                )
                .await
            {
                Ok(true) => queued += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(tenant = %tenant, tracker = provider.tracker_name(), error = %e, "cannot queue the scheduled sync");
                }
            }
        }
    }
    if queued > 0 {
        state.jobs.wake();
    }
    queued
}
