//! `webriskops setup linear`: walk Linear's setup path (cloud target → team → workflow
//! state → scope → revoke path), list the teams (and the team's states) to choose from,
//! save the record and the API key (encrypted) when ready; with `--save` on a blocked
//! setup, keep a draft of the choices (never a key).

use chrono::{DateTime, Utc};
use serde::Serialize;
use webriskops_domain::{ProviderRecord, StateCategory, Token};
use webriskops_service::{apply_and_check, SetupChoices, SetupCredentials, SetupRequest, Tracker};

use super::{print_readiness, ReadinessJson};
use crate::app::{App, TokenOrigin};
use crate::cli::LinearSetupArgs;
use crate::config::ENV_LINEAR_API_KEY;
use crate::error::{AppError, AppResult, Exit};
use crate::redact;

/// Where a personal API key is created (FACTS.md "Endpoint / auth").
const KEY_PLACE: &str = "Linear › Settings › Security & access › Personal API keys";

/// A team to choose from.
#[derive(Debug, Serialize)]
struct TeamChoice {
    id: String,
    name: String,
    workspace_id: Option<String>,
}

/// A workflow state of the chosen team.
#[derive(Debug, Serialize)]
struct StateChoice {
    id: String,
    name: String,
    category: StateCategory,
}

#[derive(Debug, Serialize)]
struct SetupLinearJson<'a> {
    #[serde(flatten)]
    readiness: ReadinessJson<'a>,
    saved: bool,
    /// What is stored for the tenant after this run: `saved`, `draft` or `none`.
    record_state: &'static str,
    /// Whether this run kept a draft of the choices (blocked setup with `--save`).
    draft_kept: bool,
    record: &'a ProviderRecord,
    /// Where the key came from: `LINEAR_API_KEY`, `--token-file`, `the stored token` or
    /// `the prompt`; `null` without a key.
    token_source: Option<&'static str>,
    token_expires_at: Option<DateTime<Utc>>,
    /// The teams the key sees, listed while no team is ready.
    teams: Vec<TeamChoice>,
    /// The chosen team's open workflow states, listed once the team is ready.
    states: Vec<StateChoice>,
}

/// The operator's choices in the record's neutral fields: the team is the container, the
/// state new issues start in the destination, the done state the done destination.
fn choices(args: &LinearSetupArgs) -> SetupChoices {
    SetupChoices {
        board_id: args.team_id.clone(),
        list_id: args.state_id.clone(),
        done_list_id: args.done_state_id.clone(),
        workspace_id: args.workspace_id.clone(),
        base_url: args.base_url.clone(),
        confirm_revoke_path: args.confirm_revoke_path,
        auth_method: None,
    }
}

/// The key for setup: `LINEAR_API_KEY`, `--token-file`, the stored key, or a prompt.
async fn setup_key(
    app: &mut App,
    args: &LinearSetupArgs,
    saved: Option<&ProviderRecord>,
) -> AppResult<Option<(Token, TokenOrigin)>> {
    if let Some(k) = app.env_linear_key()? {
        return Ok(Some((k, TokenOrigin::LinearEnv)));
    }
    if let Some(p) = &args.token_file {
        return Ok(Some((
            super::setup::read_credential_file(p, "Linear API key")?,
            TokenOrigin::File,
        )));
    }
    if let Some(r) = saved {
        if let Some(k) = app.stored_token(r).await? {
            return Ok(Some((k, TokenOrigin::Stored)));
        }
    }
    if app.interactive && !app.out.json {
        let typed = rpassword::prompt_password(format!(
            "Linear personal API key (input hidden; create one under {KEY_PLACE}; press Enter to skip): "
        ))
        .map_err(|e| AppError::failed(format!("cannot read the key from the terminal: {e}")))?;
        if !typed.trim().is_empty() {
            redact::register(&typed);
            let k = Token::new(typed)
                .map_err(|e| AppError::usage(format!("the pasted key is not usable: {e}")))?;
            return Ok(Some((k, TokenOrigin::Prompt)));
        }
    }
    Ok(None)
}

