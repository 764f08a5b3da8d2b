//! Credentials (query, body or OAuth header), token validation and the
//! permission model that decides what a token may read or write.

use chrono::Utc;

use crate::routes::Reply;
use crate::state::{Board, Permission, State};

/// An authenticated request: the key, the token and what it grants.
#[derive(Debug, Clone)]
pub(crate) struct Auth {
    pub key: String,
    pub token: String,
    pub member: String,
    pub permissions: Vec<Permission>,
}

/// Read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

impl Access {
    fn granted_by(self, p: &Permission) -> bool {
        match self {
            Access::Read => p.read,
            Access::Write => p.write,
        }
    }
}

/// Parses `Authorization: OAuth oauth_consumer_key="<key>", oauth_token="<token>"`.
pub(crate) fn parse_oauth_header(value: &str) -> (Option<String>, Option<String>) {
    let Some(rest) = value
        .trim()
        .strip_prefix("OAuth ")
        .or_else(|| value.trim().strip_prefix("oauth "))
    else {
        return (None, None);
    };
    let mut key = None;
    let mut token = None;
    for part in rest.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"');
        let v = percent_encoding::percent_decode_str(v)
            .decode_utf8_lossy()
            .into_owned();
        match k.trim() {
            "oauth_consumer_key" => key = Some(v),
            "oauth_token" => token = Some(v),
            _ => {}
        }
    }
    (key, token)
}

/// Validates a key and token pair.
///
/// Missing or unknown key: 401 `invalid key`. Missing, unknown, revoked or
/// another key's token: 401 `invalid token`. Expired token: 401
/// `expired token`, the text real Trello answers (jchrom/trelloR#3:
/// "Client error: (401) Unauthorized : expired token").
pub(crate) fn authenticate(
    state: &State,
    key: Option<&str>,
    token: Option<&str>,
) -> Result<Auth, Reply> {
    let key = key
        .filter(|k| state.keys.contains(*k))
        .ok_or_else(|| Reply::text(401, "invalid key"))?;
    let token_str = token.ok_or_else(|| Reply::text(401, "invalid token"))?;
    let t = state
        .tokens
        .get(token_str)
        .filter(|t| !t.revoked && t.key == key)
        .ok_or_else(|| Reply::text(401, "invalid token"))?;
    if t.date_expires.is_some_and(|e| e <= Utc::now()) {
        return Err(Reply::text(401, "expired token"));
    }
    Ok(Auth {
        key: key.to_owned(),
        token: token_str.to_owned(),
        member: t.id_member.clone(),
        permissions: t.permissions.clone(),
    })
}

fn type_is(p: &Permission, model_type: &str) -> bool {
    p.model_type == "*" || p.model_type.eq_ignore_ascii_case(model_type)
}

/// The token's member can see the board: a board member, or an organization
/// member for a board in an organization.
pub(crate) fn member_sees_board(state: &State, member: &str, board: &Board) -> bool {
    board.has_member(member)
        || board
            .id_org
            .as_deref()
            .and_then(|o| state.orgs.get(o))
            .is_some_and(|o| o.members.iter().any(|m| m == member))
}

/// The board is visible to the token's member and a permission covers it:
/// `*` or the board id with modelType Board (or `*`), or the board's
/// organization id with modelType Organization.
pub(crate) fn can_board(state: &State, auth: &Auth, board_id: &str, access: Access) -> bool {
    let Some(board) = state.boards.get(board_id) else {
        return false;
    };
    member_sees_board(state, &auth.member, board)
        && auth.permissions.iter().any(|p| {
            access.granted_by(p)
                && (((p.id_model == "*" || p.id_model == board.id) && type_is(p, "board"))
                    || (board.id_org.as_deref() == Some(p.id_model.as_str())
                        && type_is(p, "organization")))
        })
}

/// The organization is visible (member of it or of one of its boards) and a
/// permission covers it.
pub(crate) fn can_org(state: &State, auth: &Auth, org_id: &str, access: Access) -> bool {
    let Some(org) = state.orgs.get(org_id) else {
        return false;
    };
    let visible = org.members.contains(&auth.member)
        || state
            .boards
            .values()
            .any(|b| b.id_org.as_deref() == Some(org_id) && b.has_member(&auth.member));
    visible
        && auth.permissions.iter().any(|p| {
            access.granted_by(p)
                && (p.id_model == "*" || p.id_model == org.id)
                && type_is(p, "organization")
        })
}

/// A permission covers the token's own member with the given access.
pub(crate) fn can_self(auth: &Auth, access: Access) -> bool {
    auth.permissions.iter().any(|p| {
        access.granted_by(p)
            && (p.id_model == "*" || p.id_model == auth.member)
            && type_is(p, "member")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_header() {
        let (k, t) = parse_oauth_header(r#"OAuth oauth_consumer_key="abc", oauth_token="def""#);
        assert_eq!(k.as_deref(), Some("abc"));
        assert_eq!(t.as_deref(), Some("def"));
        assert_eq!(parse_oauth_header("Bearer x"), (None, None));
    }
}
