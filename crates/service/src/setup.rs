//! The setup use case ([`apply_and_check`]): apply the operator's choices to the tenant's
//! record, check readiness live, and save the record with its token only when nothing is
//! blocked; keep a draft of the choices (never a token) when setup is blocked.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use webriskops_domain::{AuthMethod, CredentialRef, ProviderRecord, Readiness, Token};
use webriskops_ports::{Account, Container, Destination, ProviderStore, SecretStore, TokenInfo};

use crate::context::{RecordState, ServicePorts, Tenancy};
use crate::readiness::check_readiness;
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

/// The operator's choices for a setup. `None` keeps what the record holds; a blank
/// destination id clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SetupChoices {
    /// The container (Trello board) for the cards.
    pub board_id: Option<String>,
    /// The destination (Trello list) where new cards go.
    pub list_id: Option<String>,
    /// The destination for cards of closed findings.
    pub done_list_id: Option<String>,
    /// The customer-owned workspace the container must belong to.
    pub workspace_id: Option<String>,
    /// A self-hosted base URL, kept as given (readiness reports it when the provider is
    /// cloud-only).
    pub base_url: Option<String>,
    /// The operator confirms they know how to revoke the token.
    pub confirm_revoke_path: bool,
    pub auth_method: Option<AuthMethod>,
}

/// A secret saved next to the token, under the same binding (e.g. Trello's API key).
#[derive(Clone)]
pub struct CompanionSecret {
    pub reference: CredentialRef,
    pub secret: Token,
}

impl fmt::Debug for CompanionSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompanionSecret")
            .field("reference", &self.reference)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The credentials a ready setup saves: the token, then its companions.
#[derive(Debug, Clone)]
pub struct SetupCredentials {
    pub token: Token,
    pub companions: Vec<CompanionSecret>,
}

/// One setup: whose, what was chosen, and whether to save.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetupRequest {
    #[serde(flatten)]
    pub tenancy: Tenancy,
    #[serde(default)]
    pub choices: SetupChoices,
    /// The API root the record (and the token saved for it) belongs to; `None` keeps
    /// the record's.
    #[serde(default)]
    pub api_root: Option<String>,
    /// Save the record and the credentials when ready; keep a draft when blocked.
    #[serde(default)]
    pub save: bool,
    /// What a ready `save` stores. Never serialised: secrets travel apart from requests.
    #[serde(skip)]
    pub credentials: Option<SetupCredentials>,
}

/// What a setup found and did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupOutcome {
    pub readiness: Readiness,
    /// The record as checked: the stored one (or a blank one) with the choices applied,
    /// the token's expiry and the container's workspace learnt; as saved or kept as a
    /// draft when that happened.
    pub record: ProviderRecord,
    /// The record and the credentials were saved.
    pub saved: bool,
    /// A blocked `save` kept a draft of the choices.
    pub draft_kept: bool,
    /// A blocked `save` left the saved record and its token as they were.
    pub saved_record_kept: bool,
    /// What is stored for the tenant after this setup.
    pub record_state: RecordState,
    /// The token as the tracker described it, when a tracker was asked.
    pub token: Option<TokenInfo>,
    pub account: Option<Account>,
    /// Containers the credentials can see, listed when none is chosen yet.
    pub containers: Vec<Container>,
    /// Destinations of the chosen container, listed when none is chosen yet.
    pub destinations: Vec<Destination>,
}

impl SetupOutcome {
    /// Whether nothing is blocked.
    pub fn is_ready(&self) -> bool {
        self.readiness.is_ready()
    }
}

