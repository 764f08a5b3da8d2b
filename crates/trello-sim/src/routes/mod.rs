//! Route table, request parameters, replies and the dispatcher shared by
//! plain requests and `/1/batch`.

mod boards;
mod cards;
mod members;
pub(crate) mod render;
pub(crate) mod webhooks;

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::auth::{self, Access, Auth};
use crate::ids;
use crate::state::{Pos, State};

/// Body of a reply.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ReplyBody {
    Json(Value),
    Text(String),
    /// A browser page.
    Html(String),
    /// A 302 to this location.
    Redirect(String),
}

/// A status and body, the outcome of one route.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: ReplyBody,
}

impl Reply {
    pub(crate) fn ok(v: Value) -> Reply {
        Reply {
            status: 200,
            body: ReplyBody::Json(v),
        }
    }

    pub(crate) fn text(status: u16, s: &str) -> Reply {
        Reply {
            status,
            body: ReplyBody::Text(s.to_owned()),
        }
    }

    pub(crate) fn html(status: u16, s: &str) -> Reply {
        Reply {
            status,
            body: ReplyBody::Html(s.to_owned()),
        }
    }

    pub(crate) fn redirect(location: &str) -> Reply {
        Reply {
            status: 302,
            body: ReplyBody::Redirect(location.to_owned()),
        }
    }

    pub(crate) fn json(status: u16, v: Value) -> Reply {
        Reply {
            status,
            body: ReplyBody::Json(v),
        }
    }

    /// 400 `invalid value for <param>`.
    pub(crate) fn invalid(param: &str) -> Reply {
        Reply::text(400, &format!("invalid value for {param}"))
    }

    /// 400 `invalid id`.
    pub(crate) fn invalid_id() -> Reply {
        Reply::text(400, "invalid id")
    }

    /// 401 `unauthorized permission requested`.
    pub(crate) fn unauthorized() -> Reply {
        Reply::text(401, "unauthorized permission requested")
    }

    /// 404 `The requested resource was not found.`
    pub(crate) fn not_found() -> Reply {
        Reply::text(404, "The requested resource was not found.")
    }

    /// 400 JSON `{"message":"Invalid objectId","error":"ERROR"}`.
    pub(crate) fn invalid_object_id() -> Reply {
        Reply::json(
            400,
            json!({"message": "Invalid objectId", "error": "ERROR"}),
        )
    }

    /// The body as text (JSON bodies serialized).
    pub(crate) fn body_text(&self) -> String {
        match &self.body {
            ReplyBody::Text(s) | ReplyBody::Html(s) => s.clone(),
            ReplyBody::Redirect(_) => String::new(),
            ReplyBody::Json(v) => v.to_string(),
        }
    }
}

/// Handler result: a 200 JSON value or an error reply.
pub(crate) type Res = Result<Value, Reply>;

/// Request parameters merged from the query string and a JSON or form body
/// (body values win).
#[derive(Debug, Clone, Default)]
pub(crate) struct Params {
    map: HashMap<String, Value>,
}

impl Params {
    pub(crate) fn from_pairs<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Params {
        let mut p = Params::default();
        for (k, v) in pairs {
            p.map.insert(k, Value::String(v));
        }
        p
    }

    pub(crate) fn merge_json(&mut self, obj: Map<String, Value>) {
        self.map.extend(obj);
    }

    pub(crate) fn insert(&mut self, k: &str, v: Value) {
        self.map.insert(k.to_owned(), v);
    }

