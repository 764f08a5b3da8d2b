//! Tracker-neutral ports: the async traits adapters implement, the one typed port
//! error, and (behind the `conformance` feature) the suite every tracker adapter passes,
//! (behind `store-conformance`) the suite every store passes.
//!
//! The traits speak of containers (a Trello board, a Linear team), destinations (a
//! Trello list, a Linear workflow state) and items (a card, an issue), so that a
//! second tracker fits without changing them.

pub mod accounts;
pub mod budget;
pub mod error;
pub mod memory;
pub mod model;
pub mod queue;
pub mod retry;
pub mod source;
pub mod store;
pub mod tracker;
pub mod webhooks;

#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "store-conformance")]
pub mod store_conformance;

pub use accounts::{
    Accounts, EventChange, EventLog, ExportJob, ExportJobs, HookRecord, JobState, LoggedEvent,
    PendingAuthorization, Principal, SignInFailures, UserRecord, WebhookRegistry,
};
pub use budget::{
    BudgetAnswer, BudgetExchange, BudgetUsage, KeyScope, MemoryBudgets, OwnerUsage, OwnerView,
    Released, RequestBudgets, SlotAsk, SlotGrant,
};
pub use error::{ErrorContext, ErrorSource, PortError, PortResult};
pub use memory::MemoryLedger;
pub use model::*;
pub use queue::{Claim, JobEnd, JobKind, JobQueue, JobUploads, Lease, QueueDepth};
pub use retry::RetryPolicy;
pub use source::{FindingSource, FindingStream};
pub use store::{
    ExportLedger, IntentOutcome, JournalIntent, LedgerScope, ProviderStore, RunId, RunJournal,
    RunKind, RunRecord, SecretStore,
};
pub use tracker::{
    in_context, list_all_items, oldest_of, Tracker, TrackerIntrospection, WorkItems,
};
pub use webhooks::{
    TrackerWebhooks, WebhookEvent, WebhookHealth, WebhookRegistration, WebhookRejection,
    WebhookRequest, WebhookSecret, WebhookVerifier,
};
/// The neutral grant is the domain's; the ports carry it in [`TokenInfo`].
pub use webriskops_domain::{Grant, GrantScope};
