//! Pure domain rules of the WebRiskOps tracker export.
//!
//! Nothing in this crate performs I/O, spawns tasks or knows about HTTP, SQL or
//! a particular tracker's wire format. Everything is deterministic: callers pass
//! the current time in where it matters.

pub mod access;
pub mod budget;
pub mod card;
pub mod finding;
pub mod grant;
pub mod ids;
pub mod plan;
pub mod provider;
pub mod readiness;
pub mod secret;
pub mod state;
pub mod text;

pub use access::{Action, Role};
pub use budget::{
    allot, fair_split, usage_by_owner, Allotment, GrantRow, OwnerAsk, OwnerUse, SlotRules, Waiting,
};
pub use card::{
    extract_marker, marker, route, route_item, split_owned, CardExport, CardOptions, LabelIntent,
    LabelKind, RouteTarget, RoutedField, Routing, RoutingContext, TargetState, CHECKLIST_NAME,
    MARKER_PREFIX,
};
pub use finding::{
    parse_finding, parse_value, read_document, survey, DocumentFindings, Finding, FindingError,
    FindingsFormat, JsonLines, Position, Priority, ReadLimits, Severity, Status, Survey,
};
pub use grant::{Grant, GrantScope};
pub use ids::{FindingId, IdError, ItemId, TenantId, TrelloId};
pub use plan::steps::{
    copying_pays, extract_template_marker, step_group_key, template_intact, template_marker,
    ObservedStepList, TEMPLATE_MARKER_PREFIX,
};
pub use plan::{
    changed_fields, decide, fields_to_write, resolve_duplicates, written_as_planned, ChangedField,
    DuplicateResolution, LedgerEntry, ObservedItem, PlanAction, StatusEvent, TrackerStatus,
};
pub use provider::{AuthMethod, CredentialRef, DeploymentMode, ProviderKey, ProviderRecord, Scope};
pub use readiness::{
    evaluate, BlockedCode, BlockedState, BoardObservation, ListObservation, Observations,
    Permission, Readiness, ReadyStates, TokenObservation, TrackerObservations,
};
pub use secret::{ApiKey, Token};
pub use state::StateCategory;
pub use text::{
    echo_untrusted, escape_untrusted, tracker_len, truncate_visibly, TRELLO_TEXT_LIMIT,
};
