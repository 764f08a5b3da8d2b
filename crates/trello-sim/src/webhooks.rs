//! Webhooks as Trello runs them (FACTS.md §7): the registered webhooks, the actions a
//! change produces, and the delivery worker that POSTs each action, signed, to every
//! webhook watching its model, retrying failures and obeying a 410.
//!
//! - Signature: `X-Trello-Webhook` = base64(HMAC-SHA1(application secret, raw body ‖
//!   callbackURL)) (Trello's webhooks guide, "Webhook Signatures"; FACTS.md §7).
//! - Retries: a failed delivery (no answer, a timeout or any status outside 2xx) is
//!   retried 3 times ("Failed deliveries are retried 3 times", FACTS.md §7), after
//!   30, 60 and 120 s by default (`SimConfig::webhook_retry_delays`, scaled down in
//!   tests; the exact delays are Trello's guide as quoted in this project's brief, not
//!   confirmed from a primary source here).
//! - A 410 Gone answer deletes the webhook (FACTS.md §7).
//! - Deactivation: a webhook whose deliveries keep failing, with no success in between,
//!   turns `active: false` and gets no more deliveries once it has failed
//!   `SimConfig::webhook_disable_after` times in a row (default 1,000) and its
//!   `firstConsecutiveFailDate` is `webhook_disable_after_failing_for` old (default 30
//!   days). Trello's webhooks guide, as summarised by third parties (its stored copy here
//!   does not reach the section): "Trello will disable webhooks that experience
//!   consecutive failures for 30 days without a successful sending", and "after
//!   consecutive failures for 30 days AND more than 1,000 failures"; the object reports
//!   both `consecutiveFailures` and `firstConsecutiveFailDate`. A success resets them.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{json, Value};
use sha1::Sha1;
use tokio::sync::mpsc;

use crate::http::Shared;
use crate::routes::render;
use crate::state::State;

/// A registered webhook.
#[derive(Debug, Clone)]
pub(crate) struct Webhook {
    pub id: String,
    /// The token that created it: only it may read or delete it.
    pub token: String,
    pub description: String,
    pub id_model: String,
    pub callback_url: String,
    pub active: bool,
    pub consecutive_failures: u32,
    pub first_consecutive_fail_date: Option<DateTime<Utc>>,
}

/// A webhook as the inspection API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimWebhook {
    pub id: String,
    pub id_model: String,
    pub callback_url: String,
    pub description: String,
    pub active: bool,
    pub consecutive_failures: u32,
}

/// One attempt to deliver an action, as the inspection API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimDelivery {
    pub webhook_id: String,
    /// The action's id: the same on every retry of one delivery.
    pub action_id: String,
    /// 1 for the first attempt, 2.. for retries.
    pub attempt: u32,
    /// The callback's status; 0 when it did not answer (refused, timed out).
    pub status: u16,
}

/// An action to deliver to one webhook.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub webhook_id: String,
    pub action_id: String,
    pub callback_url: String,
    pub body: String,
    pub signature: String,
}

/// Delivery settings (from `SimConfig`).
#[derive(Debug, Clone)]
pub(crate) struct DeliveryConfig {
    pub retry_delays: Vec<Duration>,
    pub timeout: Duration,
    pub disable_after: u32,
    pub disable_after_failing_for: Duration,
}

