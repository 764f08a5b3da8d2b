//! Webhooks, tracker-neutral: registering a callback with a tracker, deleting it, and
//! verifying what arrives at the callback.
//!
//! A delivery is a *hint*: it names the item that changed, and the receiver reads the
//! item again through [`crate::WorkItems`] before it reports anything. Verification is a
//! pure function of the request (headers, raw body, the callback URL it arrived at) and
//! the time, so that a receiver checks it before it parses or stores anything, and a
//! rejected request changes nothing.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::PortResult;

/// A secret a tracker signs deliveries with, or the receiver verifies them with. Never
/// printed: `Debug` and `Display` redact it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        WebhookSecret(value.into())
    }

    /// The secret value, for the one place that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

impl fmt::Display for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted webhook secret>")
    }
}

/// A webhook the tracker now holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRegistration {
    /// The tracker's id of the webhook (what [`TrackerWebhooks::delete`] takes).
    pub id: String,
    /// The secret deliveries of this webhook are signed with, when the tracker signs
    /// per webhook; `None` when it signs with the application's own secret, which the
    /// receiver already holds.
    pub secret: Option<WebhookSecret>,
    /// The callback URL exactly as registered (signatures may cover it).
    pub callback_url: String,
    /// The watched container's id.
    pub scope_id: String,
}

/// How a registered webhook fares, as the tracker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookHealth {
    /// The tracker still delivers to it (false: deactivated after failures, or disabled).
    pub active: bool,
    /// Failed deliveries in a row, when the tracker reports them.
    pub consecutive_failures: Option<u32>,
}

/// Registers and deletes webhooks with a tracker, for the credentials the adapter
/// holds.
#[async_trait]
pub trait TrackerWebhooks: Send + Sync + fmt::Debug {
    /// Registers `callback_url` to hear of changes to the items of `scope_id` (a
    /// container id). The tracker may call the URL before it answers, so it must be
    /// reachable. Whether registering the same callback for the same scope twice gives
    /// the existing registration or a second one is the tracker's: a caller replacing a
    /// registration deletes the old one.
    ///
    /// # Errors
    /// `InvalidInput` when the tracker refused the callback (unreachable, not 200) or the
    /// scope; `Unauthenticated`/`PermissionDenied` for the credentials; transport errors.
    async fn register(&self, scope_id: &str, callback_url: &str)
        -> PortResult<WebhookRegistration>;

    /// Deletes a webhook. Deleting one that is already gone succeeds.
    ///
    /// # Errors
    /// `Unauthenticated`/`PermissionDenied` for the credentials; transport errors.
    async fn delete(&self, id: &str) -> PortResult<()>;

    /// The webhook's health; `None` when the tracker no longer has it (deleted, e.g.
    /// after the callback answered 410 or the credentials were revoked).
    ///
    /// # Errors
    /// `Unauthenticated`/`PermissionDenied` for the credentials; transport errors.
    async fn health(&self, id: &str) -> PortResult<Option<WebhookHealth>>;
}

/// One request as it reached the callback: what [`WebhookVerifier::verify`] reads.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    /// Header names and values as received (names compared case-insensitively).
    pub headers: &'a [(String, String)],
    /// The body, byte for byte, never re-serialized.
    pub raw_body: &'a [u8],
    /// The callback URL as registered (not as rebuilt from the request line).
    pub callback_url: &'a str,
    /// The receiver's clock.
    pub now: DateTime<Utc>,
}

impl WebhookRequest<'_> {
    /// The first header called `name` (case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a verified delivery says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// The id to de-duplicate on: the same delivery retried carries the same id.
    pub delivery_id: String,
    /// The item to read again, when the event concerns one.
    pub item_id: Option<String>,
    /// The tracker's own word for what happened (e.g. its action or event type).
    pub kind: String,
}

/// Why a delivery was refused. The receiver answers 401 and changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookRejection {
    /// No signature header.
    #[error("the request carries no signature")]
    MissingSignature,
    /// The signature does not match the body (and callback URL) under the secret.
    #[error("the signature does not match")]
    BadSignature,
    /// Signed correctly but too old (or too far in the future): a replay.
    #[error("the delivery is {age:?} away from now, beyond the {limit:?} allowed")]
    Stale { age: Duration, limit: Duration },
    /// Signed correctly but not a delivery this receiver understands.
    #[error("the payload is malformed: {0}")]
    Malformed(String),
}

/// Checks deliveries for one tracker. Pure: no I/O, the clock passed in.
pub trait WebhookVerifier: Send + Sync + fmt::Debug {
    /// Verifies the signature in constant time, then (for trackers that stamp
    /// deliveries) the age, then reads the event.
    ///
    /// # Errors
    /// A [`WebhookRejection`]; nothing about the request is trusted then.
    fn verify(&self, request: &WebhookRequest<'_>) -> Result<WebhookEvent, WebhookRejection>;
}
