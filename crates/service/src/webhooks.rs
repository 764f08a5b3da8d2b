//! Webhooks as use cases: register one for a saved integration, delete it, accept a
//! delivery (verify, de-duplicate, name the tenancy whose items to read again) and report
//! its health. A delivery is only a hint: the receiver syncs, which reads the items again
//! and emits each status change once, so a forged or repeated delivery can never invent a
//! status.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;
use webriskops_domain::{CredentialRef, ProviderKey, Token};
use webriskops_ports::{
    HookRecord, PortError, SecretStore, WebhookEvent, WebhookRegistry, WebhookRejection,
    WebhookRequest, WebhookSecret, WebhookVerifier,
};

use crate::context::{ServicePorts, Tenancy};
use crate::ServiceError;

/// Where a webhook's signing secret is sealed.
fn secret_ref(who: &Tenancy) -> CredentialRef {
    CredentialRef(format!("{}/{}/webhook", who.tenant, who.provider))
}

fn secret_binding(opaque_id: &str) -> String {
    format!("webhook:{opaque_id}")
}

/// The callback URL of a registration: `<public URL>/hooks/<tracker>/<opaque id>`.
pub fn callback_url(public_url: &str, provider: ProviderKey, opaque_id: &str) -> String {
    format!(
        "{}/hooks/{}/{opaque_id}",
        public_url.trim_end_matches('/'),
        provider.tracker_name()
    )
}

/// Registers a webhook for the tenancy's saved container, replacing an earlier one (which
/// is deleted at the tracker first). `Ok(None)` when there is nothing to watch (no saved
/// record with a container) or the tracker offers no webhooks.
///
/// # Errors
/// The tracker refused the registration (for instance, it could not reach the callback
/// URL); store failures. Polling sync goes on either way.
pub async fn connect(
    ports: &ServicePorts,
    registry: &dyn WebhookRegistry,
    who: &Tenancy,
    public_url: &str,
    now: DateTime<Utc>,
) -> Result<Option<HookRecord>, ServiceError> {
    let Some(hooks) = ports.tracker.as_ref().and_then(|t| t.webhooks.clone()) else {
        return Ok(None);
    };
    let Some(record) = ports.record(who).await?.filter(|r| !r.is_draft()) else {
        return Ok(None);
    };
    let Some(scope) = record.board_id.clone() else {
        return Ok(None);
    };
    if let Some(old) = registry.hook_of(&who.tenant, who.provider).await? {
        hooks.delete(&old.webhook_id).await?;
        registry.delete_hook(&who.tenant, who.provider).await?;
    }
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    let opaque_id = hex::encode(bytes);
    let url = callback_url(public_url, who.provider, &opaque_id);
    let registration = hooks.register(&scope, &url).await?;
    match &registration.secret {
        Some(secret) => {
            let sealed = Token::new(secret.expose()).map_err(|e| {
                ServiceError::Input(format!("the webhook's secret cannot be kept: {e}"))
            })?;
            ports
                .secrets
                .put_token(&secret_ref(who), &secret_binding(&opaque_id), &sealed)
                .await?;
        }
        None => ports.secrets.delete_token(&secret_ref(who)).await?,
    }
    let hook = HookRecord {
        opaque_id,
        tenant: who.tenant.clone(),
        provider: who.provider,
        webhook_id: registration.id,
        callback_url: registration.callback_url,
        scope_id: registration.scope_id,
        created_at: now,
        last_delivery_at: None,
        deliveries: 0,
        rejected: 0,
    };
    registry.put_hook(&hook).await?;
    Ok(Some(hook))
}

/// Deletes the tenancy's webhook at the tracker (when the tracker can still be asked)
/// and forgets it. Returns whether there was one.
///
/// # Errors
/// Store failures. A tracker that refuses or cannot be reached does not stop it: the
/// registration is forgotten anyway, and deliveries to it are answered 410 Gone, which
/// makes a tracker delete the webhook itself.
pub async fn disconnect(
    ports: &ServicePorts,
    registry: &dyn WebhookRegistry,
    who: &Tenancy,
) -> Result<bool, ServiceError> {
    let Some(hook) = registry.hook_of(&who.tenant, who.provider).await? else {
        return Ok(false);
    };
    if let Some(hooks) = ports.tracker.as_ref().and_then(|t| t.webhooks.clone()) {
        if let Err(e) = hooks.delete(&hook.webhook_id).await {
            tracing::warn!(tenant = %who.tenant, error = %e, "could not delete the webhook at the tracker");
        }
    }
    registry.delete_hook(&who.tenant, who.provider).await?;
    ports.secrets.delete_token(&secret_ref(who)).await?;
    Ok(true)
}

