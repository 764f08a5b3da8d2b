//! Saving a provider record and its token, only when nothing is blocked.

use webriskops_domain::{CredentialRef, ProviderRecord, Readiness, Token};
use webriskops_ports::{ProviderStore, SecretStore};

use crate::ServiceError;

/// The associated data a stored token is bound to: its tenant and provider.
pub fn secret_binding(record: &ProviderRecord) -> String {
    format!("{}/{}", record.tenant, record.provider_key)
}

/// Saves the record and then the token, refusing while anything is blocked.
///
/// The record is written first (with its credential reference) and the token only
/// after it: a crash in between leaves a record whose token is missing, which the next
/// readiness check reports as `PROVIDER_AUTH_REQUIRED` — never a token without a record.
///
/// # Errors
/// `Blocked` when the readiness is not fully ready; store errors otherwise.
pub async fn save_provider(
    store: &dyn ProviderStore,
    secrets: &dyn SecretStore,
    mut record: ProviderRecord,
    token: &Token,
    readiness: &Readiness,
) -> Result<ProviderRecord, ServiceError> {
    if !readiness.is_ready() {
        return Err(ServiceError::Blocked(Box::new(readiness.clone())));
    }
    let reference = CredentialRef::for_provider(&record.tenant, record.provider_key);
    record.credential = Some(reference.clone());
    store.save(&record).await?;
    secrets
        .put_token(&reference, &secret_binding(&record), token)
        .await?;
    Ok(record)
}