    /// The names of the parameters, sorted, without the credentials (`key`, `token`):
    /// what the request log keeps of them (never a value).
    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .map
            .keys()
            .filter(|k| !matches!(k.as_str(), "key" | "token"))
            .cloned()
            .collect();
        names.sort();
        names
    }

    pub(crate) fn has(&self, k: &str) -> bool {
        self.map.contains_key(k)
    }

    /// The value as a string; JSON numbers and booleans are stringified,
    /// null gives `None`.
    pub(crate) fn str(&self, k: &str) -> Option<String> {
        match self.map.get(k)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// True when the parameter is present and null (JSON null or `"null"`).
    pub(crate) fn is_null(&self, k: &str) -> bool {
        matches!(self.map.get(k), Some(Value::Null))
            || matches!(self.map.get(k), Some(Value::String(s)) if s == "null")
    }

    /// A boolean parameter (`true`/`false`, JSON booleans).
    pub(crate) fn bool(&self, k: &str) -> Result<Option<bool>, Reply> {
        match self.map.get(k) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" => Ok(Some(true)),
            Some(Value::String(s)) if s == "false" => Ok(Some(false)),
            Some(_) => Err(Reply::invalid(k)),
        }
    }

    /// A list parameter: a comma-separated string or a JSON array.
    pub(crate) fn list(&self, k: &str) -> Option<Vec<String>> {
        match self.map.get(k)? {
            Value::String(s) => Some(
                s.split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
            Value::Array(a) => Some(
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
            ),
            Value::Null => Some(Vec::new()),
            _ => None,
        }
    }

    /// A `pos` parameter.
    pub(crate) fn pos(&self, k: &str) -> Result<Option<Pos>, Reply> {
        match self.str(k) {
            None => Ok(None),
            Some(s) => Pos::parse(&s).map(Some).ok_or_else(|| Reply::invalid(k)),
        }
    }

    /// An integer parameter within `lo..=hi`.
    pub(crate) fn int(&self, k: &str, lo: i64, hi: i64) -> Result<Option<i64>, Reply> {
        match self.str(k) {
            None => Ok(None),
            Some(s) => s
                .parse::<i64>()
                .ok()
                .filter(|v| (lo..=hi).contains(v))
                .map(Some)
                .ok_or_else(|| Reply::invalid(k)),
        }
    }
}

/// UTF-16 length, as Trello's JavaScript servers measure strings.
pub(crate) fn js_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// A text parameter with a length range; `Ok(None)` when absent.
pub(crate) fn text_param(
    p: &Params,
    k: &str,
    min: usize,
    max: usize,
) -> Result<Option<String>, Reply> {
    match p.str(k) {
        None if p.is_null(k) && min == 0 => Ok(Some(String::new())),
        None if p.has(k) => Err(Reply::invalid(k)),
        None => Ok(None),
        Some(s) => {
            let n = js_len(&s);
            if n < min || n > max {
                Err(Reply::invalid(k))
            } else {
                Ok(Some(s))
            }
        }
    }
}

/// Longest name or description Trello accepts (FACTS.md §1).
pub(crate) const MAX_TEXT: usize = 16384;

/// The routes the simulator answers, with their path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Member(String),
    MemberBoards(String),
    Token(String),
    TokenMember(String),
    TokenDelete(String),
    Organization(String),
    Board(String),
    BoardLists(String),
    BoardLabels(String),
    BoardLabelCreate(String),
    BoardMembers(String),
    BoardCards(String, Option<String>),
    List(String),
    LabelCreate,
    CardCreate,
    CardGet(String),
    CardUpdate(String),
    CardDelete(String),
    CardAddLabel(String),
    CardRemoveLabel(String, String),
    CardAddMember(String),
    CardRemoveMember(String, String),
    CardChecklistCreate(String),
    CardChecklists(String),
    ChecklistCreate,
    CheckItemCreate(String),
    CheckItemUpdate(String, String),
    CheckItemDelete(String, String),
    Batch,
    /// `POST /1/webhooks` (None) or `POST /1/tokens/{token}/webhooks`.
    WebhookCreate(Option<String>),
    WebhookGet(String),
    WebhookDelete(String),
    TokenWebhooks(String),
}

