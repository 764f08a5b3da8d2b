//! Trello webhooks (FACTS.md §7): registering and deleting them through the adapter's
//! transport (limiter, retries, error mapping), and verifying deliveries.
//!
//! - Register: `POST /webhooks/?callbackURL=…&idModel=…&description=…`. Trello sends
//!   HEAD to the callback first and creates nothing unless it answers 200; the 400
//!   "URL (…) did not return 200 status code, got N" becomes `InvalidInput` saying so.
//!   The same (callback, model, token) again is a 400 "A webhook with that callback,
//!   model, and token already exists" with no id; registering is made idempotent by
//!   looking the existing one up in `GET /tokens/{token}/webhooks`.
//! - Delete: `DELETE /webhooks/{id}`; one already gone counts as deleted.
//! - Verify: `X-Trello-Webhook` = base64(HMAC-SHA1(application secret, raw body ‖
//!   callbackURL as registered)), compared in constant time (`Mac::verify_slice`). The
//!   key is the application's OAuth secret, not the token (FACTS.md §7). The event is
//!   the action: its id (to de-duplicate: a retried delivery carries the same action),
//!   its type and the card it concerns. Trello stamps no delivery time, so there is no
//!   age check: the action id de-duplicates replays.

use async_trait::async_trait;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha1::Sha1;
use webriskops_ports::{
    in_context, PortError, PortResult, TrackerWebhooks, WebhookEvent, WebhookHealth,
    WebhookRegistration, WebhookRejection, WebhookRequest, WebhookSecret, WebhookVerifier,
};

use crate::catalog;
use crate::transport::Call;
use crate::{trello_id, TrelloAdapter};

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Trello-Webhook";

/// The description every webhook this adapter registers carries.
const DESCRIPTION: &str = "WebRiskOps";

/// A webhook as Trello answers it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WWebhook {
    id: String,
    #[serde(rename = "idModel")]
    id_model: String,
    #[serde(rename = "callbackURL")]
    callback_url: String,
    #[serde(default = "yes")]
    active: bool,
    #[serde(default)]
    consecutive_failures: Option<u32>,
}

fn yes() -> bool {
    true
}

impl From<WWebhook> for WebhookRegistration {
    fn from(w: WWebhook) -> Self {
        WebhookRegistration {
            id: w.id,
            // Trello signs with the application secret, which the receiver holds.
            secret: None,
            callback_url: w.callback_url,
            scope_id: w.id_model,
        }
    }
}