/// What became of a delivery.
#[derive(Debug)]
pub enum Acceptance {
    /// No registration has this callback: answer 410 Gone (the tracker deletes it).
    Unknown,
    /// Refused: answer 401, change nothing.
    Rejected(WebhookRejection),
    /// A delivery already accepted (a retry): answer 200, do nothing again.
    Duplicate,
    /// Accepted: read the tenancy's items again.
    Fresh { who: Tenancy, event: WebhookEvent },
}

/// One request to a callback, as received.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The callback's opaque id (the last path segment).
    pub opaque_id: &'a str,
    /// The tracker named in the path.
    pub tracker_name: &'a str,
    pub headers: &'a [(String, String)],
    /// The body, byte for byte.
    pub raw_body: &'a [u8],
}

/// The verifier for a tracker and a webhook's secret (see the front end's composer).
pub type VerifierFor<'a> =
    dyn Fn(ProviderKey, Option<WebhookSecret>) -> Option<Arc<dyn WebhookVerifier>> + Sync + 'a;

/// Accepts a delivery to the callback `opaque_id`: finds the registration, verifies the
/// request with the verifier `verifier_for` gives for the tracker and the webhook's
/// secret (before anything in the body is trusted), then de-duplicates on the delivery
/// id.
///
/// # Errors
/// Store failures.
pub async fn accept(
    secrets: &dyn SecretStore,
    registry: &dyn WebhookRegistry,
    delivery: &Delivery<'_>,
    verifier_for: &VerifierFor<'_>,
    now: DateTime<Utc>,
) -> Result<Acceptance, ServiceError> {
    let Delivery {
        opaque_id,
        tracker_name,
        headers,
        raw_body,
    } = *delivery;
    let Some(hook) = registry.hook(opaque_id).await? else {
        return Ok(Acceptance::Unknown);
    };
    if hook.provider.tracker_name() != tracker_name {
        return Ok(Acceptance::Unknown);
    }
    let who = Tenancy {
        tenant: hook.tenant.clone(),
        provider: hook.provider,
    };
    let secret = secrets
        .get_token(&secret_ref(&who), &secret_binding(opaque_id))
        .await?
        .map(|t| WebhookSecret::new(t.expose()));
    let Some(verifier) = verifier_for(hook.provider, secret) else {
        registry.record_rejection(opaque_id).await?;
        return Ok(Acceptance::Rejected(WebhookRejection::MissingSignature));
    };
    let request = WebhookRequest {
        headers,
        raw_body,
        callback_url: &hook.callback_url,
        now,
    };
    let event = match verifier.verify(&request) {
        Ok(e) => e,
        Err(r) => {
            registry.record_rejection(opaque_id).await?;
            return Ok(Acceptance::Rejected(r));
        }
    };
    if !registry
        .record_delivery(opaque_id, &event.delivery_id, now)
        .await?
    {
        return Ok(Acceptance::Duplicate);
    }
    Ok(Acceptance::Fresh { who, event })
}

/// A webhook's state as /settings and the API show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookStatus {
    /// `none` (not registered), `active`, `inactive` (the tracker stopped delivering
    /// after failures), `gone` (the tracker no longer has it) or `unknown` (the tracker
    /// could not be asked).
    pub state: &'static str,
    pub created_at: Option<DateTime<Utc>>,
    pub last_delivery_at: Option<DateTime<Utc>>,
    pub deliveries: i64,
    pub rejected: i64,
    pub consecutive_failures: Option<u32>,
}

/// The tenancy's webhook, with its health asked of the tracker live.
///
/// # Errors
/// Store failures.
pub async fn status(
    ports: &ServicePorts,
    registry: &dyn WebhookRegistry,
    who: &Tenancy,
) -> Result<WebhookStatus, ServiceError> {
    let Some(hook) = registry.hook_of(&who.tenant, who.provider).await? else {
        return Ok(WebhookStatus {
            state: "none",
            created_at: None,
            last_delivery_at: None,
            deliveries: 0,
            rejected: 0,
            consecutive_failures: None,
        });
    };
    let health = match ports.tracker.as_ref().and_then(|t| t.webhooks.clone()) {
        Some(h) => h.health(&hook.webhook_id).await,
        None => Err(PortError::other("no tracker credentials")),
    };
    let (state, failures) = match health {
        Ok(Some(h)) if h.active => ("active", h.consecutive_failures),
        Ok(Some(h)) => ("inactive", h.consecutive_failures),
        Ok(None) => ("gone", None),
        Err(_) => ("unknown", None),
    };
    Ok(WebhookStatus {
        state,
        created_at: Some(hook.created_at),
        last_delivery_at: hook.last_delivery_at,
        deliveries: hook.deliveries,
        rejected: hook.rejected,
        consecutive_failures: failures,
    })
}
