//! `webriskops sync`: status events as JSON lines on stdout, each change once.

use chrono::Utc;
use webriskops_domain::{BlockedState, ProviderKey, StatusEvent};
use webriskops_service::sync::{run as run_sync, SyncOutcome, SyncRequest};
use webriskops_service::{ServiceError, SyncSummary};

use crate::app::App;
use crate::config::{ENV_API_KEY, ENV_LINEAR_API_KEY, ENV_TOKEN};
use crate::error::{AppResult, Exit};

fn blocked(app: &App, state: &BlockedState) -> Exit {
    if app.out.json {
        app.out
            .json_note(&serde_json::json!({ "blocked": [state] }));
    } else {
        app.out
            .note(format!("sync blocked: {}: {}", state.code, state.fix));
    }
    Exit::Blocked
}

/// Runs `sync`.
///
/// # Errors
/// Store or tracker failures.
pub async fn run(app: &mut App) -> AppResult<Exit> {
    Ok(sync_events(app).await?.0)
}

/// Runs a sync; the summary is returned when it ran.
///
/// # Errors
/// See [`run`].
pub async fn sync_events(app: &mut App) -> AppResult<(Exit, Option<SyncSummary>)> {
    let out = app.out;
    // The record is loaded here (refused when it belongs to another API root) to find its
    // credentials; the service decides what a missing record, destination or token means.
    let tracker = match app.record().await? {
        Some(record) => app.tracker_for(Some(&record)).await?,
        None => None,
    };
    let ports = app.ports(tracker)?;
    let req = SyncRequest {
        tenancy: app.tenancy(),
        credential_hint: Some(match app.provider() {
            ProviderKey::TrelloCloud => format!("set {ENV_TOKEN} and {ENV_API_KEY}"),
            ProviderKey::LinearCloud => format!("set {ENV_LINEAR_API_KEY}"),
        }),
    };
    let mut emit = |event: &StatusEvent| -> Result<(), ServiceError> {
        out.json_line(event).map_err(|e| {
            ServiceError::Input(format!("cannot write the status event to stdout: {e}"))
        })
    };
    let summary = match run_sync(&ports, &req, Utc::now(), &mut emit).await? {
        SyncOutcome::Blocked(state) => return Ok((blocked(app, &state), None)),
        SyncOutcome::Synced(summary) => summary,
    };
    if out.json {
        out.json_note(&summary);
    } else {
        out.note(format!(
            "sync: {} status change(s) from {} item(s) checked, {} unchanged, {} adopted by their finding identity; {} read(s), {} answered 429",
            summary.events,
            summary.checked,
            summary.unchanged,
            summary.adopted,
            summary.requests.reads,
            summary.requests.rate_limited
        ));
    }
    Ok((Exit::Ok, Some(summary)))
}
