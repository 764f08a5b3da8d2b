//! What a multi-tenant front end keeps beside the integration: tenants, people, API
//! tokens, sessions, export jobs and the status-event log.
//!
//! Secrets never cross this port in the clear: passwords arrive as password hashes, API
//! tokens and session ids as their SHA-256 digests (hex), computed by the service.

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use webriskops_domain::{ProviderKey, Role, StatusEvent, TenantId, Token, TrackerStatus};

use crate::PortResult;

/// Who is calling: a person signed in, or an API token; always inside one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: TenantId,
    pub role: Role,
    /// The person's e-mail, or `api-token:<id>`.
    pub subject: String,
}

/// A person as stored: the password only as its hash.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: i64,
    pub tenant: TenantId,
    pub email: String,
    pub role: Role,
    pub password_hash: String,
}

impl Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// An authorization with a tracker in progress, between the redirect to the tracker and
/// its callback, which may reach any replica. Kept only until `expires_at` (minutes), and
/// used once.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingAuthorization {
    /// The SHA-256 digest (hex) of the value the callback echoes (OAuth2's `state`, or
    /// OAuth 1.0's request token).
    pub digest: String,
    pub tenant: TenantId,
    pub provider: ProviderKey,
    /// OAuth 1.0's request-token secret, needed to finish: the store keeps it sealed with
    /// its master key (as the secret store does), never in the clear.
    pub secret: Option<Token>,
    /// How the credential is obtained, recorded with the setup when it comes back
    /// (`AuthMethod::as_str`, e.g. `oauth1`).
    pub auth_method: Option<String>,
    pub expires_at: DateTime<Utc>,
}

impl Debug for PendingAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingAuthorization")
            .field("tenant", &self.tenant)
            .field("provider", &self.provider)
            .field("auth_method", &self.auth_method)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Failed sign-ins counted against one key (an e-mail's or a client address's digest)
/// since the start of its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInFailures {
    pub count: u32,
    pub since: DateTime<Utc>,
}

