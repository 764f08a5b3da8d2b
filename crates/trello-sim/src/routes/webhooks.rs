//! `/1/webhooks` and `/1/tokens/{token}/webhooks` (FACTS.md §7). Creating one is two
//! steps around Trello's HEAD check of the callback: [`prepare_create`] validates under
//! the state lock, the front end sends the HEAD without it, and [`finish_create`]
//! stores the webhook if the callback answered 200.

use serde_json::{json, Value};

use super::{check_id, load_board, load_card, text_param, Params, Reply, Res};
use crate::auth::{Access, Auth};
use crate::state::State;
use crate::webhooks::{render, Webhook};

/// A webhook waiting for its callback's answer to HEAD.
#[derive(Debug, Clone)]
pub(crate) struct PendingWebhook {
    pub token: String,
    pub description: String,
    pub id_model: String,
    pub callback_url: String,
    pub active: bool,
}

/// The text of a duplicate (FACTS.md §7: 18F/trello-webhook-server PR #8,
/// trello-archive/api-docs#78), a 400 in plain text.
pub(crate) const DUPLICATE: &str = "A webhook with that callback, model, and token already exists";

/// Validates `POST /1/webhooks` (or `/1/tokens/{token}/webhooks`): `callbackURL` an
/// http(s) URL, `idModel` a 24-hex id of a board, list or card the token can read, no
/// webhook of this token with the same callback and model.
pub(crate) fn prepare_create(
    state: &State,
    auth: &Auth,
    path_token: Option<&str>,
    p: &Params,
) -> Result<PendingWebhook, Reply> {
    if path_token.is_some_and(|t| t != auth.token) {
        return Err(Reply::text(401, "unauthorized token"));
    }
    let callback_url = p
        .str("callbackURL")
        .filter(|u| url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https")))
        .ok_or_else(|| Reply::invalid("callbackURL"))?;
    let id_model = p
        .str("idModel")
        .filter(|m| crate::ids::is_object_id(m))
        .ok_or_else(|| Reply::invalid("idModel"))?;
    if state.boards.contains_key(&id_model) {
        load_board(state, auth, &id_model, Access::Read)?;
    } else if state.cards.contains_key(&id_model) {
        load_card(state, auth, &id_model, Access::Read)?;
    } else if let Some(l) = state.lists.get(&id_model) {
        load_board(state, auth, &l.id_board.clone(), Access::Read)?;
    } else {
        return Err(Reply::invalid("idModel"));
    }
    let description = text_param(p, "description", 0, super::MAX_TEXT)?.unwrap_or_default();
    let active = p.bool("active")?.unwrap_or(true);
    if state
        .webhooks
        .values()
        .any(|w| w.token == auth.token && w.id_model == id_model && w.callback_url == callback_url)
    {
        return Err(Reply::text(400, DUPLICATE));
    }
    Ok(PendingWebhook {
        token: auth.token.clone(),
        description,
        id_model,
        callback_url,
        active,
    })
}

/// Stores the webhook when the HEAD answered 200 (`head`: the status, or `Err` when the
/// callback did not answer). Otherwise 400 in plain text, as Trello answers:
/// "URL (…) did not return 200 status code, got 400" (Commit451/skyhook#91); for no
/// answer at all the text is an inference.
pub(crate) fn finish_create(
    state: &mut State,
    pending: PendingWebhook,
    head: Result<u16, String>,
) -> Reply {
    match head {
        Ok(200) => {}
        Ok(s) => {
            return Reply::text(
                400,
                &format!(
                    "URL ({}) did not return 200 status code, got {s}",
                    pending.callback_url
                ),
            )
        }
        Err(_) => {
            return Reply::text(
                400,
                &format!(
                    "URL ({}) did not return 200 status code, got no response",
                    pending.callback_url
                ),
            )
        }
    }
    // The check ran without the lock: a twin may have been stored meanwhile.
    if state.webhooks.values().any(|w| {
        w.token == pending.token
            && w.id_model == pending.id_model
            && w.callback_url == pending.callback_url
    }) {
        return Reply::text(400, DUPLICATE);
    }
    let id = state.ids.next_id();
    let w = Webhook {
        id: id.clone(),
        token: pending.token,
        description: pending.description,
        id_model: pending.id_model,
        callback_url: pending.callback_url,
        active: pending.active,
        consecutive_failures: 0,
        first_consecutive_fail_date: None,
    };
    let out = render(&w);
    state.webhooks.insert(id, w);
    Reply::ok(out)
}

/// The webhook `id` if it belongs to the caller's token: 400 `invalid id` for a
/// malformed id, 404 for none, 401 `webhook does not belong to token` (FACTS.md §7)
/// for another token's.
fn own<'a>(state: &'a State, auth: &Auth, id: &str) -> Result<&'a Webhook, Reply> {
    check_id(id, false)?;
    let w = state.webhooks.get(id).ok_or_else(Reply::not_found)?;
    if w.token != auth.token {
        return Err(Reply::text(401, "webhook does not belong to token"));
    }
    Ok(w)
}

/// `GET /1/webhooks/{id}`.
pub(super) fn get(state: &State, auth: &Auth, id: &str) -> Res {
    own(state, auth, id).map(render)
}

/// `DELETE /1/webhooks/{id}`.
pub(super) fn delete(state: &mut State, auth: &Auth, id: &str) -> Res {
    own(state, auth, id)?;
    state.webhooks.remove(id);
    Ok(json!({ "_value": null }))
}

/// `GET /1/tokens/{token}/webhooks`: the token's own webhooks; another token's path
/// answers 401 `unauthorized token` (trello-archive/api-docs#156).
pub(super) fn token_webhooks(state: &State, auth: &Auth, t: &str) -> Res {
    if t != auth.token {
        return Err(Reply::text(401, "unauthorized token"));
    }
    Ok(Value::Array(
        state
            .webhooks
            .values()
            .filter(|w| w.token == auth.token)
            .map(render)
            .collect(),
    ))
}
