//! Webhooks as Linear runs them (vendor/linear/FACTS.md "Webhooks"):
//!
//! - Created with `webhookCreate` (workspace admins or the `admin` scope: "Only workspace
//!   admins, or OAuth applications with the admin scope, can create or read webhooks",
//!   developers.linear.app/docs/graphql/webhooks), for one team (`teamId`) or all
//!   public teams (`allPublicTeams`), with `resourceTypes`; the signing `secret` is
//!   generated when not given (schema: "Automatically generated if not provided").
//! - A data change of a subscribed resource (here `Issue`: created, updated, archived,
//!   removed; by a person or through the API) is POSTed as JSON `{action, type, actor,
//!   createdAt, data, url, updatedFrom?, organizationId, webhookId, webhookTimestamp}`
//!   with `Linear-Signature` = hex HMAC-SHA256(secret, raw body), `Linear-Delivery` (a
//!   UUID, the same on every retry of one delivery: receivers de-duplicate on it),
//!   `Linear-Event` (the resource type) and `Linear-Timestamp`.
//! - "If a delivery fails (i.e. server unavailable, takes longer than 5s to respond, or
//!   responds with a non-200 HTTP status code), the push will be retried a maximum of 3
//!   times. A backoff delay is used: the attempt will be retried after 1 minute, 1 hour,
//!   and finally after 6 hours" (developers.linear.app/docs/graphql/webhooks): the
//!   defaults of `SimConfig::webhook_retry_delays` and `webhook_timeout`. Only 200
//!   counts as delivered.
//! - Each attempt is stamped and signed anew (`webhookTimestamp` is "when the webhook
//!   was dispatched"): otherwise a receiver rejecting deliveries older than a minute, as
//!   Linear's SDK does, could never accept a retry. An inference; the delivery id stays.
//! - Deactivation after failures is not documented and not modelled; a test disables
//!   a webhook with `SimHandle::set_webhook_enabled`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::http::Shared;
use crate::state::{iso, Issue, State};

/// A registered webhook.
#[derive(Debug, Clone)]
pub(crate) struct Webhook {
    pub id: String,
    pub url: String,
    pub secret: String,
    pub label: Option<String>,
    pub team_id: Option<String>,
    pub all_public_teams: bool,
    pub resource_types: Vec<String>,
    pub enabled: bool,
    pub creator_id: String,
    pub created_at: DateTime<Utc>,
}

/// A webhook as the inspection API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimWebhook {
    pub id: String,
    pub url: String,
    pub secret: String,
    pub team_id: Option<String>,
    pub resource_types: Vec<String>,
    pub enabled: bool,
}

/// One delivery attempt, as the inspection API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimDelivery {
    pub webhook_id: String,
    /// `Linear-Delivery`: the same on every attempt of one delivery.
    pub delivery_id: String,
    /// 1 for the first attempt, 2.. for retries.
    pub attempt: u32,
    /// The receiver's status; 0 when it did not answer in time.
    pub status: u16,
}

/// A delivery waiting to be sent.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    webhook_id: String,
    delivery_id: String,
    url: String,
    secret: String,
    event: String,
    /// The body without `webhookTimestamp` (added per attempt).
    payload: Value,
}

/// Delivery settings (from `SimConfig`).
#[derive(Debug, Clone)]
pub(crate) struct DeliveryConfig {
    pub retry_delays: Vec<Duration>,
    pub timeout: Duration,
}

/// `Linear-Signature`: hex HMAC-SHA256 of the raw body.
pub(crate) fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Linear delivers only to "a publicly accessible HTTPS, non-localhost URL"
/// (developers.linear.app/docs/graphql/webhooks); refusing others at creation is an
/// inference. `allow_loopback` (tests) also accepts `http://` on a loopback host.
pub(crate) fn check_url(url: &str, allow_loopback: bool) -> crate::state::SimResult<()> {
    let bad = |why: &str| {
        Err(crate::state::SimError::input(format!(
            "invalid webhook url: {why}"
        )))
    };
    let Ok(u) = url::Url::parse(url) else {
        return bad("not a URL");
    };
    let loopback = match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return bad("no host"),
    };
    match (u.scheme(), loopback) {
        (_, true) if allow_loopback && matches!(u.scheme(), "http" | "https") => Ok(()),
        ("https", false) => Ok(()),
        (_, true) => bad("it must be publicly accessible, not localhost"),
        _ => bad("it must use https"),
    }
}