/// Tenants, people, API tokens and sessions.
#[async_trait]
pub trait Accounts: Send + Sync + Debug {
    /// Adds a tenant; `false` when it exists already.
    async fn add_tenant(&self, tenant: &TenantId, now: DateTime<Utc>) -> PortResult<bool>;
    /// Whether the tenant exists.
    async fn tenant_exists(&self, tenant: &TenantId) -> PortResult<bool>;
    /// Every tenant, by name.
    async fn tenants(&self) -> PortResult<Vec<TenantId>>;
    /// Adds a person, or replaces the role and password of the person with this e-mail
    /// in this tenant. E-mails are unique across tenants: `false` when the e-mail belongs
    /// to another tenant (nothing is written).
    async fn put_user(
        &self,
        tenant: &TenantId,
        email: &str,
        role: Role,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> PortResult<bool>;
    /// The person with this e-mail (compared case-insensitively).
    async fn user_by_email(&self, email: &str) -> PortResult<Option<UserRecord>>;
    /// Keeps an API token's digest; returns the token's id.
    async fn add_api_token(
        &self,
        tenant: &TenantId,
        role: Role,
        digest: &str,
        now: DateTime<Utc>,
    ) -> PortResult<i64>;
    /// The caller an API token's digest stands for.
    async fn api_token(&self, digest: &str) -> PortResult<Option<Principal>>;
    /// Starts a session for the person `user_id` until `expires_at`.
    async fn add_session(
        &self,
        digest: &str,
        user_id: i64,
        expires_at: DateTime<Utc>,
    ) -> PortResult<()>;
    /// The caller of a live session (an expired one is removed and answers `None`).
    async fn session(&self, digest: &str, now: DateTime<Utc>) -> PortResult<Option<Principal>>;
    /// Ends a session.
    async fn end_session(&self, digest: &str) -> PortResult<()>;
    /// Notes that a setup token of the tenant's provider is held (sealed in the secret
    /// store) until `expires_at`.
    async fn hold_token_until(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
        expires_at: DateTime<Utc>,
    ) -> PortResult<()>;
    /// Until when a setup token is held, if one is.
    async fn held_until(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
    ) -> PortResult<Option<DateTime<Utc>>>;
    /// Forgets that a setup token is held.
    async fn release_held(&self, tenant: &TenantId, provider: ProviderKey) -> PortResult<()>;
    /// Every tenancy whose held setup token expired at or before `now` (and is not
    /// released yet), of every tenant, for the sweep that deletes them.
    async fn expired_holds(&self, now: DateTime<Utc>) -> PortResult<Vec<(TenantId, ProviderKey)>>;
    /// Keeps the choices of a setup in progress (a JSON text), until saved.
    async fn put_pending_choices(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
        choices_json: &str,
    ) -> PortResult<()>;
    /// The choices of a setup in progress, if any.
    async fn pending_choices(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
    ) -> PortResult<Option<String>>;
    /// Forgets the choices of a setup in progress.
    async fn clear_pending_choices(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
    ) -> PortResult<()>;
    /// Keeps an authorization in progress (replacing one of the same digest), its secret
    /// sealed.
    ///
    /// # Errors
    /// A secret to seal and no master key.
    async fn put_authorization(&self, pending: &PendingAuthorization) -> PortResult<()>;
    /// Takes the authorization `digest` names: it is removed, so that of two callbacks
    /// with the same value (on any replicas) one only gets it; an expired one (at `now`)
    /// answers `None`. Expired authorizations of anyone are removed as well.
    ///
    /// # Errors
    /// Its secret cannot be opened (another master key, tampered bytes).
    async fn take_authorization(
        &self,
        digest: &str,
        now: DateTime<Utc>,
    ) -> PortResult<Option<PendingAuthorization>>;
    /// Deletes every authorization in progress (setup-page nonces among them) that expired
    /// at or before `now`, of every tenant, though no callback or form ever comes back for
    /// it; answers how many, for the sweep of expired holds.
    async fn delete_expired_authorizations(&self, now: DateTime<Utc>) -> PortResult<u64>;
    /// Counts a failed sign-in against `key`, in one step however many replicas count at
    /// once: a count whose window (`window` from its first failure) has passed starts
    /// again at 1. Answers the count now.
    async fn sign_in_failed(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: chrono::TimeDelta,
    ) -> PortResult<SignInFailures>;
    /// The failures counted against `key` in a window still open at `now`, if any.
    async fn sign_in_failures(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: chrono::TimeDelta,
    ) -> PortResult<Option<SignInFailures>>;
    /// Forgets the failures of `key` (a successful sign-in).
    async fn forget_sign_in_failures(&self, key: &str) -> PortResult<()>;
}

/// Where an export job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        Some(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "failed" => JobState::Failed,
            _ => return None,
        })
    }
}

/// An export job of a tenant, as stored. `progress` and `summary` are JSON texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportJob {
    /// Opaque, unguessable.
    pub id: String,
    pub tenant: TenantId,
    pub provider: ProviderKey,
    pub state: JobState,
    pub progress_json: String,
    pub summary_json: Option<String>,
    /// The portable bundle's directory, when the run went to the fallback.
    pub bundle_dir: Option<String>,
    /// The uploaded findings file.
    pub input_path: String,
    /// When to write the portable bundle instead: `auto`, `never` or `always` (the
    /// export's fallback policy, as its JSON names it).
    pub fallback: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Export jobs, always read within their tenant.
#[async_trait]
pub trait ExportJobs: Send + Sync + Debug {
    async fn add_job(&self, job: &ExportJob) -> PortResult<()>;
    /// Replaces the job's state, progress, summary, bundle and finish time.
    async fn update_job(&self, job: &ExportJob) -> PortResult<()>;
    /// The tenant's job `id`; `None` for an unknown id and for another tenant's alike.
    async fn job(&self, tenant: &TenantId, id: &str) -> PortResult<Option<ExportJob>>;
    /// The tenant's newest jobs first, at most `limit`.
    async fn jobs(&self, tenant: &TenantId, limit: usize) -> PortResult<Vec<ExportJob>>;
    /// Jobs left queued or running by a process that stopped (every tenant).
    async fn unfinished_jobs(&self) -> PortResult<Vec<ExportJob>>;
}

