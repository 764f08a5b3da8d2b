//! Organization, board, list and label routes, and the board card listing.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::render::{self, CardOpts, Fields};
use super::{check_id, load_board, text_param, Params, Reply, Res, MAX_TEXT};
use crate::auth::{self, Access, Auth};
use crate::ids;
use crate::state::{is_label_color, State};

/// `GET /1/organizations/{id}` (id or name).
pub(super) fn organization(state: &State, auth: &Auth, id: &str, p: &Params) -> Res {
    let org = state
        .orgs
        .get(id)
        .or_else(|| state.orgs.values().find(|o| o.name == id));
    let Some(org) = org else {
        return Err(if ids::is_object_id(id) {
            Reply::not_found()
        } else {
            Reply::invalid_id()
        });
    };
    if !auth::can_org(state, auth, &org.id, Access::Read) {
        return Err(Reply::unauthorized());
    }
    Ok(Fields::parse(p.str("fields"), "all").apply(render::organization(state, org)))
}

/// `GET /1/boards/{id}`.
pub(super) fn board(state: &State, auth: &Auth, id: &str, p: &Params) -> Res {
    let id = load_board(state, auth, id, Access::Read)?;
    Ok(Fields::parse(p.str("fields"), "all").apply(render::board(state, &state.boards[&id])))
}

/// `GET /1/boards/{id}/lists`: `filter` all|closed|none|open (default open),
/// `fields`, and `cards` all|closed|none|open to nest each list's cards.
pub(super) fn board_lists(state: &State, auth: &Auth, id: &str, p: &Params) -> Res {
    let id = load_board(state, auth, id, Access::Read)?;
    let filter = p.str("filter").unwrap_or_else(|| "open".into());
    let keep: fn(bool) -> bool = match filter.as_str() {
        "all" => |_| true,
        "open" => |closed| !closed,
        "closed" => |closed| closed,
        "none" => |_| false,
        _ => return Err(Reply::invalid("filter")),
    };
    let cards_filter = p.str("cards").unwrap_or_else(|| "none".into());
    if !["all", "closed", "none", "open"].contains(&cards_filter.as_str()) {
        return Err(Reply::invalid("cards"));
    }
    let fields = Fields::parse(p.str("fields"), "all");
    let card_opts = CardOpts {
        fields: Fields::parse(p.str("card_fields"), "all"),
        checklists: false,
        members: false,
    };
    let mut lists: Vec<_> = state
        .lists
        .values()
        .filter(|l| l.id_board == id && keep(l.closed))
        .collect();
    lists.sort_by(|a, b| a.pos.total_cmp(&b.pos));
    let out = lists
        .into_iter()
        .map(|l| {
            let mut v = fields.apply(render::list(l));
            if cards_filter != "none" {
                let mut cards: Vec<_> = state
                    .cards
                    .values()
                    .filter(|c| c.id_list == l.id)
                    .filter(|c| match cards_filter.as_str() {
                        "open" => !c.closed,
                        "closed" => c.closed,
                        _ => true,
                    })
                    .collect();
                cards.sort_by(|a, b| a.pos.total_cmp(&b.pos));
                let cards: Vec<Value> = cards
                    .iter()
                    .map(|c| render::card(state, c, &card_opts))
                    .collect();
                if let Value::Object(m) = &mut v {
                    m.insert("cards".into(), Value::Array(cards));
                }
            }
            v
        })
        .collect();
    Ok(Value::Array(out))
}

/// Labels a board returns without `limit` (FACTS.md §3).
const DEFAULT_LABEL_LIMIT: i64 = 50;

/// `GET /1/boards/{id}/labels`: `fields`, `limit` default 50, 0..1000.
/// Labels beyond the limit are silently left out, oldest first kept.
pub(super) fn board_labels(state: &State, auth: &Auth, id: &str, p: &Params) -> Res {
    let id = load_board(state, auth, id, Access::Read)?;
    let limit = p.int("limit", 0, 1000)?.unwrap_or(DEFAULT_LABEL_LIMIT);
    let fields = Fields::parse(p.str("fields"), "all");
    let out: Vec<Value> = state
        .labels
        .values()
        .filter(|l| l.id_board == id)
        .take(usize::try_from(limit).unwrap_or(0))
        .map(|l| fields.apply(render::label(l, Some(render::label_uses(state, &l.id)))))
        .collect();
    Ok(Value::Array(out))
}

/// `POST /1/boards/{id}/labels` and `POST /1/labels` (with `idBoard`).
/// `color` may be null (or absent, or empty) or any of the 30 colours; a
/// missing name is taken as empty, as the Trello UI allows unnamed labels.
pub(super) fn create_label(state: &mut State, auth: &Auth, board: Option<&str>, p: &Params) -> Res {
    let id = match board {
        Some(b) => load_board(state, auth, b, Access::Write)?,
        None => {
            let b = p.str("idBoard").ok_or_else(|| Reply::invalid("idBoard"))?;
            if !ids::is_object_id(&b) && !ids::is_short_link(&b) {
                return Err(Reply::invalid("idBoard"));
            }
            let id = state
                .board_id(&b)
                .ok_or_else(|| Reply::invalid("idBoard"))?;
            if !auth::can_board(state, auth, &id, Access::Write) {
                return Err(Reply::unauthorized());
            }
            id
        }
    };
    let name = text_param(p, "name", 0, MAX_TEXT)?.unwrap_or_default();
    let color = match p.str("color") {
        None => None,
        Some(c) if c.is_empty() || c == "null" => None,
        Some(c) if is_label_color(&c) => Some(c),
        Some(_) => return Err(Reply::invalid("color")),
    };
    let lid = state.create_label(&id, &name, color.as_deref());
    Ok(Value::Object(render::label(&state.labels[&lid], Some(0))))
}