fn nonblank(v: Option<&str>) -> Option<String> {
    v.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `record` with `choices` applied. A new container forgets the workspace learnt from the
/// old one unless a workspace is chosen too.
pub fn apply_choices(mut record: ProviderRecord, choices: &SetupChoices) -> ProviderRecord {
    if let Some(container) = &choices.board_id {
        let container = nonblank(Some(container));
        if container != record.board_id && choices.workspace_id.is_none() {
            record.workspace_id = None;
        }
        record.board_id = container;
    }
    if let Some(list) = &choices.list_id {
        record.list_id = nonblank(Some(list));
    }
    if let Some(done) = &choices.done_list_id {
        record.done_list_id = nonblank(Some(done));
    }
    if let Some(ws) = &choices.workspace_id {
        record.workspace_id = nonblank(Some(ws));
    }
    if choices.base_url.is_some() {
        record.base_url.clone_from(&choices.base_url);
    }
    if choices.confirm_revoke_path {
        record.revoke_path_confirmed = true;
    }
    if let Some(m) = choices.auth_method {
        record.auth_method = m;
    }
    record
}

/// Setup, end to end: loads the tenant's record (saved or draft; a blank one when there is
/// none), applies the choices, checks readiness against `ports.tracker` at `now`, and with
/// `save`:
/// - when ready and credentials are given: saves the record, then the token, then each
///   companion secret under the record's binding ([`save_provider`]);
/// - when blocked: keeps a draft of the choices ([`save_draft`]), never replacing a saved
///   record that has its token.
///
/// # Errors
/// The tracker cannot be asked (readiness is never guessed), or a store fails. A blocked
/// setup is an outcome, not an error.
pub async fn apply_and_check(
    ports: &ServicePorts,
    req: SetupRequest,
    now: DateTime<Utc>,
) -> Result<SetupOutcome, ServiceError> {
    let stored = ports.record(&req.tenancy).await?;
    let base = stored.clone().unwrap_or_else(|| req.tenancy.blank_record());
    let mut record = apply_choices(base, &req.choices);
    if let Some(root) = &req.api_root {
        record.api_root = Some(root.clone());
    }
    let check = check_readiness(
        ports.tracker.as_ref().map(|t| t.introspection.as_ref()),
        &record,
        now,
    )
    .await?;
    if let Some(info) = &check.token {
        record.token_expires_at = info.expires_at;
    }
    if record.workspace_id.is_none() {
        record.workspace_id = check
            .container
            .as_ref()
            .and_then(|b| b.organization_id.clone())
            .or_else(|| check.observations.container_workspace(&record));
    }
    // Where closed findings go when the operator chose nothing: the provider's default
    // (Linear: the team's first completed state, which readiness names in a note), written
    // into the record so export and sync use exactly what setup showed.
    if record.done_list_id.is_none() {
        record.done_list_id = check.observations.default_done_destination();
    }
    let readiness = check.readiness;
    let mut saved = false;
    let mut draft_kept = false;
    let mut saved_record_kept = false;
    if req.save && !readiness.is_ready() {
        match save_draft(ports.records.as_ref(), record.clone(), &readiness).await? {
            DraftOutcome::Kept(draft) => {
                record = *draft;
                draft_kept = true;
            }
            DraftOutcome::SavedRecordKept => saved_record_kept = true,
            DraftOutcome::NothingChosen => {}
        }
    }
    if req.save && readiness.is_ready() {
        if let Some(creds) = &req.credentials {
            record = save_provider(
                ports.records.as_ref(),
                ports.secrets.as_ref(),
                record,
                &creds.token,
                &readiness,
            )
            .await?;
            let binding = secret_binding(&record);
            for c in &creds.companions {
                ports
                    .secrets
                    .put_token(&c.reference, &binding, &c.secret)
                    .await?;
            }
            saved = true;
        }
    }
    let record_state = if saved {
        RecordState::Saved
    } else if draft_kept {
        RecordState::Draft
    } else {
        RecordState::of(stored.as_ref())
    };
    Ok(SetupOutcome {
        readiness,
        record,
        saved,
        draft_kept,
        saved_record_kept,
        record_state,
        token: check.token,
        account: check.account,
        containers: check.containers,
        destinations: check.destinations,
    })
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
