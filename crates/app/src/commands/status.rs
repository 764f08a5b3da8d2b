//! `webriskops status`: the integration status, with readiness re-checked live.

use chrono::{DateTime, Utc};
use serde::Serialize;
use webriskops_domain::ProviderRecord;
use webriskops_ports::{RunJournal, RunKind, RunRecord, TrackerIntrospection};
use webriskops_service::check_readiness;

use super::{print_readiness, ReadinessJson};
use crate::app::App;
use crate::error::{AppResult, Exit};

/// A run as status shows it.
#[derive(Debug, Serialize)]
pub struct RunJson {
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The run's summary (counts), when it finished.
    pub summary: Option<serde_json::Value>,
}

impl From<RunRecord> for RunJson {
    fn from(r: RunRecord) -> Self {
        Self {
            started_at: r.started_at,
            finished_at: r.finished_at,
            summary: r.summary_json.and_then(|s| serde_json::from_str(&s).ok()),
        }
    }
}

#[derive(Debug, Serialize)]
struct StatusJson<'a> {
    tenant: String,
    /// `saved`, `draft` (the choices of a blocked setup, no token) or `none`.
    record_state: &'static str,
    record: Option<&'a ProviderRecord>,
    #[serde(flatten)]
    readiness: ReadinessJson<'a>,
    token_expires_at: Option<DateTime<Utc>>,
    last_export: Option<RunJson>,
    last_sync: Option<RunJson>,
    last_revoke: Option<RunJson>,
}

fn describe_run(run: &Option<RunJson>) -> String {
    let Some(r) = run else {
        return "never".into();
    };
    let when = r.finished_at.map_or_else(
        || format!("started {} (did not finish)", r.started_at.to_rfc3339()),
        |t| t.to_rfc3339(),
    );
    match &r.summary {
        Some(serde_json::Value::Object(m)) => {
            let counts: Vec<String> = m
                .iter()
                .filter_map(|(k, v)| v.as_u64().map(|n| format!("{k} {n}")))
                .collect();
            format!("{when}: {}", counts.join(", "))
        }
        _ => when,
    }
}

/// Runs `status`.
///
/// # Errors
/// Store failures, or the tracker cannot be asked (readiness is never guessed).
pub async fn run(app: &mut App) -> AppResult<Exit> {
    let out = app.out;
    let record = app.record().await?;
    let store = app.store()?;
    let tracker = match &record {
        Some(r) => app.tracker_for(Some(r)).await?,
        None => None,
    };
    let checked = record
        .clone()
        .unwrap_or_else(|| ProviderRecord::new_trello(app.tenant.clone()));
    let check = check_readiness(
        tracker.as_deref().map(|t| t as &dyn TrackerIntrospection),
        &checked,
        Utc::now(),
    )
    .await?;
    let last = |kind| {
        let store = store.clone();
        let tenant = app.tenant.clone();
        async move { store.last_run(&tenant, kind).await }
    };
    let last_export = last(RunKind::Export).await?.map(RunJson::from);
    let last_sync = last(RunKind::Sync).await?.map(RunJson::from);
    let last_revoke = last(RunKind::Revoke).await?.map(RunJson::from);
    let expires = check
        .token
        .as_ref()
        .and_then(|t| t.expires_at)
        .or(record.as_ref().and_then(|r| r.token_expires_at));
    let exit = if check.readiness.is_ready() {
        Exit::Ok
    } else {
        Exit::Blocked
    };
    if out.json {
        out.json_doc(&StatusJson {
            tenant: app.tenant.to_string(),
            record_state: record.as_ref().map_or("none", ProviderRecord::state_name),
            record: record.as_ref(),
            readiness: (&check.readiness).into(),
            token_expires_at: expires,
            last_export,
            last_sync,
            last_revoke,
        });
        return Ok(exit);
    }
    out.say(format!("Integration status (tenant {})", app.tenant));
    match &record {
        None => out.say("Trello: not set up. Run `webriskops setup trello` to connect a board."),
        Some(r) => {
            if let Some(d) = &r.draft {
                let codes: Vec<&str> = d.blocked_by.iter().map(|c| c.as_str()).collect();
                out.say(format!(
                    "Record: draft (not saved: blocked by {}); it holds the choices of that \
                     setup and no token. Fix the blocked states and run `webriskops setup trello --save`.",
                    if codes.is_empty() {
                        "a blocked setup".to_owned()
                    } else {
                        codes.join(", ")
                    }
                ));
            } else {
                out.say(format!("Record: saved, for {}", App::record_root(r)));
            }
            out.say(format!(
                "Trello: board {}, list {}, done list {}, workspace {}, auth {}, token {}",
                r.board_id.as_deref().unwrap_or("(none)"),
                r.list_id.as_deref().unwrap_or("(none)"),
                r.done_list_id
                    .as_deref()
                    .unwrap_or("(archive closed cards)"),
                r.workspace_id.as_deref().unwrap_or("(none)"),
                r.auth_method,
                if r.credential.is_some() {
                    "stored (encrypted)"
                } else {
                    "not stored"
                },
            ));
        }
    }
    out.say(format!(
        "Token expiry: {}",
        expires.map_or_else(|| "none known".to_owned(), |t| t.to_rfc3339())
    ));
    out.say(format!(
        "Readiness (checked live at {}):",
        Utc::now().to_rfc3339()
    ));
    print_readiness(&out, &check.readiness, &checked);
    out.say(format!("Last export: {}", describe_run(&last_export)));
    out.say(format!("Last sync:   {}", describe_run(&last_sync)));
    if last_revoke.is_some() {
        out.say(format!("Last revoke: {}", describe_run(&last_revoke)));
    }
    Ok(exit)
}
