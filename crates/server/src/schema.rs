//! The schemas of the API's JSON answers, for the OpenAPI document. The handlers build
//! most answers as JSON values from the service's and domain's types (which know nothing of
//! OpenAPI), so these types describe those answers and are never built: the serve tests
//! check every answer they read against the schema the served document gives it, so a
//! field renamed in a handler and not here fails them.

#![allow(dead_code)]

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// One reason setup cannot continue.
#[derive(Serialize, ToSchema)]
pub struct Blocked {
    /// e.g. `PROVIDER_AUTH_REQUIRED`, `DESTINATION_BOARD_REQUIRED`.
    pub code: String,
    /// The record field (or input) to change, e.g. `board_id`, `token`.
    pub field: String,
    /// One line saying exactly what to do.
    pub fix: String,
}

/// A board or team the token sees.
#[derive(Serialize, ToSchema)]
pub struct Container {
    pub id: String,
    pub name: String,
    /// The workspace (Trello) or organization (Linear) it belongs to.
    #[schema(required = true)]
    pub workspace_id: Option<String>,
}

/// A list or workflow state.
#[derive(Serialize, ToSchema)]
pub struct Destination {
    pub id: String,
    pub name: String,
}

/// The readiness of a setup step, as `webriskops setup --json`, with the pickers named in
/// the tracker's words: `boards`/`lists` (Trello) or `teams`/`states` (Linear).
#[derive(Serialize, ToSchema)]
pub struct SetupAnswer {
    /// The five ready states, each `true` or `false`, in the tracker's words: `cloud_target`,
    /// `board`, `list`, `scope`, `revoke_path` (Trello) or `cloud_target`, `team`, `state`,
    /// `scope`, `revoke_path` (Linear).
    pub ready: BTreeMap<String, bool>,
    pub blocked: Vec<Blocked>,
    pub notes: Vec<String>,
    pub saved: bool,
    /// `saved`, `draft` (the choices of a blocked setup, no token) or `none`.
    pub record_state: String,
    pub draft_kept: bool,
    /// The integration record (choices and metadata, never the token).
    #[schema(value_type = Option<Object>, required = true)]
    pub record: Option<Value>,
    #[schema(required = true, format = DateTime)]
    pub token_expires_at: Option<String>,
    /// Until when the token held for this setup is kept.
    #[schema(required = true, format = DateTime)]
    pub token_held_until: Option<String>,
    /// Trello.
    pub boards: Option<Vec<Container>>,
    /// Trello.
    pub lists: Option<Vec<Destination>>,
    /// Linear.
    pub teams: Option<Vec<Container>>,
    /// Linear.
    pub states: Option<Vec<Destination>>,
}

/// One tracker's status, as `webriskops status --json`, with the setup in progress, the
/// webhook and the shared key budget.
#[derive(Serialize, ToSchema)]
pub struct TrackerStatus {
    pub tenant: String,
    /// `saved`, `draft` (the choices of a blocked setup, no token) or `none`.
    pub record_state: String,
    #[schema(value_type = Option<Object>, required = true)]
    pub record: Option<Value>,
    /// The five ready states, in the tracker's words (as in [`SetupAnswer`]).
    pub ready: BTreeMap<String, bool>,
    pub blocked: Vec<Blocked>,
    pub notes: Vec<String>,
    #[schema(required = true, format = DateTime)]
    pub token_expires_at: Option<String>,
    #[schema(required = true, format = DateTime)]
    pub token_held_until: Option<String>,
    /// The last export, sync and revoke runs.
    #[schema(value_type = Option<Object>, required = true)]
    pub last_export: Option<Value>,
    #[schema(value_type = Option<Object>, required = true)]
    pub last_sync: Option<Value>,
    #[schema(value_type = Option<Object>, required = true)]
    pub last_revoke: Option<Value>,
    /// Nothing blocks an export to the tracker.
    pub ready_to_export: bool,
    /// The tracker's webhook for this tenant.
    #[schema(value_type = Object)]
    pub webhook: Value,
    /// The API key's budget every replica shares: its totals and this tenant's part.
    #[schema(value_type = Option<Object>, required = true)]
    pub key_budget: Option<Value>,
}

/// One tracker's status, or why it could not be read (the other tracker's status is still
/// given).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum TrackerAnswer {
    Status(Box<TrackerStatus>),
    Error(crate::error::ErrorBody<'static>),
}

/// Each tracker's status.
#[derive(Serialize, ToSchema)]
pub struct Integrations {
    pub trello: TrackerAnswer,
    pub linear: TrackerAnswer,
}

/// `GET /api/v1/integration`.
#[derive(Serialize, ToSchema)]
pub struct IntegrationAnswer {
    pub tenant: String,
    pub integrations: Integrations,
}

/// A queued export.
#[derive(Serialize, ToSchema)]
pub struct ExportCreated {
    /// The export's id, for `GET /api/v1/exports/{id}`.
    pub id: String,
}

/// One export as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct Job {
    pub id: String,
    /// `trello` or `linear`.
    pub tracker: String,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    /// How far the export is.
    #[schema(value_type = Object)]
    pub progress: Value,
    /// When done: as `webriskops export --json`.
    #[schema(value_type = Option<Object>, required = true)]
    pub summary: Option<Value>,
    /// It wrote a portable bundle (`GET /api/v1/exports/{id}/bundle`).
    pub bundle: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(required = true, format = DateTime)]
    pub finished_at: Option<String>,
}

/// The tenant's exports, newest first.
#[derive(Serialize, ToSchema)]
pub struct ExportList {
    pub exports: Vec<Job>,
}

/// One status event and its cursor.
#[derive(Serialize, ToSchema)]
pub struct EventEntry {
    /// The tenant's own sequence: 1, 2, 3…
    pub cursor: i64,
    /// The event of the findings contract (`finding_id`, `item_id`, `previous`,
    /// `tracker_status`, …).
    #[schema(value_type = Object)]
    pub event: Value,
}

/// A page of status events.
#[derive(Serialize, ToSchema)]
pub struct EventsPage {
    pub events: Vec<EventEntry>,
    /// Pass as `after` to read on.
    pub next_cursor: i64,
}

/// What a sync saw.
#[derive(Serialize, ToSchema)]
pub struct SyncSummary {
    /// Ledger entries compared.
    pub checked: u64,
    /// Status events emitted.
    pub events: u64,
    pub unchanged: u64,
    /// Items read as a finding's that the ledger did not know (recorded, no event).
    pub adopted: u64,
    /// The requests the sync made.
    #[schema(value_type = Object)]
    pub requests: Value,
}

/// As `webriskops sync --json`: `{"synced": {…}}`, or `{"blocked": {code, field, fix}}`
/// when it could not run.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncAnswer {
    Synced(SyncSummary),
    Blocked(Blocked),
}

/// What the revoke did.
#[derive(Serialize, ToSchema)]
pub struct RevokeOutcome {
    /// The tracker confirmed the revocation.
    pub revoked_at_tracker: bool,
    /// The tracker already refused the token.
    pub already_invalid: bool,
    /// The local copy was deleted.
    pub deleted_locally: bool,
    /// The tracker offers no API to revoke this credential: a person revokes it there.
    pub revoke_unsupported: bool,
}

/// As `webriskops revoke --json`: `"nothing_to_revoke"`, or
/// `{"revoked": {"outcome", "blocked"}}`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RevokeAnswer {
    NothingToRevoke,
    Revoked {
        outcome: RevokeOutcome,
        /// The state setup is blocked by until it runs again.
        blocked: Blocked,
    },
}
