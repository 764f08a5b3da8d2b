//! Linear webhooks (vendor/linear/FACTS.md "Webhooks"): registering and deleting them
//! with GraphQL through the adapter's transport, and verifying deliveries.
//!
//! - Register: `webhookCreate(input: {url, teamId, resourceTypes: ["Issue"], label,
//!   secret})`, with a signing secret the adapter draws (32 random bytes, hex) and
//!   returns in the registration: the receiver verifies with it. Needs the `admin`
//!   scope ("Only workspace admins, or OAuth applications with the admin scope, can
//!   create or read webhooks", developers.linear.app/docs/graphql/webhooks). Linear
//!   does not refuse a second webhook for the same URL, so each call creates one: the
//!   caller deletes the old one first.
//! - Delete: `webhookDelete(id)`; one already gone counts as deleted.
//! - Verify: `Linear-Signature` = hex HMAC-SHA256(webhook secret, raw body), compared
//!   in constant time (`Mac::verify_slice`), then `webhookTimestamp` (ms) within a
//!   minute of now, as Linear's SDK does (`sdk/src/webhooks/client.ts`); the event's
//!   id is `Linear-Delivery` (the same on a retried delivery), the item is `data.id`
//!   of an `Issue` event.

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use rand::Rng;
use serde_json::{json, Value};
use sha2::Sha256;
use webriskops_ports::{
    in_context, PortError, PortResult, TrackerWebhooks, WebhookEvent, WebhookHealth,
    WebhookRegistration, WebhookRejection, WebhookRequest, WebhookSecret, WebhookVerifier,
};

use crate::{ops, LinearAdapter};

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Linear-Signature";
/// The header carrying the delivery id.
pub const DELIVERY_HEADER: &str = "Linear-Delivery";
/// How far a delivery's `webhookTimestamp` may be from now (Linear's SDK: 60 s).
pub const MAX_WEBHOOK_AGE: std::time::Duration = std::time::Duration::from_secs(60);

fn shape(what: &str) -> PortError {
    PortError::other(format!("Linear's answer to {what} is not as documented"))
}

#[async_trait]
impl TrackerWebhooks for LinearAdapter {
    async fn register(
        &self,
        scope_id: &str,
        callback_url: &str,
    ) -> PortResult<WebhookRegistration> {
        in_context(self, "register_webhook", async {
            let secret: String = {
                let bytes: [u8; 32] = rand::thread_rng().gen();
                hex::encode(bytes)
            };
            let input = json!({
                "url": callback_url,
                "teamId": scope_id,
                "resourceTypes": ["Issue"],
                "label": "WebRiskOps",
                "secret": secret,
            });
            let data = self
                .client()
                .transport()
                .execute(&ops::WEBHOOK_CREATE, json!({ "input": input }))
                .await?;
            let w = &data["webhookCreate"]["webhook"];
            let id = w["id"]
                .as_str()
                .ok_or_else(|| shape("WebhookCreate"))?
                .to_owned();
            // The secret Linear holds is ours; if it ever answered another, that one signs.
            let secret = w["secret"].as_str().map_or(secret, str::to_owned);
            Ok(WebhookRegistration {
                id,
                secret: Some(WebhookSecret::new(secret)),
                callback_url: w["url"].as_str().unwrap_or(callback_url).to_owned(),
                scope_id: w["team"]["id"].as_str().unwrap_or(scope_id).to_owned(),
            })
        })
        .await
    }