impl Route {
    /// Matches a method and the path segments after `/1/`.
    pub(crate) fn parse(method: &str, segs: &[String]) -> Option<(Route, &'static str)> {
        let s: Vec<&str> = segs.iter().map(String::as_str).collect();
        let o = |x: &str| x.to_owned();
        let r = match (method, s.as_slice()) {
            ("GET", ["members", id]) => (Route::Member(o(id)), "/1/members/{idOrUsername}"),
            ("GET", ["members", id, "boards"]) => {
                (Route::MemberBoards(o(id)), "/1/members/{id}/boards")
            }
            ("GET", ["tokens", t]) => (Route::Token(o(t)), "/1/tokens/{token}"),
            ("GET", ["tokens", t, "member"]) => {
                (Route::TokenMember(o(t)), "/1/tokens/{token}/member")
            }
            ("DELETE", ["tokens", t]) => (Route::TokenDelete(o(t)), "/1/tokens/{token}/"),
            ("GET", ["organizations", id]) => (Route::Organization(o(id)), "/1/organizations/{id}"),
            ("GET", ["boards", id]) => (Route::Board(o(id)), "/1/boards/{id}"),
            ("GET", ["boards", id, "lists"]) => (Route::BoardLists(o(id)), "/1/boards/{id}/lists"),
            ("GET", ["boards", id, "labels"]) => {
                (Route::BoardLabels(o(id)), "/1/boards/{id}/labels")
            }
            ("POST", ["boards", id, "labels"]) => {
                (Route::BoardLabelCreate(o(id)), "/1/boards/{id}/labels")
            }
            ("GET", ["boards", id, "members"]) => {
                (Route::BoardMembers(o(id)), "/1/boards/{id}/members")
            }
            ("GET", ["boards", id, "cards"]) => {
                (Route::BoardCards(o(id), None), "/1/boards/{id}/cards")
            }
            ("GET", ["boards", id, "cards", f]) => (
                Route::BoardCards(o(id), Some(o(f))),
                "/1/boards/{id}/cards/{filter}",
            ),
            ("GET", ["lists", id]) => (Route::List(o(id)), "/1/lists/{id}"),
            ("POST", ["labels"]) => (Route::LabelCreate, "/1/labels"),
            ("POST", ["cards"]) => (Route::CardCreate, "/1/cards"),
            ("GET", ["cards", id]) => (Route::CardGet(o(id)), "/1/cards/{id}"),
            ("PUT", ["cards", id]) => (Route::CardUpdate(o(id)), "/1/cards/{id}"),
            ("DELETE", ["cards", id]) => (Route::CardDelete(o(id)), "/1/cards/{id}"),
            ("POST", ["cards", id, "idLabels"]) => {
                (Route::CardAddLabel(o(id)), "/1/cards/{id}/idLabels")
            }
            ("DELETE", ["cards", id, "idLabels", l]) => (
                Route::CardRemoveLabel(o(id), o(l)),
                "/1/cards/{id}/idLabels/{idLabel}",
            ),
            ("POST", ["cards", id, "idMembers"]) => {
                (Route::CardAddMember(o(id)), "/1/cards/{id}/idMembers")
            }
            ("DELETE", ["cards", id, "idMembers", m]) => (
                Route::CardRemoveMember(o(id), o(m)),
                "/1/cards/{id}/idMembers/{idMember}",
            ),
            ("POST", ["cards", id, "checklists"]) => (
                Route::CardChecklistCreate(o(id)),
                "/1/cards/{id}/checklists",
            ),
            ("GET", ["cards", id, "checklists"]) => {
                (Route::CardChecklists(o(id)), "/1/cards/{id}/checklists")
            }
            ("POST", ["checklists"]) => (Route::ChecklistCreate, "/1/checklists"),
            ("POST", ["checklists", id, "checkItems"]) => (
                Route::CheckItemCreate(o(id)),
                "/1/checklists/{id}/checkItems",
            ),
            ("PUT", ["cards", c, "checkItem", i]) => (
                Route::CheckItemUpdate(o(c), o(i)),
                "/1/cards/{idCard}/checkItem/{idCheckItem}",
            ),
            ("DELETE", ["checklists", c, "checkItems", i]) => (
                Route::CheckItemDelete(o(c), o(i)),
                "/1/checklists/{id}/checkItems/{idCheckItem}",
            ),
            ("GET", ["batch"]) => (Route::Batch, "/1/batch"),
            ("POST", ["webhooks"]) => (Route::WebhookCreate(None), "/1/webhooks/"),
            ("POST", ["tokens", t, "webhooks"]) => (
                Route::WebhookCreate(Some(o(t))),
                "/1/tokens/{token}/webhooks",
            ),
            ("GET", ["webhooks", id]) => (Route::WebhookGet(o(id)), "/1/webhooks/{id}"),
            ("DELETE", ["webhooks", id]) => (Route::WebhookDelete(o(id)), "/1/webhooks/{id}"),
            ("GET", ["tokens", t, "webhooks"]) => {
                (Route::TokenWebhooks(o(t)), "/1/tokens/{token}/webhooks")
            }
            _ => return None,
        };
        Some(r)
    }

