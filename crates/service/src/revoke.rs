//! Revoking the token: at the tracker first, then locally, leaving a blocked record.

use serde::Serialize;
use webriskops_domain::ProviderRecord;
use webriskops_ports::{PortError, ProviderStore, SecretStore, TrackerIntrospection};

use crate::ServiceError;

/// What revoke did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevokeOutcome {
    /// The tracker confirmed the revocation.
    pub revoked_at_tracker: bool,
    /// The tracker already refused the token (expired or revoked elsewhere).
    pub already_invalid: bool,
    /// The local copy was deleted.
    pub deleted_locally: bool,
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
    };
    if let Some(t) = tracker {
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
