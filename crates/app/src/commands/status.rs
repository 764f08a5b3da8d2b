//! `webriskops status`: the integration status, with readiness re-checked live.

use chrono::Utc;
use webriskops_domain::ProviderKey;
use webriskops_server::json::StatusJson;
use webriskops_service::status::gather;
use webriskops_service::{RunSummary, StatusRequest};

use super::print_readiness;
use crate::app::App;
use crate::error::{AppResult, Exit};

fn describe_run(run: Option<&RunSummary>) -> String {
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
    // The record is loaded here (refused when it belongs to another API root) to find its
    // credentials; without a record no credential is looked for.
    let tracker = match app.record().await? {
        Some(r) => app.tracker_for(Some(&r)).await?,
        None => None,
    };
    let ports = app.ports(tracker)?;
    let req = StatusRequest {
        tenancy: app.tenancy(),
    };
    let report = gather(&ports, &req, Utc::now()).await?;
    let record = &report.record;
    let expires = report.token_expires_at;
    let exit = if report.is_ready() {
        Exit::Ok
    } else {
        Exit::Blocked
    };
    if out.json {
        out.json_doc(&StatusJson::new(&report));
        return Ok(exit);
    }
    out.say(format!("Integration status (tenant {})", app.tenant));
    match &record {
        None => out.say(match app.provider() {
            ProviderKey::TrelloCloud => {
                "Trello: not set up. Run `webriskops setup trello` to connect a board \
                 (or `webriskops setup linear` for a Linear team)."
            }
            ProviderKey::LinearCloud => {
                "Linear: not set up. Run `webriskops setup linear` to connect a team."
            }
        }),
        Some(r) => {
            if let Some(d) = &r.draft {
                let codes: Vec<&str> = d.blocked_by.iter().map(|c| c.as_str()).collect();
                out.say(format!(
                    "Record: draft (not saved: blocked by {}); it holds the choices of that \
                     setup and no token. Fix the blocked states and run `webriskops setup {} --save`.",
                    if codes.is_empty() {
                        "a blocked setup".to_owned()
                    } else {
                        codes.join(", ")
                    },
                    r.provider_key.tracker_name()
                ));
            } else {
                out.say(format!("Record: saved, for {}", App::record_root(r)));
            }
            let credential = if r.credential.is_some() {
                "stored (encrypted)"
            } else {
                "not stored"
            };
            match r.provider_key {
                ProviderKey::TrelloCloud => out.say(format!(
                    "Trello: board {}, list {}, done list {}, workspace {}, auth {}, token {credential}",
                    r.board_id.as_deref().unwrap_or("(none)"),
                    r.list_id.as_deref().unwrap_or("(none)"),
                    r.done_list_id
                        .as_deref()
                        .unwrap_or("(archive closed cards)"),
                    r.workspace_id.as_deref().unwrap_or("(none)"),
                    r.auth_method,
                )),
                ProviderKey::LinearCloud => out.say(format!(
                    "Linear: team {}, state {}, done state {}, workspace {}, API key {credential}",
                    r.board_id.as_deref().unwrap_or("(none)"),
                    r.list_id.as_deref().unwrap_or("(none)"),
                    r.done_list_id
                        .as_deref()
                        .unwrap_or("(the team's first completed state)"),
                    r.workspace_id.as_deref().unwrap_or("(none)"),
                )),
            }
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
    print_readiness(&out, &report.readiness, &report.checked);
    out.say(format!(
        "Last export: {}",
        describe_run(report.last_export.as_ref())
    ));
    out.say(format!(
        "Last sync:   {}",
        describe_run(report.last_sync.as_ref())
    ));
    if let Some(revoke) = &report.last_revoke {
        out.say(format!("Last revoke: {}", describe_run(Some(revoke))));
    }
    Ok(exit)
}