    /// Routes under Trello's separate /1/members limit. Nested routes such
    /// as /1/members/me/boards do not count (FACTS.md §5).
    pub(crate) fn is_members_limited(&self) -> bool {
        matches!(self, Route::Member(_))
    }
}

/// Splits a path (after `/1`) into percent-decoded segments, ignoring one
/// trailing slash as Trello's router does.
pub(crate) fn segments(rest: &str) -> Vec<String> {
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Vec::new();
    }
    rest.split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

/// Checks a path id is 24 hex (or, with `short_ok`, an 8-character shortLink).
pub(crate) fn check_id(id: &str, short_ok: bool) -> Result<(), Reply> {
    if ids::is_object_id(id) || (short_ok && ids::is_short_link(id)) {
        Ok(())
    } else {
        Err(Reply::invalid_id())
    }
}

/// Resolves a board path id the token may access.
pub(crate) fn load_board(
    state: &State,
    auth: &Auth,
    id: &str,
    access: Access,
) -> Result<String, Reply> {
    check_id(id, true)?;
    let id = state.board_id(id).ok_or_else(Reply::not_found)?;
    if auth::can_board(state, auth, &id, access) {
        Ok(id)
    } else {
        Err(Reply::unauthorized())
    }
}

/// Resolves a card path id (id or shortLink) the token may access.
pub(crate) fn load_card(
    state: &State,
    auth: &Auth,
    id: &str,
    access: Access,
) -> Result<String, Reply> {
    check_id(id, true)?;
    let id = state
        .card_id(id)
        .ok_or_else(|| Reply::text(404, "Could not find the card"))?;
    let board = &state.cards[&id].id_board;
    if auth::can_board(state, auth, board, access) {
        Ok(id)
    } else {
        Err(Reply::unauthorized())
    }
}

/// The card a card route changes, with its list and archived flag before the change.
fn card_before(state: &State, route: &Route) -> Option<(String, String, bool)> {
    let id = match route {
        Route::CardUpdate(id)
        | Route::CardAddLabel(id)
        | Route::CardRemoveLabel(id, _)
        | Route::CardAddMember(id)
        | Route::CardRemoveMember(id, _)
        | Route::CardChecklistCreate(id)
        | Route::CheckItemUpdate(id, _) => state.card_id(id)?,
        Route::CheckItemCreate(cl) | Route::CheckItemDelete(cl, _) => {
            state.checklists.get(cl)?.id_card.clone()
        }
        _ => return None,
    };
    let c = state.cards.get(&id)?;
    Some((id, c.id_list.clone(), c.closed))
}

