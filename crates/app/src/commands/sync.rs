//! `webriskops sync`: status events as JSON lines on stdout, each change once.

use chrono::Utc;
use webriskops_domain::{BlockedCode, StatusEvent};
use webriskops_ports::RunJournal;
use webriskops_ports::RunKind;
use webriskops_service::{blocked_code_for, sync, ExportTarget, ServiceError, SyncSummary};

use crate::app::App;
use crate::error::{AppResult, Exit};

fn blocked(app: &App, code: BlockedCode, fix: &str) -> Exit {
    if app.out.json {
        app.out.json_note(&serde_json::json!({
            "blocked": [{"code": code.as_str(), "field": "token", "fix": fix}],
        }));
    } else {
        app.out.note(format!("sync blocked: {code}: {fix}"));
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
    let Some(record) = app.record().await? else {
        let fix = "no Trello provider record: run `webriskops setup trello` first";
        return Ok((
            blocked(app, BlockedCode::DestinationBoardRequired, fix),
            None,
        ));
    };
    let Some(target) = ExportTarget::from_record(&record) else {
        let fix = "the record names no board and list: run `webriskops setup trello` again";
        return Ok((
            blocked(app, BlockedCode::DestinationListRequired, fix),
            None,
        ));
    };
    let Some(tracker) = app.tracker_for(Some(&record)).await? else {
        let fix = "no token: reconnect Trello with `webriskops setup trello` (or set TRELLO_TOKEN and TRELLO_API_KEY)";
        return Ok((blocked(app, BlockedCode::ProviderAuthRequired, fix), None));
    };
    let store = app.store()?;
    let run = store.start_run(&app.tenant, RunKind::Sync).await?;
    let mut emit = |event: &StatusEvent| -> Result<(), ServiceError> {
        out.json_line(event).map_err(|e| {
            ServiceError::Input(format!("cannot write the status event to stdout: {e}"))
        })
    };
    let result = sync(
        tracker.as_ref(),
        &store,
        &record,
        &target,
        Utc::now(),
        &mut emit,
    )
    .await;
    let mut summary = match result {
        Ok(s) => s,
        Err(ServiceError::Port(e)) if blocked_code_for(&e).is_some() => {
            let code = blocked_code_for(&e).unwrap_or(BlockedCode::ProviderAuthRequired);
            let fix = format!("{e}; reconnect Trello with `webriskops setup trello`");
            store
                .finish_run(
                    run,
                    &serde_json::json!({ "blocked": code.as_str() }).to_string(),
                )
                .await?;
            return Ok((blocked(app, code, &fix), None));
        }
        Err(e) => return Err(e.into()),
    };
    let stats = tracker.stats();
    summary.requests.reads = stats.reads;
    summary.requests.writes = stats.writes;
    summary.requests.rate_limited = stats.rate_limited_429s;
    let counts = serde_json::json!({
        "checked": summary.checked,
        "events": summary.events,
        "unchanged": summary.unchanged,
        "adopted": summary.adopted,
    });
    store.finish_run(run, &counts.to_string()).await?;
    if out.json {
        out.json_note(&summary);
    } else {
        out.note(format!(
            "sync: {} status change(s) from {} card(s) checked, {} unchanged, {} adopted from card markers; {} read(s), {} answered 429",
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
