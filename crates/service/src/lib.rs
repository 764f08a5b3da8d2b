//! Use cases of the tracker export, written against the ports only: check readiness,
//! save a provider, plan and apply an export, sync status back, revoke.
//!
//! Nothing here knows HTTP, SQL or files; adapters are passed in as `Arc<dyn Port>`.
//!
//! Every use case a front end offers is one function here, taking [`ServicePorts`] and a
//! plain-data request and returning a plain-data outcome (both serde, so that the CLI's
//! `--json` and an HTTP API share their shapes): [`setup::apply_and_check`],
//! [`export::run_export`], [`sync::run`], [`revoke::run`] and [`status::gather`]. A front
//! end parses its input into the request, resolves credentials into `ports.tracker`,
//! calls the one function and renders the outcome; it decides nothing else. A front end
//! that runs setup over several requests (the server) calls [`integration::check_step`],
//! [`integration::save_and_connect`] (save, then register the webhook),
//! [`integration::revoke_setup`] (held token, kept choices, webhook, token) and
//! [`integration::export_tracker`], handing over its credential resolution as an
//! [`integration::TrackerSource`].

pub mod accounts;
pub mod context;
pub mod export;
pub mod integration;
pub mod progress;
pub mod readiness;
pub mod revoke;
pub mod setup;
pub mod status;
pub mod sync;
pub mod webhooks;

use webriskops_domain::{BlockedCode, Readiness};
use webriskops_ports::PortError;

pub use context::{RecordState, ServicePorts, Tenancy, Tracker};
pub use export::{
    export, run_export, ExportDestination, ExportOptions, ExportOutcome, ExportPorts,
    ExportRequest, ExportResult, ExportSummary, ExportTarget, ExportVerdict, FallbackCause,
    FallbackPolicy, FallbackTrigger, PortableSpec, PortableWriter, RequestCounts,
};
pub use progress::{Progress, Silent};
pub use readiness::{check_readiness, SetupCheck};
pub use revoke::{revoke, RevokeOutcome, RevokeReport, RevokeRequest};
pub use setup::{
    apply_and_check, save_provider, secret_binding, CompanionSecret, SetupChoices,
    SetupCredentials, SetupOutcome, SetupRequest,
};
pub use status::{RunSummary, StatusReport, StatusRequest};
pub use sync::{sync, SyncOutcome, SyncRequest, SyncSummary};

/// Why a use case could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Setup is blocked; nothing was saved or written.
    #[error("setup is blocked: {}", codes(.0))]
    Blocked(Box<Readiness>),
    /// A port failed in a way the use case cannot absorb.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The input cannot be used (e.g. the findings file cannot be opened).
    #[error("{0}")]
    Input(String),
}

fn codes(r: &Readiness) -> String {
    r.codes()
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The blocked code a port error means when it stops an export midway, if any.
pub fn blocked_code_for(err: &PortError) -> Option<BlockedCode> {
    match err {
        PortError::Unauthenticated { .. } => Some(BlockedCode::ProviderAuthRequired),
        PortError::PermissionDenied { .. } => Some(BlockedCode::ProviderScopeUnavailable),
        _ => None,
    }
}
