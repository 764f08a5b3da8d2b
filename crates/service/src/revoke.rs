//! Revoking the token: at the tracker first, then locally, leaving a blocked record;
//! [`run`] is the use case end to end (journaled).

use serde::{Deserialize, Serialize};
use webriskops_domain::{BlockedCode, BlockedState, ProviderRecord};
use webriskops_ports::{PortError, ProviderStore, RunKind, SecretStore, TrackerIntrospection};

use crate::context::{ServicePorts, Tenancy};
use crate::ServiceError;

/// What revoke did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeOutcome {
    /// The tracker confirmed the revocation.
    pub revoked_at_tracker: bool,
    /// The tracker already refused the token (expired or revoked elsewhere).
    pub already_invalid: bool,
    /// The local copy was deleted.
    pub deleted_locally: bool,
    /// The tracker offers no API to revoke this credential (`capabilities().revoke` is
    /// false, e.g. a personal API key): nothing was sent, and a person revokes it in the
    /// tracker's settings.
    #[serde(default)]
    pub revoke_unsupported: bool,
}

/// Revokes the token at the tracker, deletes the stored copy and clears the record's
/// credential reference, so the record reads `PROVIDER_AUTH_REQUIRED` afterwards.
///
/// # Errors
/// A tracker failure other than "token already invalid" stops before anything local
/// changes, so the operator can retry.
pub async fn revoke(
    tracker: Option<&dyn TrackerIntrospection>,
    store: &dyn ProviderStore,
    secrets: &dyn SecretStore,
    mut record: ProviderRecord,
) -> Result<RevokeOutcome, ServiceError> {
    let mut outcome = RevokeOutcome {
        revoked_at_tracker: false,
        already_invalid: false,
        deleted_locally: false,
        revoke_unsupported: false,
    };
    if let Some(t) = tracker.filter(|t| {
        outcome.revoke_unsupported = !t.capabilities().revoke;
        !outcome.revoke_unsupported
    }) {
        match t.revoke_token().await {
            Ok(()) => outcome.revoked_at_tracker = true,
            Err(PortError::Unauthenticated { .. }) => outcome.already_invalid = true,
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(reference) = record.credential.take() {
        secrets.delete_token(&reference).await?;
        outcome.deleted_locally = true;
    }
    record.token_expires_at = None;
    store.save(&record).await?;
    Ok(outcome)
}

/// One revoke: whose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeRequest {
    #[serde(flatten)]
    pub tenancy: Tenancy,
}

/// The outcome of [`run`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReport {
    /// The tenant has no record: nothing was sent or changed.
    NothingToRevoke,
    /// The token was revoked (or found already invalid) and deleted; the record stays,
    /// blocked by `blocked` until setup runs again.
    Revoked {
        outcome: RevokeOutcome,
        blocked: BlockedState,
    },
}

/// Revoke, end to end: loads the tenant's record, journals the run, revokes the token at
/// `ports.tracker` (when the front end found one; without a token nothing is sent), deletes
/// the stored copy and clears the record's credential ([`revoke`]), and records what it
/// did.
///
/// # Errors
/// Store failures; a tracker failure other than "token already invalid" stops before
/// anything local changes (the run stays unfinished), so the operator can retry.
pub async fn run(ports: &ServicePorts, req: &RevokeRequest) -> Result<RevokeReport, ServiceError> {
    let who = &req.tenancy;
    let words = who.vocabulary();
    let Some(record) = ports.record(who).await? else {
        return Ok(RevokeReport::NothingToRevoke);
    };
    let run = ports
        .journal
        .start_run(&who.tenant, who.provider, RunKind::Revoke)
        .await?;
    let outcome = revoke(
        ports.tracker.as_ref().map(|t| t.introspection.as_ref()),
        ports.records.as_ref(),
        ports.secrets.as_ref(),
        record,
    )
    .await?;
    let summary = serde_json::to_string(&outcome).unwrap_or_default();
    ports.journal.finish_run(run, &summary).await?;
    Ok(RevokeReport::Revoked {
        outcome,
        blocked: BlockedState {
            code: BlockedCode::ProviderAuthRequired,
            field: "token".into(),
            fix: format!(
                "reconnect {}: run `{}` with a new {}",
                words.tracker, words.setup_command, words.credential
            ),
        },
    })
}
