//! Member and token routes: /1/members, /1/tokens.

use serde_json::{json, Value};

use super::render::{self, Fields};
use super::{Params, Reply, Res};
use crate::auth::{self, Access, Auth};
use crate::state::State;

/// `GET /1/members/{idOrUsername}`: any existing member (Trello shows public
/// member profiles to any token); `me` is the token's member.
pub(super) fn member(state: &State, auth: &Auth, id: &str, p: &Params) -> Res {
    let m = if id == "me" {
        state.members.get(&auth.member)
    } else {
        state.member_by_id_or_username(id)
    }
    .ok_or_else(Reply::not_found)?;
    Ok(Fields::parse(p.str("fields"), "all").apply(render::member(state, m)))
}

/// `GET /1/members/{id}/boards`: boards the member belongs to that the token
/// may read. Only the token's own member is allowed.
pub(super) fn member_boards(state: &State, auth: &Auth, id: &str, p: &Params) -> Res {
    let m = if id == "me" {
        state.members.get(&auth.member)
    } else {
        state.member_by_id_or_username(id)
    }
    .ok_or_else(Reply::not_found)?;
    if m.id != auth.member {
        return Err(Reply::unauthorized());
    }
    let filter = p.str("filter").unwrap_or_else(|| "all".into());
    let fields = Fields::parse(p.str("fields"), "all");
    let mut out = Vec::new();
    for b in state.boards.values() {
        if !b.has_member(&m.id) || !auth::can_board(state, auth, &b.id, Access::Read) {
            continue;
        }
        let keep = match filter.as_str() {
            "all" | "members" | "unpinned" => true,
            "open" => !b.closed,
            "closed" => b.closed,
            "organization" => b.id_org.is_some(),
            "public" | "pinned" | "starred" => false,
            _ => return Err(Reply::invalid("filter")),
        };
        if keep {
            out.push(fields.apply(render::board(state, b)));
        }
    }
    Ok(Value::Array(out))
}

fn path_token<'a>(
    state: &'a State,
    auth: &Auth,
    t: &str,
) -> Result<&'a crate::state::Token, Reply> {
    let tok = state
        .tokens
        .get(t)
        .filter(|tok| !tok.revoked)
        .ok_or_else(|| Reply::text(401, "invalid token"))?;
    if tok.id_member != auth.member {
        return Err(Reply::unauthorized());
    }
    Ok(tok)
}

/// `GET /1/tokens/{token}`. An unknown or revoked path token answers 401
/// `invalid token`; a token of another member 401 `unauthorized permission
/// requested` (FACTS.md is silent on both).
pub(super) fn token(state: &State, auth: &Auth, t: &str, p: &Params) -> Res {
    let tok = path_token(state, auth, t)?;
    Ok(Fields::parse(p.str("fields"), "all").apply(render::token(tok)))
}

/// `GET /1/tokens/{token}/member`.
pub(super) fn token_member(state: &State, auth: &Auth, t: &str, p: &Params) -> Res {
    let tok = path_token(state, auth, t)?;
    let m = state
        .members
        .get(&tok.id_member)
        .ok_or_else(Reply::not_found)?;
    Ok(Fields::parse(p.str("fields"), "all").apply(render::member(state, m)))
}

/// `DELETE /1/tokens/{token}/`: revokes. Needs write on the member, per
/// "Required permissions: write" in the archived docs (FACTS.md §6).
pub(super) fn token_delete(state: &mut State, auth: &Auth, t: &str) -> Res {
    path_token(state, auth, t)?;
    if !auth::can_self(auth, Access::Write) {
        return Err(Reply::unauthorized());
    }
    if let Some(tok) = state.tokens.get_mut(t) {
        tok.revoked = true;
    }
    state.drop_token_webhooks(t);
    Ok(json!({ "_value": null }))
}
