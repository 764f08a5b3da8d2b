//! `webriskops setup trello`: walk the setup path, print every state, save when ready;
//! with `--save` on a blocked setup, keep a draft of the choices (never a token).

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;
use webriskops_domain::{AuthMethod, ProviderRecord, Token};
use webriskops_service::{
    apply_and_check, CompanionSecret, SetupChoices, SetupCredentials, SetupRequest, Tracker,
};
use webriskops_trello::{authorize_url, AuthorizeOptions, Expiration};

use super::{print_readiness, ReadinessJson};
use crate::app::{api_key_ref, App, TokenOrigin};
use crate::cli::{AuthMethodArg, SetupArgs};
use crate::error::{AppError, AppResult, Exit};
use crate::redact;

/// Stands in for the authorize URL while the JSON is redacted (the URL carries the key).
const URL_PLACEHOLDER: &str = "@@authorize-url@@";

/// A board or list to choose from.
#[derive(Debug, Serialize)]
struct Choice {
    id: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    workspace_id: Option<String>,
}

#[derive(Debug, Serialize)]
struct SetupJson<'a> {
    #[serde(flatten)]
    readiness: ReadinessJson<'a>,
    saved: bool,
    /// What is stored for the tenant after this run: `saved`, `draft` or `none`.
    record_state: &'static str,
    /// Whether this run kept a draft of the choices (blocked setup with `--save`).
    draft_kept: bool,
    record: &'a ProviderRecord,
    token_source: Option<&'static str>,
    token_expires_at: Option<DateTime<Utc>>,
    boards: Vec<Choice>,
    lists: Vec<Choice>,
    authorize_url: Option<&'static str>,
}

pub(crate) fn parse_expiration(s: &str) -> AppResult<Expiration> {
    Ok(match s.trim() {
        "1hour" => Expiration::OneHour,
        "1day" => Expiration::OneDay,
        "30days" => Expiration::ThirtyDays,
        "never" => Expiration::Never,
        other => {
            return Err(AppError::usage(format!(
                "trello.token_expiration {other:?} is not one of 1hour, 1day, 30days, never; fix the configuration"
            )))
        }
    })
}

/// The operator's choices, as the service applies them.
fn choices(args: &SetupArgs) -> SetupChoices {
    SetupChoices {
        board_id: args.board_id.clone(),
        list_id: args.list_id.clone(),
        done_list_id: args.done_list_id.clone(),
        workspace_id: args.workspace_id.clone(),
        base_url: args.base_url.clone(),
        confirm_revoke_path: args.confirm_revoke_path,
        auth_method: args.auth_method.map(|m| match m {
            AuthMethodArg::ApiKeyToken => AuthMethod::ApiKeyToken,
            AuthMethodArg::Oauth1 => AuthMethod::Oauth1,
        }),
    }
}

/// The first line of `--token-file PATH` as a credential, registered with the redactor
/// before anything else sees it; `what` names it in the error ("token", "Linear API key").
pub(crate) fn read_credential_file(path: &Path, what: &str) -> AppResult<Token> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        AppError::usage(format!(
            "cannot read --token-file {}: {e}; check the path",
            path.display()
        ))
    })?;
    let first = text.lines().next().unwrap_or_default();
    redact::register(first);
    Token::new(first).map_err(|e| {
        AppError::usage(format!(
            "--token-file {} does not hold a usable {what}: {e}",
            path.display()
        ))
    })
}

