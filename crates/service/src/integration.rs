//! Setup over several requests, as a browser or an API client does it: hold the token a
//! person supplies (sealed, for a short while), keep the choices made so far, check
//! readiness at each step, and save (record and token) only when nothing is blocked.
//!
//! The CLI runs setup in one go ([`crate::setup::apply_and_check`]); these use cases keep
//! what a step left for the next one and then call the same function.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use webriskops_domain::{AuthMethod, CredentialRef, ProviderKey, TenantId, Token};
use webriskops_ports::{
    Accounts, HookRecord, PendingAuthorization, ProviderStore, WebhookRegistry,
};

use crate::context::{ServicePorts, Tenancy, Tracker};
use crate::revoke::{RevokeReport, RevokeRequest};
use crate::setup::{
    apply_and_check, CompanionSecret, SetupChoices, SetupCredentials, SetupOutcome, SetupRequest,
};
use crate::ServiceError;

/// How a front end turns credentials into a tracker: the one thing the use cases below
/// need from it besides the ports. Its errors are the front end's own (they keep what
/// the front end knows about configuration), and carry the service's.
#[async_trait]
pub trait TrackerSource: Send + Sync {
    type Error: From<ServiceError> + Send;
    /// A tracker for `who`: with `token` when given (a token held for setup), else with
    /// the tenant's stored credentials; `None` when there are none.
    async fn tracker(
        &self,
        who: &Tenancy,
        token: Option<&Token>,
    ) -> Result<Option<Tracker>, Self::Error>;
    /// Secrets saved beside a tenant's token (Trello: the application key).
    fn companions(&self, who: &Tenancy) -> Result<Vec<CompanionSecret>, Self::Error>;
}

/// How long a token supplied for setup is held before it is forgotten unsaved.
pub const HOLD_TTL: Duration = Duration::minutes(30);

/// How long a token form shown to a person (and the authorize links returning to it)
/// stays usable.
pub const TOKEN_NONCE_TTL: Duration = Duration::hours(1);

/// What a token-form nonce is kept by: its digest together with the session that was shown
/// it and the tenancy, so that it proves the post comes from that session's own page.
fn token_nonce_digest(session: &str, who: &Tenancy, nonce: &str) -> String {
    crate::accounts::digest(&format!(
        "token-form\n{session}\n{}/{}\n{nonce}",
        who.tenant, who.provider
    ))
}

/// Issues a one-time value for the token form (and the tracker's authorize links, which
/// return the token to a page that posts it) shown to one session (`session`: the
/// session's digest), for the tenancy's setup. Kept in the store beside the
/// authorizations in progress, so that any replica can take it, until `now +
/// TOKEN_NONCE_TTL`.
///
/// # Errors
/// Store failures.
pub async fn issue_token_nonce(
    accounts: &dyn Accounts,
    session: &str,
    who: &Tenancy,
    now: DateTime<Utc>,
) -> Result<String, ServiceError> {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let nonce = hex::encode(bytes);
    accounts
        .put_authorization(&PendingAuthorization {
            digest: token_nonce_digest(session, who, &nonce),
            tenant: who.tenant.clone(),
            provider: who.provider,
            secret: None,
            auth_method: None,
            expires_at: now + TOKEN_NONCE_TTL,
        })
        .await?;
    Ok(nonce)
}

/// Takes a token form's nonce: `true` once, for the session and tenancy it was issued to,
/// before it expires; `false` for a missing, unknown, foreign, expired or used one.
///
/// # Errors
/// Store failures.
pub async fn take_token_nonce(
    accounts: &dyn Accounts,
    session: &str,
    who: &Tenancy,
    nonce: &str,
    now: DateTime<Utc>,
) -> Result<bool, ServiceError> {
    let nonce = nonce.trim();
    if nonce.is_empty() {
        return Ok(false);
    }
    Ok(accounts
        .take_authorization(&token_nonce_digest(session, who, nonce), now)
        .await?
        .is_some_and(|p| p.tenant == who.tenant && p.provider == who.provider))
}

/// Where a held setup token is sealed: apart from the saved token, so a setup in progress
/// never replaces a working one.
pub fn held_ref(who: &Tenancy) -> CredentialRef {
    CredentialRef(format!("{}/{}/held", who.tenant, who.provider))
}

