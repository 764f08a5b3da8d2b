//! Saving a provider record and its token, only when nothing is blocked; keeping a draft of
//! the choices (never a token) when setup is blocked.

use webriskops_domain::{CredentialRef, ProviderRecord, Readiness, Token};
use webriskops_ports::{ProviderStore, SecretStore};

use crate::ServiceError;

/// The associated data a stored token is bound to: its tenant, its provider and the API
/// root the record was saved for (`tenant/provider@root`). A token sealed for one root
/// therefore never opens for another, even when someone edits the record's root.
///
/// Records saved before the root was recorded (`api_root: None`) keep the binding their
/// tokens were sealed with, `tenant/provider`; they stand for the provider's default root.
pub fn secret_binding(record: &ProviderRecord) -> String {
    match &record.api_root {
        Some(root) => format!("{}/{}@{root}", record.tenant, record.provider_key),
        None => format!("{}/{}", record.tenant, record.provider_key),
    }
}

/// Saves the record and then the token, refusing while anything is blocked.
///
/// The record is written first (with its credential reference) and the token only
/// after it: a crash in between leaves a record whose token is missing, which the next
/// readiness check reports as `PROVIDER_AUTH_REQUIRED` — never a token without a record.
/// A saved record replaces any draft.
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
    record.draft = None;
    store.save(&record).await?;
    secrets
        .put_token(&reference, &secret_binding(&record), token)
        .await?;
    Ok(record)
}

/// What [`save_draft`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DraftOutcome {
    /// The draft was written (replacing an earlier draft or a record without a token).
    Kept(Box<ProviderRecord>),
    /// A saved record with a token exists; it stays as it is and no draft is written.
    SavedRecordKept,
    /// The setup chose nothing (no board, list, workspace, base URL or revoke-path
    /// confirmation): there is nothing to keep, and nothing is written.
    NothingChosen,
}

/// Whether a record holds any choice worth keeping in a draft.
fn has_choices(r: &ProviderRecord) -> bool {
    r.board_id.is_some()
        || r.list_id.is_some()
        || r.done_list_id.is_some()
        || r.workspace_id.is_some()
        || r.base_url().is_some()
        || r.revoke_path_confirmed
}

/// Keeps the choices of a blocked setup as a draft record, so that the portable fallback
/// knows the destination. The draft holds no credential reference and no expiry, and no
/// token is stored for it. A saved record that still has its token is never replaced by a
/// draft: a failed re-run of setup must not disconnect a working integration. A setup that
/// chose nothing keeps nothing.
///
/// # Errors
/// `Input` when the readiness is ready (save the record instead); store errors otherwise.
pub async fn save_draft(
    store: &dyn ProviderStore,
    record: ProviderRecord,
    readiness: &Readiness,
) -> Result<DraftOutcome, ServiceError> {
    if readiness.is_ready() {
        return Err(ServiceError::Input(
            "setup is ready: save the record with its token instead of a draft".into(),
        ));
    }
    if !has_choices(&record) {
        return Ok(DraftOutcome::NothingChosen);
    }
    let existing = store.load(&record.tenant, record.provider_key).await?;
    if existing.is_some_and(|r| !r.is_draft() && r.credential.is_some()) {
        return Ok(DraftOutcome::SavedRecordKept);
    }
    let draft = record.into_draft(readiness.codes());
    store.save(&draft).await?;
    Ok(DraftOutcome::Kept(Box::new(draft)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use webriskops_domain::TenantId;

    #[test]
    fn the_binding_names_the_api_root_and_keeps_the_old_form_for_old_records() {
        let mut rec = ProviderRecord::new_trello(TenantId::new("acme").unwrap());
        assert_eq!(secret_binding(&rec), "acme/trello_cloud");
        rec.api_root = Some("https://api.trello.com/1".into());
        let official = secret_binding(&rec);
        assert_eq!(official, "acme/trello_cloud@https://api.trello.com/1");
        rec.api_root = Some("https://attacker.example/1".into());
        assert_ne!(secret_binding(&rec), official);
    }

    mod drafts {
        use super::*;
        use webriskops_domain::{BlockedCode, BlockedState, ReadyStates, TenantId};
        use webriskops_fake::MemoryStore;

        fn blocked() -> Readiness {
            Readiness {
                ready: ReadyStates::default(),
                blocked: vec![BlockedState {
                    code: BlockedCode::ProviderScopeUnavailable,
                    field: "scopes".into(),
                    fix: "authorize a token with scope read,write".into(),
                }],
                notes: Vec::new(),
            }
        }

        fn chosen() -> ProviderRecord {
            let mut r = ProviderRecord::new_trello(TenantId::new("acme").unwrap());
            r.board_id = Some("5e9f8f8f8f8f8f8f8f8f8f01".into());
            r.revoke_path_confirmed = true;
            r
        }

        #[tokio::test]
        async fn a_blocked_setup_keeps_its_choices_without_any_credential() {
            let store = MemoryStore::new();
            let mut rec = chosen();
            rec.credential = Some(CredentialRef("acme/trello_cloud/token".into()));
            let DraftOutcome::Kept(draft) = save_draft(&store, rec, &blocked()).await.unwrap()
            else {
                panic!("a draft should be kept");
            };
            assert_eq!(draft.credential, None);
            let loaded = store
                .load(&draft.tenant, draft.provider_key)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(loaded, *draft);
            assert_eq!(
                loaded.draft.unwrap().blocked_by,
                [BlockedCode::ProviderScopeUnavailable]
            );
        }

        #[tokio::test]
        async fn a_saved_record_with_a_token_is_never_replaced_and_nothing_chosen_keeps_nothing() {
            let store = MemoryStore::new();
            let mut saved = chosen();
            saved.credential = Some(CredentialRef("acme/trello_cloud/token".into()));
            store.save(&saved).await.unwrap();
            assert_eq!(
                save_draft(&store, chosen(), &blocked()).await.unwrap(),
                DraftOutcome::SavedRecordKept
            );
            assert_eq!(
                store.load(&saved.tenant, saved.provider_key).await.unwrap(),
                Some(saved)
            );
            let empty = MemoryStore::new();
            let bare = ProviderRecord::new_trello(TenantId::new("acme").unwrap());
            assert_eq!(
                save_draft(&empty, bare.clone(), &blocked()).await.unwrap(),
                DraftOutcome::NothingChosen
            );
            assert_eq!(
                empty.load(&bare.tenant, bare.provider_key).await.unwrap(),
                None
            );
        }
    }
}