/// `GET /1/boards/{id}/members`: `fields` default `fullName,username`.
pub(super) fn board_members(state: &State, auth: &Auth, id: &str, p: &Params) -> Res {
    let id = load_board(state, auth, id, Access::Read)?;
    let fields = Fields::parse(p.str("fields"), "fullName,username");
    let filter = p.str("filter").unwrap_or_else(|| "all".into());
    let out: Vec<Value> = state.boards[&id]
        .members
        .iter()
        .filter(|bm| match filter.as_str() {
            "admins" | "owners" => bm.admin,
            "normal" => !bm.admin,
            "none" => false,
            _ => true,
        })
        .filter_map(|bm| state.members.get(&bm.id_member))
        .map(|m| fields.apply(render::member(state, m)))
        .collect();
    Ok(Value::Array(out))
}

/// A `before`/`since` bound: a card id or an ISO date.
fn id_bound(p: &Params, k: &str) -> Result<Option<String>, Reply> {
    let Some(v) = p.str(k) else {
        return Ok(None);
    };
    if v == "null" || v.is_empty() {
        return Ok(None);
    }
    if ids::is_object_id(&v) {
        return Ok(Some(v.to_ascii_lowercase()));
    }
    parse_date(&v)
        .map(|d| Some(ids::id_floor(d)))
        .ok_or_else(|| Reply::invalid(k))
}

/// Parses an ISO date or date-time (or epoch milliseconds).
pub(crate) fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    if let Ok(d) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(d.and_utc());
    }
    s.parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_millis)
}

/// `GET /1/boards/{id}/cards[/{filter}]`.
///
/// `filter` all|closed|complete|incomplete|none|open|visible (default
/// visible = open cards in open lists), `fields`, `limit` 1..1000,
/// `before`/`since` (card id or date; compared against the id's creation
/// order), `checklists` all|none, `members`. Cards come newest first (id
/// descending), so `limit` takes the newest and `before=<oldest id seen>`
/// walks back (FACTS.md §2). Without `limit` every matching card is
/// returned; the `API_TOO_MANY_CARDS_REQUESTED` size limit is not simulated.
pub(super) fn board_cards(
    state: &State,
    auth: &Auth,
    id: &str,
    path_filter: Option<&str>,
    p: &Params,
) -> Res {
    let id = load_board(state, auth, id, Access::Read)?;
    let filter = path_filter
        .map(str::to_owned)
        .or_else(|| p.str("filter"))
        .unwrap_or_else(|| "visible".into());
    let list_open = |list: &str| state.lists.get(list).is_some_and(|l| !l.closed);
    let keep = |c: &crate::state::Card| -> bool {
        match filter.as_str() {
            "all" => true,
            "open" => !c.closed,
            "closed" => c.closed,
            "visible" => !c.closed && list_open(&c.id_list),
            "complete" => c.due_complete,
            "incomplete" => !c.due_complete,
            _ => false,
        }
    };
    if ![
        "all",
        "open",
        "closed",
        "visible",
        "complete",
        "incomplete",
        "none",
    ]
    .contains(&filter.as_str())
    {
        return Err(Reply::invalid("filter"));
    }
    let limit = p.int("limit", 1, 1000)?;
    let before = id_bound(p, "before")?;
    let since = id_bound(p, "since")?;
    let opts = CardOpts::from_params(p)?;
    let out: Vec<Value> = state
        .cards
        .values()
        .rev()
        .filter(|c| c.id_board == id && keep(c))
        .filter(|c| before.as_deref().is_none_or(|b| c.id.as_str() < b))
        .filter(|c| since.as_deref().is_none_or(|s| c.id.as_str() > s))
        .take(limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX)))
        .map(|c| render::card(state, c, &opts))
        .collect();
    Ok(Value::Array(out))
}

/// `GET /1/lists/{id}`.
pub(super) fn list(state: &State, auth: &Auth, id: &str, p: &Params) -> Res {
    check_id(id, false)?;
    let l = state.lists.get(id).ok_or_else(Reply::not_found)?;
    if !auth::can_board(state, auth, &l.id_board, Access::Read) {
        return Err(Reply::unauthorized());
    }
    Ok(Fields::parse(p.str("fields"), "all").apply(render::list(l)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert!(parse_date("2020-03-09T19:41:51.396Z").is_some());
        assert!(parse_date("2020-03-09").is_some());
        assert!(parse_date("nope").is_none());
    }
}