/// The action a successful write produces, for the webhooks (Trello's action types).
fn emit_for(
    state: &mut State,
    auth: &Auth,
    route: &Route,
    before: Option<(String, String, bool)>,
    v: &Value,
) {
    let member = Some(auth.member.as_str());
    let kind = match route {
        Route::CardCreate => {
            if let Some(id) = v.get("id").and_then(Value::as_str) {
                state.emit_card_action("createCard", id, member, json!({}));
            }
            return;
        }
        Route::ChecklistCreate => {
            if let Some(id) = v.get("idCard").and_then(Value::as_str) {
                state.emit_card_action("addChecklistToCard", id, member, json!({}));
            }
            return;
        }
        Route::CardUpdate(_) => "updateCard",
        Route::CardAddLabel(_) => "addLabelToCard",
        Route::CardRemoveLabel(..) => "removeLabelFromCard",
        Route::CardAddMember(_) => "addMemberToCard",
        Route::CardRemoveMember(..) => "removeMemberFromCard",
        Route::CardChecklistCreate(_) => "addChecklistToCard",
        Route::CheckItemCreate(_) => "createCheckItem",
        Route::CheckItemUpdate(..) => "updateCheckItemStateOnCard",
        Route::CheckItemDelete(..) => "deleteCheckItem",
        _ => return,
    };
    let Some((card, list_before, closed_before)) = before else {
        return;
    };
    let extra = state.card_change(&card, &list_before, closed_before);
    state.emit_card_action(kind, &card, member, extra);
}

/// Answers one routed request for an authenticated token.
pub(crate) fn dispatch(state: &mut State, auth: &Auth, route: Route, p: &Params) -> Reply {
    let before = card_before(state, &route);
    let watched = route.clone();
    // A deleted card is gone once the route ran: its action is made beforehand, when
    // the delete will succeed.
    if let Route::CardDelete(id) = &route {
        if !state.webhooks.is_empty() {
            if let Ok(card) = load_card(state, auth, id, Access::Write) {
                state.emit_card_action("deleteCard", &card, Some(&auth.member), json!({}));
            }
        }
    }
    let res = match route {
        Route::Member(id) => members::member(state, auth, &id, p),
        Route::MemberBoards(id) => members::member_boards(state, auth, &id, p),
        Route::Token(t) => members::token(state, auth, &t, p),
        Route::TokenMember(t) => members::token_member(state, auth, &t, p),
        Route::TokenDelete(t) => members::token_delete(state, auth, &t),
        Route::Organization(id) => boards::organization(state, auth, &id, p),
        Route::Board(id) => boards::board(state, auth, &id, p),
        Route::BoardLists(id) => boards::board_lists(state, auth, &id, p),
        Route::BoardLabels(id) => boards::board_labels(state, auth, &id, p),
        Route::BoardLabelCreate(id) => boards::create_label(state, auth, Some(&id), p),
        Route::LabelCreate => boards::create_label(state, auth, None, p),
        Route::BoardMembers(id) => boards::board_members(state, auth, &id, p),
        Route::BoardCards(id, f) => boards::board_cards(state, auth, &id, f.as_deref(), p),
        Route::List(id) => boards::list(state, auth, &id, p),
        Route::CardCreate => cards::create(state, auth, p),
        Route::CardGet(id) => cards::get(state, auth, &id, p),
        Route::CardUpdate(id) => cards::update(state, auth, &id, p),
        Route::CardDelete(id) => cards::delete(state, auth, &id),
        Route::CardAddLabel(id) => cards::add_label(state, auth, &id, p),
        Route::CardRemoveLabel(id, l) => cards::remove_label(state, auth, &id, &l),
        Route::CardAddMember(id) => cards::add_member(state, auth, &id, p),
        Route::CardRemoveMember(id, m) => cards::remove_member(state, auth, &id, &m),
        Route::CardChecklistCreate(id) => cards::create_checklist(state, auth, Some(&id), p),
        Route::ChecklistCreate => cards::create_checklist(state, auth, None, p),
        Route::CardChecklists(id) => cards::checklists(state, auth, &id, p),
        Route::CheckItemCreate(id) => cards::create_check_item(state, auth, &id, p),
        Route::CheckItemUpdate(c, i) => cards::update_check_item(state, auth, &c, &i, p),
        Route::CheckItemDelete(c, i) => cards::delete_check_item(state, auth, &c, &i),
        Route::Batch => batch(state, auth, p),
        Route::WebhookCreate(_) => Err(Reply::text(400, "webhooks are created outside batch")),
        Route::WebhookGet(id) => webhooks::get(state, auth, &id),
        Route::WebhookDelete(id) => webhooks::delete(state, auth, &id),
        Route::TokenWebhooks(t) => webhooks::token_webhooks(state, auth, &t),
    };
    match res {
        Ok(v) => {
            if !state.webhooks.is_empty() {
                emit_for(state, auth, &watched, before, &v);
            }
            Reply::ok(v)
        }
        Err(r) => r,
    }
}