    async fn delete(&self, id: &str) -> PortResult<()> {
        in_context(self, "delete_webhook", async {
            match self
                .client()
                .transport()
                .execute(&ops::WEBHOOK_DELETE, json!({ "id": id }))
                .await
            {
                Ok(_) | Err(PortError::NotFound { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn health(&self, id: &str) -> PortResult<Option<WebhookHealth>> {
        in_context(self, "webhook_health", async {
            match self
                .client()
                .transport()
                .execute(&ops::WEBHOOK, json!({ "id": id }))
                .await
            {
                Ok(data) => Ok(Some(WebhookHealth {
                    active: data["webhook"]["enabled"]
                        .as_bool()
                        .ok_or_else(|| shape("Webhook"))?,
                    // Failures are an internal field of Linear's schema.
                    consecutive_failures: None,
                })),
                Err(PortError::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await
    }
}

/// The `Linear-Signature` value of a body: hex HMAC-SHA256 with the webhook's secret.
pub fn webhook_signature(secret: &WebhookSecret, raw_body: &[u8]) -> String {
    hex::encode(mac(secret, raw_body).finalize().into_bytes())
}

fn mac(secret: &WebhookSecret, raw_body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes any key");
    mac.update(raw_body);
    mac
}

/// Verifies the deliveries of one Linear webhook with its signing secret.
#[derive(Debug, Clone)]
pub struct LinearWebhookVerifier {
    secret: WebhookSecret,
}

impl LinearWebhookVerifier {
    /// A verifier for the webhook whose registration returned `secret`.
    pub fn new(secret: WebhookSecret) -> Self {
        LinearWebhookVerifier { secret }
    }
}

impl WebhookVerifier for LinearWebhookVerifier {
    fn verify(&self, request: &WebhookRequest<'_>) -> Result<WebhookEvent, WebhookRejection> {
        let given = request
            .header(SIGNATURE_HEADER)
            .ok_or(WebhookRejection::MissingSignature)?;
        let given = hex::decode(given.trim()).map_err(|_| WebhookRejection::BadSignature)?;
        mac(&self.secret, request.raw_body)
            .verify_slice(&given)
            .map_err(|_| WebhookRejection::BadSignature)?;
        let body: Value = serde_json::from_slice(request.raw_body)
            .map_err(|e| WebhookRejection::Malformed(format!("not JSON: {e}")))?;
        let sent_ms = body["webhookTimestamp"]
            .as_i64()
            .ok_or_else(|| WebhookRejection::Malformed("no webhookTimestamp".into()))?;
        let age_ms = request.now.timestamp_millis().saturating_sub(sent_ms);
        let age = std::time::Duration::from_millis(age_ms.unsigned_abs());
        if age > MAX_WEBHOOK_AGE {
            return Err(WebhookRejection::Stale {
                age,
                limit: MAX_WEBHOOK_AGE,
            });
        }
        let delivery_id = request
            .header(DELIVERY_HEADER)
            .filter(|d| !d.trim().is_empty())
            .ok_or_else(|| WebhookRejection::Malformed(format!("no {DELIVERY_HEADER} header")))?
            .trim()
            .to_owned();
        let ty = body["type"].as_str().unwrap_or_default();
        let action = body["action"].as_str().unwrap_or_default();
        let item_id = (ty == "Issue")
            .then(|| body.pointer("/data/id").and_then(Value::as_str))
            .flatten()
            .map(str::to_owned);
        Ok(WebhookEvent {
            delivery_id,
            item_id,
            kind: format!("{ty}.{action}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};

    fn body(ts_ms: i64) -> Vec<u8> {
        format!(
            r#"{{"action":"update","type":"Issue","data":{{"id":"9a1d6bd2-7a0f-4e5e-9b8e-1c2d3e4f5a6b"}},"webhookTimestamp":{ts_ms}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn the_signature_is_hex_hmac_sha256_of_the_body() {
        // printf '%s' '{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            webhook_signature(&WebhookSecret::new("secret"), br#"{"a":1}"#),
            "aa9e2e3575f5d7098b6caccd790888c36d5fdb63342a73bada2d6a51747a8494"
        );
    }

    #[test]
    fn verify_checks_signature_then_age_and_reads_the_delivery() {
        let secret = WebhookSecret::new("whsec");
        let v = LinearWebhookVerifier::new(secret.clone());
        let now = Utc::now();
        let b = body(now.timestamp_millis() - 2_000);
        let headers = vec![
            (
                "linear-signature".to_owned(),
                webhook_signature(&secret, &b),
            ),
            ("Linear-Delivery".to_owned(), "d-1".to_owned()),
        ];
        let req = |h: &'_ [(String, String)], b: &'_ [u8], now| {
            v.verify(&WebhookRequest {
                headers: h,
                raw_body: b,
                callback_url: "https://x/hooks/linear/1",
                now,
            })
        };
        let ev = req(&headers, &b, now).unwrap();
        assert_eq!(ev.delivery_id, "d-1");
        assert_eq!(
            ev.item_id.as_deref(),
            Some("9a1d6bd2-7a0f-4e5e-9b8e-1c2d3e4f5a6b")
        );
        assert_eq!(ev.kind, "Issue.update");

        let mut t = b.clone();
        t[12] ^= 1;
        assert_eq!(req(&headers, &t, now), Err(WebhookRejection::BadSignature));
        assert!(matches!(
            req(&headers, &b, now + Duration::seconds(90)),
            Err(WebhookRejection::Stale { .. })
        ));
        assert_eq!(
            req(&headers[1..], &b, now),
            Err(WebhookRejection::MissingSignature)
        );
        assert!(matches!(
            req(&headers[..1], &b, now),
            Err(WebhookRejection::Malformed(_))
        ));
    }
}