/// `X-Trello-Webhook`: base64(HMAC-SHA1(secret, body ‖ callbackURL)).
pub(crate) fn sign(secret: &str, body: &[u8], callback_url: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    mac.update(callback_url.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The webhook object of the API (FACTS.md §7).
pub(crate) fn render(w: &Webhook) -> Value {
    json!({
        "id": w.id,
        "description": w.description,
        "idModel": w.id_model,
        "callbackURL": w.callback_url,
        "active": w.active,
        "consecutiveFailures": w.consecutive_failures,
        "firstConsecutiveFailDate": w.first_consecutive_fail_date.map(render::date),
    })
}

impl State {
    /// The application secret of the key a token belongs to.
    fn secret_of_token(&self, token: &str) -> Option<String> {
        let key = &self.tokens.get(token)?.key;
        self.key_secrets.get(key).cloned()
    }

    /// Records an action on a card by `member` (None: the board's first member, "a
    /// person") and queues it for every active webhook watching the card, its list or
    /// its board. `extra` is merged into `action.data` (e.g. `listBefore`, `old`).
    pub(crate) fn emit_card_action(
        &mut self,
        kind: &str,
        card: &str,
        member: Option<&str>,
        extra: Value,
    ) {
        let Some(c) = self.cards.get(card).cloned() else {
            return;
        };
        let Some(board) = self.boards.get(&c.id_board).cloned() else {
            return;
        };
        let watched: Vec<Webhook> = self
            .webhooks
            .values()
            .filter(|w| {
                w.active
                    && (w.id_model == c.id
                        || w.id_model == c.id_list
                        || w.id_model == c.id_board
                        || extra
                            .pointer("/listBefore/id")
                            .is_some_and(|l| l.as_str() == Some(w.id_model.as_str())))
            })
            .cloned()
            .collect();
        let action_id = self.ids.next_id();
        let member_id = member
            .map(str::to_owned)
            .or_else(|| board.members.first().map(|m| m.id_member.clone()))
            .unwrap_or_default();
        let member_creator = self
            .members
            .get(&member_id)
            .map(|m| json!({"id": m.id, "username": m.username, "fullName": m.full_name}));
        let list = self
            .lists
            .get(&c.id_list)
            .map(|l| json!({"id": l.id, "name": l.name}));
        let mut data = json!({
            "card": {
                "id": c.id, "name": c.name, "idShort": c.id_short,
                "shortLink": c.short_link, "idList": c.id_list, "closed": c.closed,
            },
            "board": {"id": board.id, "name": board.name, "shortLink": board.short_link},
            "list": list,
        });
        if let (Value::Object(d), Value::Object(e)) = (&mut data, extra) {
            d.extend(e);
        }
        let action = json!({
            "id": action_id,
            "idMemberCreator": member_id,
            "type": kind,
            "date": render::date(Utc::now()),
            "data": data,
            "memberCreator": member_creator,
        });
        for w in watched {
            let model = if w.id_model == c.id {
                json!({"id": c.id, "name": c.name, "idList": c.id_list, "idBoard": c.id_board})
            } else if w.id_model == c.id_board {
                Value::Object(render::board(self, &board))
            } else {
                self.lists
                    .get(&w.id_model)
                    .map_or(Value::Null, |l| Value::Object(render::list(l)))
            };
            let Some(secret) = self.secret_of_token(&w.token) else {
                continue;
            };
            let body = json!({"action": action, "model": model}).to_string();
            let signature = sign(&secret, body.as_bytes(), &w.callback_url);
            if let Some(tx) = &self.outbox {
                let _ = tx.send(Outgoing {
                    webhook_id: w.id.clone(),
                    action_id: action_id.clone(),
                    callback_url: w.callback_url.clone(),
                    body,
                    signature,
                });
            }
        }
    }

    /// Removes the webhooks of a token (revoking or expiring a token deletes its
    /// webhooks, FACTS.md §6).
    pub(crate) fn drop_token_webhooks(&mut self, token: &str) {
        self.webhooks.retain(|_, w| w.token != token);
    }
}

/// Runs until the sender side closes: delivers each queued action concurrently.
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
        .build()
        .expect("a plain client builds");
    while let Some(out) = rx.recv().await {
        tokio::spawn(deliver(shared.clone(), client.clone(), out, config.clone()));
    }
}

/// Whether the webhook may still be delivered to.
fn still_active(shared: &Shared, id: &str) -> bool {
    shared.lock().webhooks.get(id).is_some_and(|w| w.active)
}

async fn deliver(shared: Arc<Shared>, client: reqwest::Client, out: Outgoing, cfg: DeliveryConfig) {
    let attempts = 1 + cfg.retry_delays.len();
    for attempt in 1..=attempts {
        if attempt > 1 {
            tokio::time::sleep(cfg.retry_delays[attempt - 2]).await;
        }
        if !still_active(&shared, &out.webhook_id) {
            return;
        }
        let status = client
            .post(&out.callback_url)
            .header("content-type", "application/json")
            .header("x-trello-webhook", &out.signature)
            .body(out.body.clone())
            .send()
            .await
            .map_or(0, |r| r.status().as_u16());
        let mut st = shared.lock();
        st.deliveries.push(SimDelivery {
            webhook_id: out.webhook_id.clone(),
            action_id: out.action_id.clone(),
            attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
            status,
        });
        if status == 410 {
            st.webhooks.remove(&out.webhook_id);
            return;
        }
        let Some(w) = st.webhooks.get_mut(&out.webhook_id) else {
            return;
        };
        if (200..300).contains(&status) {
            w.consecutive_failures = 0;
            w.first_consecutive_fail_date = None;
            return;
        }
        w.consecutive_failures += 1;
        let since = *w.first_consecutive_fail_date.get_or_insert_with(Utc::now);
        let failing_for = (Utc::now() - since).to_std().unwrap_or_default();
        if w.consecutive_failures >= cfg.disable_after
            && failing_for >= cfg.disable_after_failing_for
        {
            w.active = false;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_covers_body_then_callback() {
        // Computed independently: printf '%s' '{"a":1}https://x.test/cb' |
        // openssl dgst -sha1 -hmac secret -binary | base64
        let s = sign("secret", br#"{"a":1}"#, "https://x.test/cb");
        assert_eq!(s, "iUdC7gn6wGFAxj+hwyCNRAYdulA=");
        assert_ne!(s, sign("secret", br#"{"a":1}"#, "https://x.test/cb2"));
        assert_ne!(s, sign("secret", br#"{"a":2}"#, "https://x.test/cb"));
    }
}