/// Most routes one batch may carry (FACTS.md §8).
const BATCH_MAX: usize = 10;

/// `GET /1/batch?urls=/a,/b`: runs up to ten GET routes (written without
/// `/1`) with the outer request's credentials and answers an array in URL
/// order, `{"200": body}` or `{"name","message","statusCode"}` per route.
///
/// The batch counts as one request against the rate limits: Trello presents
/// batching as the way to "more easily stay within your API rate limit"
/// (Trello's batch reference, as quoted in trello-for-wolves `Batch.d.ts`).
/// A nested `/batch` answers a 400 element. The error `name` values
/// (`BadRequestError`, ...) are a guess; clients read `statusCode`.
fn batch(state: &mut State, auth: &Auth, p: &Params) -> Res {
    let urls = p.list("urls").unwrap_or_default();
    if urls.is_empty() || urls.len() > BATCH_MAX {
        return Err(Reply::invalid("urls"));
    }
    let mut out = Vec::new();
    for u in urls {
        let (path, query) = u.split_once('?').unwrap_or((&u, ""));
        let reply = if !path.starts_with('/') {
            Reply::invalid("urls")
        } else {
            let segs = segments(path);
            match Route::parse("GET", &segs) {
                Some((Route::Batch, _)) => Reply::text(400, "batch requests cannot be nested"),
                Some((route, _)) => {
                    let inner = Params::from_pairs(
                        url::form_urlencoded::parse(query.as_bytes()).into_owned(),
                    );
                    dispatch(state, auth, route, &inner)
                }
                None => Reply::text(404, &format!("Cannot GET /1{path}")),
            }
        };
        if reply.status == 200 {
            let body = match reply.body {
                ReplyBody::Json(v) => v,
                ReplyBody::Text(s) | ReplyBody::Html(s) | ReplyBody::Redirect(s) => {
                    Value::String(s)
                }
            };
            out.push(json!({ "200": body }));
        } else {
            let name = match reply.status {
                400 => "BadRequestError",
                401 => "UnauthorizedError",
                404 => "NotFoundError",
                429 => "TooManyRequestsError",
                _ => "Error",
            };
            out.push(json!({
                "name": name,
                "message": reply.body_text(),
                "statusCode": reply.status,
            }));
        }
    }
    Ok(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_with_and_without_trailing_slash() {
        let segs = segments("/tokens/abc/");
        assert_eq!(
            Route::parse("DELETE", &segs).map(|r| r.0),
            Some(Route::TokenDelete("abc".into()))
        );
        let segs = segments("/tokens/abc");
        assert_eq!(
            Route::parse("DELETE", &segs).map(|r| r.0),
            Some(Route::TokenDelete("abc".into()))
        );
        assert!(Route::parse("POST", &segments("/cards/x/idLabels/y")).is_none());
    }

    #[test]
    fn params() {
        let p = Params::from_pairs([("idLabels".to_string(), "a,b".to_string())]);
        assert_eq!(
            p.list("idLabels"),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(js_len("é😀"), 3);
    }
}