impl State {
    fn issue_data(&self, i: &Issue) -> Value {
        let state = self
            .wf_state(&i.state_id)
            .map(|s| json!({"id": s.id, "name": s.name, "type": s.kind}));
        let team = self
            .team(&i.team_id)
            .map(|t| json!({"id": t.id, "key": t.key, "name": t.name}));
        json!({
            "id": i.id,
            "identifier": self.identifier(i),
            "number": i.number,
            "title": i.title,
            "description": i.description,
            "priority": i.priority,
            "stateId": i.state_id,
            "state": state,
            "teamId": i.team_id,
            "team": team,
            "assigneeId": i.assignee_id,
            "creatorId": i.creator_id,
            "labelIds": i.label_ids,
            "dueDate": i.due_date,
            "createdAt": iso(i.created_at),
            "updatedAt": iso(i.updated_at),
            "archivedAt": i.archived_at.map(iso),
            "trashed": i.trashed,
            "url": self.issue_url(i),
        })
    }

    /// Queues an `Issue` event (`create`, `update`, `remove`) for every enabled
    /// webhook subscribed to issues of its team. `before` (for updates) gives
    /// `updatedFrom`: the previous values of the fields that changed.
    pub(crate) fn emit_issue(&mut self, action: &str, issue: &Issue, before: Option<&Issue>) {
        if self.webhooks.is_empty() {
            return;
        }
        // The simulated teams are all public (linear-sim models no private teams).
        let targets: Vec<Webhook> = self
            .webhooks
            .iter()
            .filter(|w| {
                w.enabled
                    && w.resource_types.iter().any(|r| r == "Issue")
                    && (w.team_id.as_deref() == Some(issue.team_id.as_str()) || w.all_public_teams)
            })
            .cloned()
            .collect();
        if targets.is_empty() {
            return;
        }
        let data = self.issue_data(issue);
        let updated_from = before.map(|b| {
            let old = self.issue_data(b);
            let mut from = serde_json::Map::new();
            if let (Value::Object(new), Value::Object(old)) = (&data, old) {
                for (k, v) in old {
                    if new.get(&k) != Some(&v) && !matches!(k.as_str(), "state" | "team") {
                        from.insert(k, v);
                    }
                }
            }
            Value::Object(from)
        });
        let actor_id = issue
            .creator_id
            .clone()
            .or_else(|| self.users.first().map(|u| u.id.clone()));
        let actor = actor_id
            .as_deref()
            .and_then(|u| self.user(u))
            .map(|u| json!({"id": u.id, "name": u.name, "type": "user"}));
        for w in targets {
            let mut payload = json!({
                "action": action,
                "type": "Issue",
                "actor": actor,
                "createdAt": iso(Utc::now()),
                "data": data,
                "url": self.issue_url(issue),
                "organizationId": self.org.id,
                "webhookId": w.id,
            });
            if let Some(from) = &updated_from {
                payload["updatedFrom"] = from.clone();
            }
            if let Some(tx) = &self.outbox {
                let _ = tx.send(Outgoing {
                    webhook_id: w.id.clone(),
                    delivery_id: crate::ids::uuid_v4(),
                    url: w.url.clone(),
                    secret: w.secret.clone(),
                    event: "Issue".into(),
                    payload,
                });
            }
        }
    }
}

/// Runs until the sender side closes: delivers each queued event concurrently.
pub(crate) async fn deliver_all(
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    config: DeliveryConfig,
) {
    let client = reqwest::Client::builder()
        // Callbacks are local test receivers: a proxy from the environment must not
        // capture them.
        .no_proxy()
        .timeout(config.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("Linear-Webhook")
        .build()
        .expect("a plain client builds");
    while let Some(out) = rx.recv().await {
        tokio::spawn(deliver(shared.clone(), client.clone(), out, config.clone()));
    }
}

async fn deliver(shared: Arc<Shared>, client: reqwest::Client, out: Outgoing, cfg: DeliveryConfig) {
    let attempts = 1 + cfg.retry_delays.len();
    for attempt in 1..=attempts {
        if attempt > 1 {
            tokio::time::sleep(cfg.retry_delays[attempt - 2]).await;
        }
        let enabled = shared
            .lock()
            .webhooks
            .iter()
            .any(|w| w.id == out.webhook_id && w.enabled);
        if !enabled {
            return;
        }
        let now_ms = Utc::now().timestamp_millis();
        let mut payload = out.payload.clone();
        payload["webhookTimestamp"] = json!(now_ms);
        let body = payload.to_string();
        let status = client
            .post(&out.url)
            .header("content-type", "application/json; charset=utf-8")
            .header("linear-delivery", &out.delivery_id)
            .header("linear-event", &out.event)
            .header("linear-timestamp", now_ms.to_string())
            .header("linear-signature", sign(&out.secret, body.as_bytes()))
            .body(body)
            .send()
            .await
            .map_or(0, |r| r.status().as_u16());
        shared.lock().deliveries.push(SimDelivery {
            webhook_id: out.webhook_id.clone(),
            delivery_id: out.delivery_id.clone(),
            attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
            status,
        });
        if status == 200 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hex_hmac_sha256_of_the_body() {
        // printf '%s' '{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            sign("secret", br#"{"a":1}"#),
            "aa9e2e3575f5d7098b6caccd790888c36d5fdb63342a73bada2d6a51747a8494"
        );
    }
}