/// What a held setup token is sealed to (its tenancy), so that it opens for no other.
pub fn held_binding(who: &Tenancy) -> String {
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

/// What one sweep of expired holds deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweptHolds {
    /// Held setup tokens.
    pub tokens: usize,
    /// Authorizations in progress and setup-page nonces (one is stored for every view of a
    /// setup page, and most are never posted back).
    pub authorizations: u64,
}

/// Deletes every held setup token that expired by `now`, of every tenant, without
/// waiting for its tenant to read it ([`held_token`] deletes one it finds expired too),
/// and every expired authorization in progress and setup-page nonce, which otherwise go
/// only when some authorization answer or nonce is next taken. A failure for one tenancy
/// is logged and the sweep goes on; the next sweep tries it again.
///
/// # Errors
/// The store cannot list the held tokens, or cannot delete the authorizations.
pub async fn sweep_expired_holds(
    ports: &ServicePorts,
    accounts: &dyn Accounts,
    now: DateTime<Utc>,
) -> Result<SweptHolds, ServiceError> {
    let mut swept = SweptHolds::default();
    for (tenant, provider) in accounts.expired_holds(now).await? {
        let who = Tenancy { tenant, provider };
        match forget_held(ports, accounts, &who).await {
            Ok(()) => swept.tokens += 1,
            Err(e) => {
                tracing::warn!(tenant = %who.tenant, tracker = who.provider.tracker_name(), error = %e, "cannot delete an expired held token; the next sweep tries again");
            }
        }
    }
    swept.authorizations = accounts.delete_expired_authorizations(now).await?;
    Ok(swept)
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

/// The ports of setup over several requests: the local ports (without a tracker), the
/// accounts (held tokens, kept choices) and the webhook registrations.
#[derive(Clone)]
pub struct SetupPorts {
    pub local: ServicePorts,
    pub accounts: std::sync::Arc<dyn Accounts>,
    pub webhooks: std::sync::Arc<dyn WebhookRegistry>,
}

/// A setup step as a front end runs it: the held token (else the stored one) composed
/// into a tracker by `source`, then [`step`]. Answers the outcome and until when a token
/// is held (`None` when none is).
///
/// # Errors
/// See [`step`]; `source`'s own.
pub async fn check_step<S: TrackerSource>(
    sp: &SetupPorts,
    source: &S,
    who: &Tenancy,
    choices: SetupChoices,
    api_root: Option<String>,
    now: DateTime<Utc>,
) -> Result<(SetupOutcome, Option<DateTime<Utc>>), S::Error> {
    let (local, accounts) = (&sp.local, sp.accounts.as_ref());
    let held = held_token(local, accounts, who, now).await?;
    let tracker = source.tracker(who, held.as_ref()).await?;
    let ports = local.clone().with_tracker(tracker);
    let outcome = step(&ports, accounts, who, choices, api_root, now).await?;
    let until = match held {
        Some(_) => accounts
            .held_until(&who.tenant, who.provider)
            .await
            .map_err(ServiceError::from)?,
        None => None,
    };
    Ok((outcome, until))
}

/// The token a tracker's own authorization returned (OAuth 1.0 or OAuth2),
/// as the authorization's callback hands it over: held for setup like a pasted one
/// ([`hold_token`], which takes it as a plain token), then, when the flow made it
/// otherwise (`auth_method`: OAuth 1.0), that recorded in the setup's choices by a setup
/// step ([`check_step`]), so that the saved record says how the token was obtained.
/// Answers until when the token is held.
///
/// # Errors
/// Store failures; see [`check_step`]; `source`'s own.
pub async fn hold_authorized<S: TrackerSource>(
    sp: &SetupPorts,
    source: &S,
    who: &Tenancy,
    token: &Token,
    auth_method: Option<AuthMethod>,
    api_root: Option<String>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, S::Error> {
    let until = hold_token(&sp.local, sp.accounts.as_ref(), who, token, now).await?;
    if let Some(method) = auth_method {
        let choices = SetupChoices {
            auth_method: Some(method),
            ..SetupChoices::default()
        };
        check_step(sp, source, who, choices, api_root, now).await?;
    }
    Ok(until)
}

/// What saving a setup did.
#[derive(Debug)]
pub enum SaveReport {
    /// No token is held for the setup (none was given, or it expired): nothing was
    /// checked, saved or registered.
    NoTokenHeld,
    /// Saved (record and token); `webhook` is the registration made for it, `None` when
    /// the tracker offers no webhooks or refused one (the scheduled sync covers it).
    Saved {
        outcome: Box<SetupOutcome>,
        webhook: Option<HookRecord>,
    },
}

/// Saves the setup with the held token and then registers the webhook, so status
/// changes arrive by webhook from then on: the held token is composed into a tracker by
/// `source` and saved with `source`'s companions when nothing is blocked ([`save`]); a
/// registration the tracker refuses (a callback it cannot reach) is logged and leaves
/// the scheduled sync to find the changes.
///
/// # Errors
/// `Blocked` while anything is blocked (nothing is saved); see [`save`]; `source`'s own.
pub async fn save_and_connect<S: TrackerSource>(
    sp: &SetupPorts,
    source: &S,
    who: &Tenancy,
    api_root: Option<String>,
    public_url: &str,
    now: DateTime<Utc>,
) -> Result<SaveReport, S::Error> {
    let (local, accounts, registry) = (&sp.local, sp.accounts.as_ref(), sp.webhooks.as_ref());
    let Some(token) = held_token(local, accounts, who, now).await? else {
        return Ok(SaveReport::NoTokenHeld);
    };
    let tracker = source.tracker(who, Some(&token)).await?;
    let ports = local.clone().with_tracker(tracker);
    let credentials = SetupCredentials {
        token,
        companions: source.companions(who)?,
    };
    let outcome = save(&ports, accounts, who, credentials, api_root, now).await?;
    let webhook = match crate::webhooks::connect(&ports, registry, who, public_url, now).await {
        Ok(Some(hook)) => {
            tracing::info!(tenant = %who.tenant, tracker = who.provider.tracker_name(), webhook = %hook.webhook_id, "registered the webhook");
            Some(hook)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(tenant = %who.tenant, tracker = who.provider.tracker_name(), error = %e, "the tracker refused the webhook; the scheduled sync continues");
            None
        }
    };
    Ok(SaveReport::Saved {
        outcome: Box::new(outcome),
        webhook,
    })
}

/// Revokes the tenancy's integration: forgets a held token and the setup in progress,
/// deletes the webhook (first, while the stored token can still delete it), then revokes
/// the token at the tracker and deletes it ([`crate::revoke::run`]).
///
/// # Errors
/// See [`crate::revoke::run`]; `source`'s own.
pub async fn revoke_setup<S: TrackerSource>(
    sp: &SetupPorts,
    source: &S,
    who: &Tenancy,
) -> Result<RevokeReport, S::Error> {
    let (local, accounts, registry) = (&sp.local, sp.accounts.as_ref(), sp.webhooks.as_ref());
    let tracker = source.tracker(who, None).await?;
    forget_held(local, accounts, who).await?;
    accounts
        .clear_pending_choices(&who.tenant, who.provider)
        .await
        .map_err(ServiceError::from)?;
    let ports = local.clone().with_tracker(tracker);
    crate::webhooks::disconnect(&ports, registry, who).await?;
    Ok(crate::revoke::run(
        &ports,
        &RevokeRequest {
            tenancy: who.clone(),
        },
    )
    .await?)
}

/// Which tracker an export goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportTracker {
    /// The one named, or the tenant's only one with a record (saved or a draft).
    Chosen(ProviderKey),
    /// None is named and the tenant has set up none.
    NoneSetUp,
    /// None is named and the tenant has set up more than one.
    Several,
}

/// The tracker an export goes to: `named` when given, else the one the tenant has a
/// record of (saved, or a draft the portable fallback can use).
///
/// # Errors
/// Store failures.
pub async fn export_tracker(
    records: &dyn ProviderStore,
    tenant: &TenantId,
    named: Option<ProviderKey>,
) -> Result<ExportTracker, ServiceError> {
    if let Some(p) = named {
        return Ok(ExportTracker::Chosen(p));
    }
    let mut found = Vec::new();
    for p in ProviderKey::ALL.iter().copied() {
        if records.load(tenant, p).await?.is_some() {
            found.push(p);
        }
    }
    Ok(match found.as_slice() {
        [only] => ExportTracker::Chosen(*only),
        [] => ExportTracker::NoneSetUp,
        _ => ExportTracker::Several,
    })
}