/// One status event in a tenant's log, with its cursor: the tenant's own number, 1, 2, 3…
/// in the order appended, never reused, and never counting another tenant's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    pub cursor: i64,
    pub event_json: String,
}

/// What a status event changed: the finding, its item, and the status before and after.
/// Two consecutive events of one finding that agree in all of these are one change
/// appended twice (a real change after A → B starts from B), which the log skips.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventChange {
    pub finding_id: String,
    pub item_id: String,
    pub previous: TrackerStatus,
    pub status: TrackerStatus,
}

impl EventChange {
    /// What `event` changed.
    pub fn of(event: &StatusEvent) -> Self {
        Self {
            finding_id: event.finding_id.as_str().to_owned(),
            item_id: event.item_id.as_str().to_owned(),
            previous: event.previous,
            status: event.tracker_status,
        }
    }
}

/// The tenant's status events, appended once each and read in order after a cursor.
#[async_trait]
pub trait EventLog: Send + Sync + Debug {
    /// Appends the event, which made `change`, and answers its cursor: one more than the
    /// tenant's last (1 for the tenant's first), whatever other tenants append meanwhile,
    /// so that the gaps between a tenant's cursors reveal nothing of other tenants. (A log
    /// written before this numbering keeps its old cursors; the tenant's next event
    /// follows its highest.)
    ///
    /// A repeat is not appended and answers `None`: an event whose `change` equals that of
    /// the last event of the same finding in the tenant's log (what a sync stopped between
    /// appending an event and recording it in the ledger appends again). The check and the
    /// append are one atomic step, so two appends of one change at once keep one.
    async fn append_event(
        &self,
        tenant: &TenantId,
        change: &EventChange,
        event_json: &str,
        now: DateTime<Utc>,
    ) -> PortResult<Option<i64>>;
    /// The tenant's newest events, newest first, at most `limit` (what a page shows,
    /// without reading the whole log).
    async fn latest_events(&self, tenant: &TenantId, limit: usize) -> PortResult<Vec<LoggedEvent>>;
    /// The tenant's events after `cursor`, oldest first, at most `limit`.
    async fn events_after(
        &self,
        tenant: &TenantId,
        cursor: i64,
        limit: usize,
    ) -> PortResult<Vec<LoggedEvent>>;
}

/// A webhook the server registered for a tenant's tracker, found again by the opaque id in
/// its callback URL (`<public URL>/hooks/<tracker>/<opaque id>`), and how its deliveries
/// fare. The webhook's own signing secret, when the tracker signs per webhook, is sealed
/// in the secret store, never here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRecord {
    pub opaque_id: String,
    pub tenant: TenantId,
    pub provider: ProviderKey,
    /// The tracker's id of the webhook.
    pub webhook_id: String,
    /// The callback URL exactly as registered.
    pub callback_url: String,
    /// The watched container.
    pub scope_id: String,
    pub created_at: DateTime<Utc>,
    pub last_delivery_at: Option<DateTime<Utc>>,
    /// Deliveries accepted (each delivery id once).
    pub deliveries: i64,
    /// Deliveries refused for their signature or age.
    pub rejected: i64,
}

/// The registered webhooks and the delivery ids already seen.
#[async_trait]
pub trait WebhookRegistry: Send + Sync + Debug {
    /// Keeps a registration, replacing the tenancy's earlier one.
    async fn put_hook(&self, hook: &HookRecord) -> PortResult<()>;
    /// The registration a callback's opaque id names.
    async fn hook(&self, opaque_id: &str) -> PortResult<Option<HookRecord>>;
    /// The tenancy's registration, if any.
    async fn hook_of(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
    ) -> PortResult<Option<HookRecord>>;
    /// Forgets the tenancy's registration (and its delivery ids).
    async fn delete_hook(&self, tenant: &TenantId, provider: ProviderKey) -> PortResult<()>;
    /// Records an accepted delivery; `false` when its id was seen before (a retry), in
    /// which case nothing is counted.
    async fn record_delivery(
        &self,
        opaque_id: &str,
        delivery_id: &str,
        now: DateTime<Utc>,
    ) -> PortResult<bool>;
    /// Counts a refused delivery.
    async fn record_rejection(&self, opaque_id: &str) -> PortResult<()>;
}
