//! Setup over several requests, as a browser or an API client does it: hold the token a
//! person supplies (sealed, for a short while), keep the choices made so far, check
//! readiness at each step, and save (record and token) only when nothing is blocked.
//!
//! The CLI runs setup in one go ([`crate::setup::apply_and_check`]); these use cases keep
//! what a step left for the next one and then call the same function.

use chrono::{DateTime, Duration, Utc};
use webriskops_domain::{AuthMethod, CredentialRef, Token};
use webriskops_ports::Accounts;

use crate::context::{ServicePorts, Tenancy};
use crate::setup::{apply_and_check, SetupChoices, SetupCredentials, SetupOutcome, SetupRequest};
use crate::ServiceError;

/// How long a token supplied for setup is held before it is forgotten unsaved.
pub const HOLD_TTL: Duration = Duration::minutes(30);

/// Where a held setup token is sealed: apart from the saved token, so a setup in progress
/// never replaces a working one.
pub fn held_ref(who: &Tenancy) -> CredentialRef {
    CredentialRef(format!("{}/{}/held", who.tenant, who.provider))
}

fn held_binding(who: &Tenancy) -> String {
    format!("held:{}/{}", who.tenant, who.provider)
}

/// Seals `token` for the tenancy's setup until `now + HOLD_TTL`, replacing a held one.
/// The token is taken as a plain one (`api_key_token`: the authorize page's, or pasted):
/// how an earlier held token was made no longer describes it, and a flow that made it
/// otherwise (OAuth 1.0) says so in its next step.
///
/// # Errors
/// Store failures (no master key, for one).
pub async fn hold_token(
    ports: &ServicePorts,
    accounts: &dyn Accounts,
    who: &Tenancy,
    token: &Token,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, ServiceError> {
    let until = now + HOLD_TTL;
    ports
        .secrets
        .put_token(&held_ref(who), &held_binding(who), token)
        .await?;
    accounts
        .hold_token_until(&who.tenant, who.provider, until)
        .await?;
    let mut choices = pending_choices(accounts, who).await?;
    if choices.auth_method != Some(AuthMethod::ApiKeyToken) {
        choices.auth_method = Some(AuthMethod::ApiKeyToken);
        let json = serde_json::to_string(&choices)
            .map_err(|e| ServiceError::Input(format!("cannot keep the choices: {e}")))?;
        accounts
            .put_pending_choices(&who.tenant, who.provider, &json)
            .await?;
    }
    Ok(until)
}

/// The held setup token, while it has not expired; an expired one is deleted.
///
/// # Errors
/// Store failures.
pub async fn held_token(
    ports: &ServicePorts,
    accounts: &dyn Accounts,
    who: &Tenancy,
    now: DateTime<Utc>,
) -> Result<Option<Token>, ServiceError> {
    match accounts.held_until(&who.tenant, who.provider).await? {
        Some(until) if until > now => Ok(ports
            .secrets
            .get_token(&held_ref(who), &held_binding(who))
            .await?),
        Some(_) => {
            forget_held(ports, accounts, who).await?;
            Ok(None)
        }
        None => Ok(None),
    }
}

/// Deletes the held setup token.
///
/// # Errors
/// Store failures.
pub async fn forget_held(
    ports: &ServicePorts,
    accounts: &dyn Accounts,
    who: &Tenancy,
) -> Result<(), ServiceError> {
    ports.secrets.delete_token(&held_ref(who)).await?;
    accounts.release_held(&who.tenant, who.provider).await?;
    Ok(())
}

/// The choices made so far for the tenancy's setup.
///
/// # Errors
/// Store failures, or stored choices that no longer parse.
pub async fn pending_choices(
    accounts: &dyn Accounts,
    who: &Tenancy,
) -> Result<SetupChoices, ServiceError> {
    match accounts.pending_choices(&who.tenant, who.provider).await? {
        None => Ok(SetupChoices::default()),
        Some(json) => serde_json::from_str(&json).map_err(|e| {
            ServiceError::Input(format!("the setup in progress cannot be read back: {e}"))
        }),
    }
}

/// `later` over `earlier`: what `later` names replaces, the rest is kept.
pub fn merge_choices(earlier: SetupChoices, later: SetupChoices) -> SetupChoices {
    SetupChoices {
        board_id: later.board_id.or(earlier.board_id),
        list_id: later.list_id.or(earlier.list_id),
        done_list_id: later.done_list_id.or(earlier.done_list_id),
        workspace_id: later.workspace_id.or(earlier.workspace_id),
        base_url: later.base_url.or(earlier.base_url),
        confirm_revoke_path: later.confirm_revoke_path || earlier.confirm_revoke_path,
        auth_method: later.auth_method.or(earlier.auth_method),
    }
}

/// A setup step: merges `choices` into those kept so far, keeps them, and checks readiness
/// with `ports.tracker` (composed by the front end from the held or stored token). A
/// blocked step keeps a draft record of the choices (never a token), so that the portable
/// fallback knows the destination and the reason; nothing is saved.
///
/// # Errors
/// See [`apply_and_check`].
pub async fn step(
    ports: &ServicePorts,
    accounts: &dyn Accounts,
    who: &Tenancy,
    choices: SetupChoices,
    api_root: Option<String>,
    now: DateTime<Utc>,
) -> Result<SetupOutcome, ServiceError> {
    let merged = merge_choices(pending_choices(accounts, who).await?, choices);
    let json = serde_json::to_string(&merged)
        .map_err(|e| ServiceError::Input(format!("cannot keep the choices: {e}")))?;
    accounts
        .put_pending_choices(&who.tenant, who.provider, &json)
        .await?;
    let req = SetupRequest {
        tenancy: who.clone(),
        choices: merged,
        api_root,
        // A blocked step keeps its draft; a ready one saves nothing without credentials.
        save: true,
        credentials: None,
    };
    apply_and_check(ports, req, now).await
}

/// Saves the setup: the choices kept so far, checked once more with `ports.tracker`, saved
/// with `credentials` (the held token and its companions) only when nothing is blocked;
/// then the held token and the kept choices are forgotten.
///
/// # Errors
/// `Blocked` with the readiness while anything is blocked (nothing is saved); see
/// [`apply_and_check`].
pub async fn save(
    ports: &ServicePorts,
    accounts: &dyn Accounts,
    who: &Tenancy,
    credentials: SetupCredentials,
    api_root: Option<String>,
    now: DateTime<Utc>,
) -> Result<SetupOutcome, ServiceError> {
    let req = SetupRequest {
        tenancy: who.clone(),
        choices: pending_choices(accounts, who).await?,
        api_root,
        save: true,
        credentials: Some(credentials),
    };
    let outcome = apply_and_check(ports, req, now).await?;
    if !outcome.saved {
        return Err(ServiceError::Blocked(Box::new(outcome.readiness)));
    }
    forget_held(ports, accounts, who).await?;
    accounts
        .clear_pending_choices(&who.tenant, who.provider)
        .await?;
    Ok(outcome)
}
