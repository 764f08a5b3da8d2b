//! The Linear GraphQL adapter's transport and operations (see `docs/linear.md`).
//!
//! - Every operation is a `.graphql` file under `graphql/`, validated against the
//!   vendored schema by `tests/schema.rs`.
//! - Credentials travel only in the `Authorization` header: a personal API key bare,
//!   an OAuth access token as `Bearer`; never in URLs, logs or error messages.
//! - Two leaky buckets per credential (requests and complexity), corrected within
//!   bounds by Linear's `X-RateLimit-*` and `X-Complexity` headers.
//! - One retry loop: `RATELIMITED` (HTTP 400) after the announced reset, 5xx and lost
//!   answers for queries only; a mutation whose answer was lost is `OutcomeUnknown` and
//!   never resent. A deadline bounds each request across its retries.
//! - One error mapping (status, then `errors[].extensions`, then text): `errors.rs`.
//! - A new issue and its attachment (the finding's canonical URL) go in one request,
//!   with a deterministic client id (`client_id.rs`).
//!
//! [`LinearAdapter`] implements the ports (`WorkItems`, `TrackerIntrospection`) on top of
//! [`LinearClient`]: teams, workflow states with categories, issues identified by their
//! finding's canonical URL ([`FindingUrl`]).

mod adapter;
mod client;
mod client_id;
mod config;
mod errors;
mod finding_url;
mod limiter;
mod oauth;
pub mod ops;
mod paging;
mod readiness;
mod secret;
mod transport;
mod webhooks;

pub use adapter::{
    label_color, state_category, LinearAdapter, LinearAdapterOptions, LABEL_COLORS, MAX_PAGE_SIZE,
};
pub use client::{
    Attachment, FindingLookup, IdOnly, Issue, IssuePage, Label, LinearClient, NamedRef, NewIssue,
    Nodes, Organization, StateDetail, StateRef, Team, TeamDetail, TeamIssuesOptions, TeamRef, User,
    Viewer, WorkflowState,
};
pub use client_id::{is_uuid_v4, issue_client_id};
pub use config::{
    is_loopback, parse_api_url, ConfigError, LinearSettings, RateLimits, RetryPolicy, API_URL_ENV,
    DEFAULT_API_URL, MAX_QUERY_COMPLEXITY,
};
pub use finding_url::{FindingUrl, DEFAULT_FINDING_URL_TEMPLATE};
pub use oauth::{
    authorize_url, authorize_url_at, check_state, revoke_access_token, AuthorizeOptions,
    AuthorizeRequest, OAuthClient, Scopes, StoredOAuth, TokenSet, AUTHORIZE_URL, REFRESH_MARGIN,
    REVOKE_URL, TOKEN_URL,
};
pub use paging::{collect_pages, Page, MAX_PAGES};
pub use readiness::{observe, CredentialFacts};
pub use secret::{Credential, LinearSecret, SecretError};
pub use transport::{RequestStats, Transport, MAX_BODY_BYTES, MAX_ERROR_BODY_BYTES};
pub use webhooks::{
    webhook_signature, LinearWebhookVerifier, DELIVERY_HEADER, MAX_WEBHOOK_AGE, SIGNATURE_HEADER,
};