/// The token for setup: `TRELLO_TOKEN`, `--token-file`, the stored token, or a prompt.
async fn setup_token(
    app: &mut App,
    args: &SetupArgs,
    saved: Option<&ProviderRecord>,
) -> AppResult<Option<(Token, TokenOrigin)>> {
    if let Some(t) = app.env_token()? {
        return Ok(Some((t, TokenOrigin::Env)));
    }
    if let Some(p) = &args.token_file {
        return Ok(Some((read_credential_file(p, "token")?, TokenOrigin::File)));
    }
    if let Some(r) = saved {
        if let Some(t) = app.stored_token(r).await? {
            return Ok(Some((t, TokenOrigin::Stored)));
        }
    }
    if app.interactive && !app.out.json {
        let typed = rpassword::prompt_password(
            "Trello token (input hidden; press Enter to skip and see the authorize URL): ",
        )
        .map_err(|e| AppError::failed(format!("cannot read the token from the terminal: {e}")))?;
        if !typed.trim().is_empty() {
            redact::register(&typed);
            let t = Token::new(typed)
                .map_err(|e| AppError::usage(format!("the pasted token is not usable: {e}")))?;
            return Ok(Some((t, TokenOrigin::Prompt)));
        }
    }
    Ok(None)
}

/// Runs `setup trello`.
///
/// # Errors
/// Store, configuration or tracker failures; a blocked setup is not an error (exit 3).
pub async fn run(app: &mut App, args: &SetupArgs) -> AppResult<Exit> {
    let out = app.out;
    let stored_record = app.record_unchecked().await?;
    let api_root = app.api_root()?;
    // Stored credentials are only used with the root their record was saved for: setup
    // against another root needs a token (and key) given for it, and --save moves the
    // record there.
    let other_root = stored_record
        .as_ref()
        .filter(|r| app.check_root(r).is_err())
        .map(App::record_root);
    let saved_record = stored_record.clone().filter(|_| other_root.is_none());
    let key = app.api_key(saved_record.as_ref()).await?;
    let token = setup_token(app, args, saved_record.as_ref()).await?;
    let adapter = match (&key, &token) {
        (Some(k), Some((t, _))) => Some(Tracker::new(app.trello(k.clone(), t.clone())?)),
        _ => None,
    };
    // What a ready --save stores: the token, then the API key next to it.
    let credentials = match (&key, &token) {
        (Some(k), Some((t, _))) => Some(SetupCredentials {
            token: t.clone(),
            companions: vec![CompanionSecret {
                reference: api_key_ref(&app.tenant),
                secret: Token::new(k.expose())
                    .map_err(|e| AppError::failed(format!("cannot store the api key: {e}")))?,
            }],
        }),
        _ => None,
    };
    let ports = app.ports(adapter)?;
    let req = SetupRequest {
        tenancy: app.tenancy(),
        choices: choices(args),
        api_root: Some(api_root.clone()),
        save: args.save,
        credentials,
    };
    let outcome = apply_and_check(&ports, req, Utc::now()).await?;
    let record = &outcome.record;
    let readiness = &outcome.readiness;
    let (saved, draft_kept, kept_saved_record) =
        (outcome.saved, outcome.draft_kept, outcome.saved_record_kept);
    let expiration = parse_expiration(&app.settings.trello.token_expiration)?;
    let url = key.as_ref().filter(|_| token.is_none()).map(|k| {
        authorize_url(
            k,
            &AuthorizeOptions {
                expiration,
                ..AuthorizeOptions::default()
            },
        )
    });
    let boards: Vec<Choice> = outcome
        .containers
        .iter()
        .map(|b| Choice {
            id: b.id.clone(),
            name: b.name.clone(),
            workspace_id: b.organization_id.clone(),
        })
        .collect();
    let lists: Vec<Choice> = outcome
        .destinations
        .iter()
        .map(|l| Choice {
            id: l.id.clone(),
            name: l.name.clone(),
            workspace_id: None,
        })
        .collect();
    let exit = if readiness.is_ready() {
        Exit::Ok
    } else {
        Exit::Blocked
    };
    let record_state = outcome.record_state.as_str();

    if out.json {
        let doc = SetupJson {
            readiness: ReadinessJson::new(readiness, record.provider_key),
            saved,
            record_state,
            draft_kept,
            record,
            token_source: token.as_ref().map(|(_, o)| o.describe()),
            token_expires_at: record.token_expires_at,
            boards,
            lists,
            authorize_url: url.as_ref().map(|_| URL_PLACEHOLDER),
        };
        let text = serde_json::to_string_pretty(&doc)
            .map_err(|e| AppError::failed(format!("cannot serialise the setup result: {e}")))?;
        let mut text = redact::redact(&text);
        if let Some(u) = &url {
            text = text.replace(URL_PLACEHOLDER, u);
        }
        out.say_unredacted(&text);
        return Ok(exit);
    }

    out.say(format!(
        "Trello setup for tenant {} (path: cloud target → board and list → scope → revoke path)",
        app.tenant
    ));
    if let Some(old) = &other_root {
        out.say(format!(
            "The stored record belongs to {old}, not to {api_root}: its stored token and key are \
             not used here. Provide a token for {api_root} and run with --save to move the \
             record there, or unset the API root setting to keep using {old}."
        ));
    }
    match (&key, &token) {
        (None, _) => out.say(
            "No API key: set TRELLO_API_KEY to your Power-Up's API key \
             (https://trello.com/power-ups/admin) and run setup again to get the authorize URL.",
        ),
        (Some(_), None) => {
            out.say(format!(
                "No token yet. Open this URL, approve, and copy the token it shows \
                 (least privilege: scope read,write, expires {}, name WebRiskOps):",
                app.settings.trello.token_expiration
            ));
            if let Some(u) = &url {
                out.say_unredacted(&format!("  {u}"));
            }
            out.say(
                "Then pass it without putting it on the command line: \
                 TRELLO_TOKEN=<token> webriskops setup trello …, or --token-file PATH, \
                 or paste it at the prompt on a terminal.",
            );
        }
        (Some(_), Some((_, origin))) => {
            let who = outcome
                .account
                .as_ref()
                .map(|a| format!(", member {}", a.username))
                .unwrap_or_default();
            let expiry = record.token_expires_at.map_or_else(
                || "never expires".to_owned(),
                |t| format!("expires {}", t.to_rfc3339()),
            );
            out.say(format!("Token: from {}{who}, {expiry}", origin.describe()));
        }
    }
    print_readiness(&out, readiness, record);
    if !boards.is_empty() {
        out.say("Boards this token can see (choose one with --board-id):");
        for b in &boards {
            let ws = b.workspace_id.as_ref().map_or_else(
                || " (personal board)".to_owned(),
                |w| format!(" (workspace {w})"),
            );
            out.say(format!("  {}  {}{ws}", b.id, b.name));
        }
    }
    if !lists.is_empty() && (record.list_id.is_none() || !readiness.ready.list) {
        out.say("Lists on the board (choose --list-id, and --done-list-id for closed findings):");
        for l in &lists {
            out.say(format!("  {}  {}", l.id, l.name));
        }
    }
    if saved {
        out.say(format!(
            "Saved: the provider record, then the token (encrypted) in {}.",
            app.data_dir.display()
        ));
    } else if readiness.is_ready() {
        out.say("Ready. Nothing saved yet: run the same command with --save.");
    } else if draft_kept {
        let codes: Vec<&str> = readiness.codes().iter().map(|c| c.as_str()).collect();
        out.say(format!(
            "Not saved (blocked by {}): kept a draft of your choices, without any token, so that \
             `webriskops export --fallback auto` knows where the cards were meant to go. Fix the \
             blocked states above, then run again with --save to replace the draft.",
            codes.join(", ")
        ));
    } else if kept_saved_record {
        out.say(
            "Nothing saved: fix the blocked states above, then run again with --save. \
             The saved record and its token are unchanged.",
        );
    } else if args.save {
        out.say("Nothing saved: fix the blocked states above, then run again with --save.");
    } else {
        out.say("Nothing saved: fix the blocked states above (exit code 3 until then).");
    }
    Ok(exit)
}
