//! Use cases of the tracker export, written against the ports only: check readiness,
//! save a provider, plan and apply an export, sync status back, revoke.
//!
//! Nothing here knows HTTP, SQL or files; adapters are passed in as `Arc<dyn Port>`.

pub mod export;
pub mod progress;
pub mod readiness;
pub mod revoke;
pub mod setup;
pub mod sync;

use webriskops_domain::{BlockedCode, Readiness};
use webriskops_ports::PortError;

pub use export::{export, ExportOptions, ExportPorts, ExportSummary, ExportTarget, RequestCounts};
pub use progress::{Progress, Silent};
pub use readiness::{check_readiness, SetupCheck};
pub use revoke::{revoke, RevokeOutcome};
pub use setup::{save_provider, secret_binding};
pub use sync::{sync, SyncSummary};

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
