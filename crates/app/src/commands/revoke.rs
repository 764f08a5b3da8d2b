//! `webriskops revoke`: revoke the token at the tracker (when it can be revoked there),
//! delete it locally, keep the record blocked.

use std::io::{BufRead, Write};

use serde::Serialize;
use webriskops_domain::{BlockedState, ProviderKey};
use webriskops_service::revoke::run as run_revoke;
use webriskops_service::{RevokeOutcome, RevokeReport, RevokeRequest};

use crate::app::App;
use crate::cli::RevokeArgs;
use crate::error::{AppError, AppResult, Exit};

#[derive(Debug, Serialize)]
struct RevokeJson<'a> {
    #[serde(flatten)]
    outcome: &'a RevokeOutcome,
    blocked: Vec<BlockedState>,
}

fn confirm(app: &App, container: &str) -> AppResult<bool> {
    match app.provider() {
        ProviderKey::TrelloCloud => eprint!(
            "Revoke the Trello token used for board {container}? Trello forgets it at once and exports stop until setup runs again. [y/N] "
        ),
        ProviderKey::LinearCloud => eprint!(
            "Disconnect the Linear API key used for team {container}? The local copy is deleted and exports stop until setup runs again. [y/N] "
        ),
    }
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| AppError::failed(format!("cannot read the answer: {e}")))?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

fn nothing_to_revoke(app: &App) -> Exit {
    app.out.say(format!(
        "Nothing to revoke: tenant {} has no {} provider record.",
        app.tenant,
        app.tracker_title()
    ));
    Exit::Ok
}

/// Runs `revoke`.
///
/// # Errors
/// No confirmation without a terminal (exit 2), store or tracker failures (exit 1).
pub async fn run(app: &mut App, args: RevokeArgs) -> AppResult<Exit> {
    let out = app.out;
    // The record is loaded here to ask about its board and to find its credentials.
    let Some(record) = app.record().await? else {
        return Ok(nothing_to_revoke(app));
    };
    if !args.yes {
        if !app.interactive {
            return Err(AppError::usage(
                "revoke needs confirmation and there is no terminal to ask on; pass --yes to revoke without asking",
            ));
        }
        if !confirm(app, record.board_id.as_deref().unwrap_or("(none)"))? {
            out.say("Not revoked.");
            return Ok(Exit::Ok);
        }
    }
    let token = match app.stored_token(&record).await? {
        Some(t) => Some(t),
        None => app.env_credential()?.map(|(t, _)| t),
    };
    let key = match app.provider() {
        ProviderKey::TrelloCloud => app.api_key(Some(&record)).await?,
        ProviderKey::LinearCloud => None,
    };
    let tracker = match (app.provider(), key, token) {
        (ProviderKey::TrelloCloud, None, Some(_)) => {
            return Err(AppError::failed(
                "cannot revoke the token at Trello without the API key: set TRELLO_API_KEY and run revoke again",
            ))
        }
        (_, key, Some(t)) => app.adapter(key, &t)?,
        _ => None,
    };
    let ports = app.ports(tracker)?;
    let req = RevokeRequest {
        tenancy: app.tenancy(),
    };
    let (outcome, blocked) = match run_revoke(&ports, &req).await? {
        RevokeReport::Revoked { outcome, blocked } => (outcome, blocked),
        RevokeReport::NothingToRevoke => return Ok(nothing_to_revoke(app)),
    };
    if out.json {
        out.json_doc(&RevokeJson {
            outcome: &outcome,
            blocked: vec![blocked],
        });
        return Ok(Exit::Ok);
    }
    let tracker = app.tracker_title();
    if outcome.revoked_at_tracker {
        out.say(format!(
            "Revoked the token at {tracker}: it no longer works anywhere{}.",
            if app.provider() == ProviderKey::TrelloCloud {
                " (its webhooks go with it)"
            } else {
                ""
            }
        ));
    } else if outcome.already_invalid {
        out.say(format!("{tracker} already refused the token (expired or revoked elsewhere); nothing to revoke there."));
    } else if outcome.revoke_unsupported {
        out.say(format!(
            "{tracker} offers no API to revoke this credential, so nothing was sent: {}",
            match app.provider() {
                ProviderKey::LinearCloud => "delete the personal API key in Linear under Settings › Security & access to make it stop working.",
                ProviderKey::TrelloCloud => "revoke it in Trello under account settings › Applications.",
            }
        ));
    } else {
        out.say(format!(
            "No token was stored, so nothing was sent to {tracker}."
        ));
    }
    if outcome.deleted_locally {
        out.say("Deleted the encrypted local copy of the token.");
    }
    out.say(format!(
        "The provider record stays, blocked with {} until you {}.",
        blocked.code,
        blocked
            .fix
            .trim_start_matches(&format!("reconnect {tracker}: "))
    ));
    Ok(Exit::Ok)
}