#[async_trait]
impl TrackerWebhooks for TrelloAdapter {
    async fn register(
        &self,
        scope_id: &str,
        callback_url: &str,
    ) -> PortResult<WebhookRegistration> {
        in_context(self, "register_webhook", async {
            let model = trello_id("board id", scope_id)?;
            let call = Call::new(catalog::WEBHOOK_CREATE, &[])
                .query("callbackURL", callback_url)
                .query("idModel", model.clone())
                .query("description", DESCRIPTION)
                .what(format!("webhook on board {model}"));
            match self.send::<WWebhook>(call).await {
                Ok(w) => Ok(w.into()),
                Err(e @ PortError::Conflict { .. }) => {
                    let mine: Vec<WWebhook> =
                        self.send(self.token_call(catalog::TOKEN_WEBHOOKS)).await?;
                    mine.into_iter()
                        .find(|w| w.id_model == model && w.callback_url == callback_url)
                        .map(Into::into)
                        .ok_or(e)
                }
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn delete(&self, id: &str) -> PortResult<()> {
        in_context(self, "delete_webhook", async {
            let id = trello_id("webhook id", id)?;
            let call = Call::new(catalog::WEBHOOK_DELETE, &[&id]).what(format!("webhook {id}"));
            match self.send::<Value>(call).await {
                Ok(_) | Err(PortError::NotFound { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn health(&self, id: &str) -> PortResult<Option<WebhookHealth>> {
        in_context(self, "webhook_health", async {
            let id = trello_id("webhook id", id)?;
            let call = Call::new(catalog::WEBHOOK, &[&id]).what(format!("webhook {id}"));
            match self.send::<WWebhook>(call).await {
                Ok(w) => Ok(Some(WebhookHealth {
                    active: w.active,
                    consecutive_failures: w.consecutive_failures,
                })),
                Err(PortError::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await
    }
}

/// The `X-Trello-Webhook` value for a body delivered to `callback_url`.
pub fn webhook_signature(
    app_secret: &WebhookSecret,
    raw_body: &[u8],
    callback_url: &str,
) -> String {
    base64::engine::general_purpose::STANDARD.encode(
        mac(app_secret, raw_body, callback_url)
            .finalize()
            .into_bytes(),
    )
}

fn mac(app_secret: &WebhookSecret, raw_body: &[u8], callback_url: &str) -> Hmac<Sha1> {
    let mut mac =
        Hmac::<Sha1>::new_from_slice(app_secret.expose().as_bytes()).expect("HMAC takes any key");
    mac.update(raw_body);
    mac.update(callback_url.as_bytes());
    mac
}

/// Verifies Trello deliveries with the application secret (`TRELLO_API_SECRET`).
#[derive(Debug, Clone)]
pub struct TrelloWebhookVerifier {
    app_secret: WebhookSecret,
}

impl TrelloWebhookVerifier {
    /// A verifier keyed with the application's OAuth secret (Trello's key page).
    pub fn new(app_secret: WebhookSecret) -> Self {
        TrelloWebhookVerifier { app_secret }
    }
}

impl WebhookVerifier for TrelloWebhookVerifier {
    fn verify(&self, request: &WebhookRequest<'_>) -> Result<WebhookEvent, WebhookRejection> {
        let given = request
            .header(SIGNATURE_HEADER)
            .ok_or(WebhookRejection::MissingSignature)?;
        let given = base64::engine::general_purpose::STANDARD
            .decode(given.trim().as_bytes())
            .map_err(|_| WebhookRejection::BadSignature)?;
        mac(&self.app_secret, request.raw_body, request.callback_url)
            .verify_slice(&given)
            .map_err(|_| WebhookRejection::BadSignature)?;
        let body: Value = serde_json::from_slice(request.raw_body)
            .map_err(|e| WebhookRejection::Malformed(format!("not JSON: {e}")))?;
        let action = &body["action"];
        let delivery_id = action["id"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| WebhookRejection::Malformed("no action.id".into()))?
            .to_owned();
        let kind = action["type"].as_str().unwrap_or_default().to_owned();
        let item_id = action
            .pointer("/data/card/id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(WebhookEvent {
            delivery_id,
            item_id,
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(
        headers: &'a [(String, String)],
        body: &'a [u8],
        url: &'a str,
    ) -> WebhookRequest<'a> {
        WebhookRequest {
            headers,
            raw_body: body,
            callback_url: url,
            now: chrono::Utc::now(),
        }
    }

    #[test]
    fn the_signature_covers_the_body_then_the_callback_url() {
        // printf '%s' '{"a":1}https://x.test/cb' | openssl dgst -sha1 -hmac secret -binary | base64
        let s = webhook_signature(
            &WebhookSecret::new("secret"),
            br#"{"a":1}"#,
            "https://x.test/cb",
        );
        assert_eq!(s, "iUdC7gn6wGFAxj+hwyCNRAYdulA=");
    }

    #[test]
    fn verify_reads_the_action_and_refuses_anything_else() {
        let secret = WebhookSecret::new("s3cret");
        let v = TrelloWebhookVerifier::new(secret.clone());
        let url = "https://hooks.example/trello/abc";
        let body = br#"{"action":{"id":"5f0000000000000000000001","type":"updateCard","data":{"card":{"id":"5f00000000000000000000aa"}}},"model":{}}"#;
        let sig = webhook_signature(&secret, body, url);
        let headers = vec![("x-trello-webhook".to_owned(), sig.clone())];
        let ev = v.verify(&req(&headers, body, url)).unwrap();
        assert_eq!(ev.delivery_id, "5f0000000000000000000001");
        assert_eq!(ev.item_id.as_deref(), Some("5f00000000000000000000aa"));
        assert_eq!(ev.kind, "updateCard");

        let mut tampered = body.to_vec();
        tampered[30] ^= 1;
        assert_eq!(
            v.verify(&req(&headers, &tampered, url)),
            Err(WebhookRejection::BadSignature)
        );
        assert_eq!(
            v.verify(&req(&headers, body, "https://hooks.example/trello/other")),
            Err(WebhookRejection::BadSignature)
        );
        assert_eq!(
            v.verify(&req(&[], body, url)),
            Err(WebhookRejection::MissingSignature)
        );
        let other = TrelloWebhookVerifier::new(WebhookSecret::new("the token, not the secret"));
        assert_eq!(
            other.verify(&req(&headers, body, url)),
            Err(WebhookRejection::BadSignature)
        );
        let junk = vec![("X-Trello-Webhook".to_owned(), "%%%".to_owned())];
        assert_eq!(
            v.verify(&req(&junk, body, url)),
            Err(WebhookRejection::BadSignature)
        );
    }
}