/// Runs `setup linear`.
///
/// # Errors
/// Store, configuration or Linear failures; a blocked setup is not an error (exit 3).
pub async fn run(app: &mut App, args: &LinearSetupArgs) -> AppResult<Exit> {
    let out = app.out;
    let stored_record = app.record_unchecked().await?;
    let api_url = app.api_root()?;
    // A stored key is only used with the API URL its record was saved for; --save with a
    // key given for the new URL moves the record there.
    let other_root = stored_record
        .as_ref()
        .filter(|r| app.check_root(r).is_err())
        .map(App::record_root);
    let saved_record = stored_record.clone().filter(|_| other_root.is_none());
    let key = setup_key(app, args, saved_record.as_ref()).await?;
    let adapter = match &key {
        Some((k, _)) => Some(Tracker::new(app.linear(k)?)),
        None => None,
    };
    let credentials = key.as_ref().map(|(k, _)| SetupCredentials {
        token: k.clone(),
        companions: vec![],
    });
    let ports = app.ports(adapter)?;
    let req = SetupRequest {
        tenancy: app.tenancy(),
        choices: choices(args),
        api_root: Some(api_url.clone()),
        save: args.save,
        credentials,
    };
    let outcome = apply_and_check(&ports, req, Utc::now()).await?;
    let record = &outcome.record;
    let readiness = &outcome.readiness;
    let teams: Vec<TeamChoice> = outcome
        .containers
        .iter()
        .map(|t| TeamChoice {
            id: t.id.clone(),
            name: t.name.clone(),
            workspace_id: t.organization_id.clone(),
        })
        .collect();
    let states: Vec<StateChoice> = outcome
        .destinations
        .iter()
        .map(|s| StateChoice {
            id: s.id.clone(),
            name: s.name.clone(),
            category: s.category,
        })
        .collect();
    let exit = if readiness.is_ready() {
        Exit::Ok
    } else {
        Exit::Blocked
    };

    if out.json {
        out.json_doc(&SetupLinearJson {
            readiness: ReadinessJson::new(readiness, record.provider_key),
            saved: outcome.saved,
            record_state: outcome.record_state.as_str(),
            draft_kept: outcome.draft_kept,
            record,
            token_source: key.as_ref().map(|(_, o)| o.describe()),
            token_expires_at: record.token_expires_at,
            teams,
            states,
        });
        return Ok(exit);
    }

    out.say(format!(
        "Linear setup for tenant {} (path: cloud target → team → workflow state → scope → revoke path)",
        app.tenant
    ));
    if let Some(old) = &other_root {
        out.say(format!(
            "The stored record belongs to {old}, not to {api_url}: its stored key is not used \
             here. Provide a key for {api_url} and run with --save to move the record there, \
             or unset the API URL setting to keep using {old}."
        ));
    }
    match &key {
        None => out.say(format!(
            "No API key: create a personal API key under {KEY_PLACE} and pass it without \
             putting it on the command line: {ENV_LINEAR_API_KEY}=<key> webriskops setup linear …, \
             or --token-file PATH, or paste it at the prompt on a terminal."
        )),
        Some((_, origin)) => {
            let who = outcome
                .account
                .as_ref()
                .map(|a| format!(", user {}", a.username))
                .unwrap_or_default();
            out.say(format!("API key: from {}{who}", origin.describe()));
        }
    }
    print_readiness(&out, readiness, record);
    if !teams.is_empty() {
        out.say("Teams this key can see (choose one with --team-id):");
        for t in &teams {
            out.say(format!("  {}  {}", t.id, t.name));
        }
    }
    if !states.is_empty() && (record.list_id.is_none() || !readiness.ready.list) {
        out.say(
            "Workflow states of the team (choose --state-id for new issues, and \
             --done-state-id, a completed or canceled state, for closed findings):",
        );
        for s in &states {
            out.say(format!("  {}  {} ({})", s.id, s.name, s.category.as_str()));
        }
    }
    if outcome.saved {
        out.say(format!(
            "Saved: the provider record, then the API key (encrypted) in {}.",
            app.data_dir.display()
        ));
    } else if readiness.is_ready() {
        out.say("Ready. Nothing saved yet: run the same command with --save.");
    } else if outcome.draft_kept {
        let codes: Vec<&str> = readiness.codes().iter().map(|c| c.as_str()).collect();
        out.say(format!(
            "Not saved (blocked by {}): kept a draft of your choices, without any key, so that \
             `webriskops export --fallback auto` knows where the issues were meant to go. Fix \
             the blocked states above, then run again with --save to replace the draft.",
            codes.join(", ")
        ));
    } else if outcome.saved_record_kept {
        out.say(
            "Nothing saved: fix the blocked states above, then run again with --save. \
             The saved record and its key are unchanged.",
        );
    } else {
        out.say("Nothing saved: fix the blocked states above (exit code 3 until then).");
    }
    Ok(exit)
}
