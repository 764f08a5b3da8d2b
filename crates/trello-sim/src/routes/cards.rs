//! Card and checklist routes.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::boards::parse_date;
use super::render::{self, CardOpts, Fields};
use super::{check_id, load_card, text_param, Params, Reply, Res, MAX_TEXT};
use crate::auth::{self, Access, Auth};
use crate::ids;
use crate::state::{dedup, NewCard, State};

fn full_card(state: &State, id: &str) -> Value {
    let opts = CardOpts {
        fields: Fields::All,
        checklists: false,
        members: false,
    };
    render::card(state, &state.cards[id], &opts)
}

/// A nullable date parameter: `Ok(None)` absent, `Ok(Some(None))` null.
fn date_param(p: &Params, k: &str) -> Result<Option<Option<DateTime<Utc>>>, Reply> {
    if p.is_null(k) || p.str(k).is_some_and(|s| s.is_empty()) {
        return Ok(Some(None));
    }
    match p.str(k) {
        None if p.has(k) => Err(Reply::invalid(k)),
        None => Ok(None),
        Some(s) => parse_date(&s)
            .map(|d| Some(Some(d)))
            .ok_or_else(|| Reply::invalid(k)),
    }
}

/// Validates `idLabels`: each must be a label of `board`.
fn labels_param(state: &State, p: &Params, board: &str) -> Result<Option<Vec<String>>, Reply> {
    let Some(list) = p.list("idLabels") else {
        return if p.has("idLabels") {
            Err(Reply::invalid("idLabels"))
        } else {
            Ok(None)
        };
    };
    for l in &list {
        if state.labels.get(l).is_none_or(|l| l.id_board != board) {
            return Err(Reply::invalid("idLabels"));
        }
    }
    Ok(Some(dedup(list)))
}

/// Validates `idMembers`: malformed ids are `invalid value for idMembers`; a
/// member not on `board` is the JSON `Invalid objectId` error (FACTS.md §1).
fn members_param(state: &State, p: &Params, board: &str) -> Result<Option<Vec<String>>, Reply> {
    let Some(list) = p.list("idMembers") else {
        return if p.has("idMembers") {
            Err(Reply::invalid("idMembers"))
        } else {
            Ok(None)
        };
    };
    for m in &list {
        if !ids::is_object_id(m) {
            return Err(Reply::invalid("idMembers"));
        }
        if !state.boards.get(board).is_some_and(|b| b.has_member(m)) {
            return Err(Reply::invalid_object_id());
        }
    }
    Ok(Some(dedup(list)))
}

/// Resolves an `idList` parameter the token may write to.
fn target_list(state: &State, auth: &Auth, l: &str) -> Result<String, Reply> {
    if !ids::is_object_id(l) {
        return Err(Reply::invalid("idList"));
    }
    let list = state.lists.get(l).ok_or_else(|| Reply::invalid("idList"))?;
    if !auth::can_board(state, auth, &list.id_board, Access::Write) {
        return Err(Reply::unauthorized());
    }
    Ok(list.id_board.clone())
}

/// What `keepFromSource` may name (FACTS.md §1; `all` is the default).
const KEEP_FROM_SOURCE: &[&str] = &[
    "all",
    "attachments",
    "checklists",
    "comments",
    "customFields",
    "due",
    "start",
    "labels",
    "members",
    "stickers",
];

/// `idCardSource`: a card the token can read, else `invalid value for idCardSource`.
fn source_card(state: &State, auth: &Auth, p: &Params) -> Result<Option<String>, Reply> {
    let Some(src) = p.str("idCardSource") else {
        return if p.has("idCardSource") {
            Err(Reply::invalid("idCardSource"))
        } else {
            Ok(None)
        };
    };
    if !ids::is_object_id(&src) && !ids::is_short_link(&src) {
        return Err(Reply::invalid("idCardSource"));
    }
    let id = state
        .card_id(&src)
        .ok_or_else(|| Reply::invalid("idCardSource"))?;
    if !auth::can_board(state, auth, &state.cards[&id].id_board, Access::Read) {
        return Err(Reply::unauthorized());
    }
    Ok(Some(id))
}

/// `keepFromSource`, a comma list of [`KEEP_FROM_SOURCE`], `all` when absent.
fn keep_param(p: &Params) -> Result<Vec<String>, Reply> {
    let keep = p
        .list("keepFromSource")
        .unwrap_or_else(|| vec!["all".into()]);
    if keep.iter().any(|k| !KEEP_FROM_SOURCE.contains(&k.as_str())) {
        return Err(Reply::invalid("keepFromSource"));
    }
    Ok(keep)
}

/// `POST /1/cards`: `idList` required; `name`, `desc`, `pos`, `due`,
/// `start`, `dueComplete`, `idLabels`, `idMembers` (comma list or array),
/// `idCardSource` with `keepFromSource`.
///
/// A copy (ADR 0006, FACTS.md §1) is made in the same request: the new card
/// takes the request's own fields; what the request leaves out it takes from
/// the source only where `keepFromSource` names it (labels, members, due,
/// start), and name and description from the source when absent. With
/// `checklists` every checklist of the source is copied with new ids, each
/// item keeping its name, position **and its state**: the harsher reading of
/// evidence that does not say whether Trello resets ticks. The copy is open
/// wherever the source is (an archived source gives an open card), and shares
/// nothing with its source afterwards.
pub(super) fn create(state: &mut State, auth: &Auth, p: &Params) -> Res {
    let list = p.str("idList").ok_or_else(|| Reply::invalid("idList"))?;
    let board = target_list(state, auth, &list)?;
    let source = source_card(state, auth, p)?;
    let keep = match &source {
        Some(_) => keep_param(p)?,
        None => Vec::new(),
    };
    let keeps = |what: &str| keep.iter().any(|k| k == what || k == "all");
    let src = source.as_ref().map(|id| state.cards[id].clone());
    let mut new = NewCard {
        name: text_param(p, "name", 1, MAX_TEXT)?.unwrap_or_default(),
        desc: text_param(p, "desc", 0, MAX_TEXT)?.unwrap_or_default(),
        pos: p.pos("pos")?,
        due: date_param(p, "due")?.flatten(),
        start: date_param(p, "start")?.flatten(),
        due_complete: p.bool("dueComplete")?.unwrap_or(false),
        id_labels: labels_param(state, p, &board)?.unwrap_or_default(),
        id_members: members_param(state, p, &board)?.unwrap_or_default(),
    };
    if let Some(src) = &src {
        if !p.has("name") {
            new.name.clone_from(&src.name);
        }
        if !p.has("desc") {
            new.desc.clone_from(&src.desc);
        }
        if keeps("labels") && !p.has("idLabels") {
            new.id_labels = src
                .id_labels
                .iter()
                .filter(|l| state.labels.get(*l).is_some_and(|l| l.id_board == board))
                .cloned()
                .collect();
        }
        if keeps("members") && !p.has("idMembers") {
            new.id_members = src
                .id_members
                .iter()
                .filter(|m| state.boards.get(&board).is_some_and(|b| b.has_member(m)))
                .cloned()
                .collect();
        }
        if keeps("due") && !p.has("due") {
            new.due = src.due;
        }
        if keeps("start") && !p.has("start") {
            new.start = src.start;
        }
    }
    let id = state
        .create_card(&list, new)
        .ok_or_else(|| Reply::invalid("idList"))?;
    if let Some(src) = &src {
        if keeps("checklists") {
            for cl in &src.id_checklists {
                state.copy_checklist(cl, &id, None, None);
            }
        }
    }
    Ok(full_card(state, &id))
}

/// `GET /1/cards/{id}`: `fields`, `checklists=all`, `members=true`.
pub(super) fn get(state: &State, auth: &Auth, id: &str, p: &Params) -> Res {
    let id = load_card(state, auth, id, Access::Read)?;
    let opts = CardOpts::from_params(p)?;
    Ok(render::card(state, &state.cards[&id], &opts))
}

/// `PUT /1/cards/{id}`. Every parameter is validated before anything
/// changes. `idLabels`/`idMembers` replace the whole list (FACTS.md §1);
/// `idList` moves (also across boards); `idBoard` alone moves to the first
/// open list of that board; `due`/`start` null clear.
pub(super) fn update(state: &mut State, auth: &Auth, id: &str, p: &Params) -> Res {
    let id = load_card(state, auth, id, Access::Write)?;
    let card_board = state.cards[&id].id_board.clone();
    let mut dest_list = None;
    let mut board = card_board.clone();
    if let Some(l) = p.str("idList") {
        board = target_list(state, auth, &l)?;
        dest_list = Some(l);
    }
    if let Some(b) = p.str("idBoard") {
        if !ids::is_object_id(&b) && !ids::is_short_link(&b) {
            return Err(Reply::invalid("idBoard"));
        }
        let bid = state
            .board_id(&b)
            .ok_or_else(|| Reply::invalid("idBoard"))?;
        if !auth::can_board(state, auth, &bid, Access::Write) {
            return Err(Reply::unauthorized());
        }
        match &dest_list {
            Some(_) if bid != board => return Err(Reply::invalid("idList")),
            Some(_) => {}
            None if bid != card_board => {
                let mut lists: Vec<_> = state
                    .lists
                    .values()
                    .filter(|l| l.id_board == bid && !l.closed)
                    .collect();
                lists.sort_by(|a, b| a.pos.total_cmp(&b.pos));
                let first = lists.first().ok_or_else(|| Reply::invalid("idBoard"))?;
                dest_list = Some(first.id.clone());
                board = bid;
            }
            None => {}
        }
    }
    let name = text_param(p, "name", 1, MAX_TEXT)?;
    let desc = text_param(p, "desc", 0, MAX_TEXT)?;
    let closed = p.bool("closed")?;
    let pos = p.pos("pos")?;
    let due = date_param(p, "due")?;
    let start = date_param(p, "start")?;
    let due_complete = p.bool("dueComplete")?;
    let labels = labels_param(state, p, &board)?;
    let members = members_param(state, p, &board)?;

    let moved = dest_list.is_some();
    if let Some(l) = dest_list {
        state.move_card(&id, &l, pos);
    }
    let c = state.cards.get_mut(&id).ok_or_else(Reply::not_found)?;
    if let Some(v) = name {
        c.name = v;
    }
    if let Some(v) = desc {
        c.desc = v;
    }
    if let Some(v) = closed {
        c.closed = v;
    }
    if let Some(v) = due {
        c.due = v;
    }
    if let Some(v) = start {
        c.start = v;
    }
    if let Some(v) = due_complete {
        c.due_complete = v;
    }
    if let Some(v) = labels {
        c.id_labels = v;
    }
    if let Some(v) = members {
        c.id_members = v;
    }
    if !moved {
        if let Some(pos) = pos {
            let list = c.id_list.clone();
            let siblings: Vec<f64> = state
                .cards
                .values()
                .filter(|o| o.id_list == list && o.id != id && !o.closed)
                .map(|o| o.pos)
                .collect();
            let new_pos = pos.resolve(siblings.into_iter());
            if let Some(c) = state.cards.get_mut(&id) {
                c.pos = new_pos;
            }
            state.note_card_pos(&list, new_pos);
        }
    }
    state.touch_card(&id);
    Ok(full_card(state, &id))
}

/// `DELETE /1/cards/{id}`: permanent.
pub(super) fn delete(state: &mut State, auth: &Auth, id: &str) -> Res {
    let id = load_card(state, auth, id, Access::Write)?;
    state.delete_card(&id);
    Ok(json!({ "limits": {} }))
}

/// `POST /1/cards/{id}/idLabels?value=<idLabel>`: answers the card's label ids.
pub(super) fn add_label(state: &mut State, auth: &Auth, id: &str, p: &Params) -> Res {
    let id = load_card(state, auth, id, Access::Write)?;
    let label = p.str("value").ok_or_else(|| Reply::invalid("value"))?;
    let board = state.cards[&id].id_board.clone();
    let on_board = state
        .labels
        .get(&label)
        .is_some_and(|l| l.id_board == board);
    if !ids::is_object_id(&label) || !on_board {
        return Err(Reply::invalid("value"));
    }
    let c = state.cards.get_mut(&id).ok_or_else(Reply::not_found)?;
    if c.id_labels.contains(&label) {
        return Err(Reply::text(400, "that label is already on the card"));
    }
    c.id_labels.push(label);
    let out = json!(c.id_labels);
    state.touch_card(&id);
    Ok(out)
}

/// `DELETE /1/cards/{id}/idLabels/{idLabel}`.
pub(super) fn remove_label(state: &mut State, auth: &Auth, id: &str, label: &str) -> Res {
    let id = load_card(state, auth, id, Access::Write)?;
    check_id(label, false)?;
    let c = state.cards.get_mut(&id).ok_or_else(Reply::not_found)?;
    if !c.id_labels.iter().any(|l| l == label) {
        return Err(Reply::text(400, "that label is not on the card"));
    }
    c.id_labels.retain(|l| l != label);
    state.touch_card(&id);
    Ok(json!({ "_value": null }))
}

fn members_json(state: &State, id: &str) -> Value {
    let ms: Vec<Value> = state.cards[id]
        .id_members
        .iter()
        .filter_map(|m| state.members.get(m))
        .map(|m| json!({ "id": m.id, "username": m.username, "fullName": m.full_name }))
        .collect();
    Value::Array(ms)
}

/// `POST /1/cards/{id}/idMembers?value=<idMember>`: answers the card's members.
pub(super) fn add_member(state: &mut State, auth: &Auth, id: &str, p: &Params) -> Res {
    let id = load_card(state, auth, id, Access::Write)?;
    let member = p.str("value").ok_or_else(|| Reply::invalid("value"))?;
    if !ids::is_object_id(&member) {
        return Err(Reply::invalid("value"));
    }
    let board = state.cards[&id].id_board.clone();
    if !state
        .boards
        .get(&board)
        .is_some_and(|b| b.has_member(&member))
    {
        return Err(Reply::invalid_object_id());
    }
    let c = state.cards.get_mut(&id).ok_or_else(Reply::not_found)?;
    if c.id_members.contains(&member) {
        return Err(Reply::text(400, "member is already on the card"));
    }
    c.id_members.push(member);
    state.touch_card(&id);
    Ok(members_json(state, &id))
}

/// `DELETE /1/cards/{id}/idMembers/{idMember}`: answers the remaining members.
pub(super) fn remove_member(state: &mut State, auth: &Auth, id: &str, member: &str) -> Res {
    let id = load_card(state, auth, id, Access::Write)?;
    check_id(member, false)?;
    let c = state.cards.get_mut(&id).ok_or_else(Reply::not_found)?;
    if !c.id_members.iter().any(|m| m == member) {
        return Err(Reply::text(400, "member is not on the card"));
    }
    c.id_members.retain(|m| m != member);
    state.touch_card(&id);
    Ok(members_json(state, &id))
}

/// `POST /1/cards/{id}/checklists` and `POST /1/checklists` (`idCard`).
/// For `POST /1/checklists` a well-formed `idCard` that does not exist
/// answers 401, not 404 (FACTS.md §9, lislenytorquato/teste-api-trello).
pub(super) fn create_checklist(
    state: &mut State,
    auth: &Auth,
    card: Option<&str>,
    p: &Params,
) -> Res {
    let id = match card {
        Some(c) => load_card(state, auth, c, Access::Write)?,
        None => {
            let c = p.str("idCard").ok_or_else(|| Reply::invalid("idCard"))?;
            if !ids::is_object_id(&c) && !ids::is_short_link(&c) {
                return Err(Reply::invalid("idCard"));
            }
            let id = state.card_id(&c).ok_or_else(Reply::unauthorized)?;
            if !auth::can_board(state, auth, &state.cards[&id].id_board, Access::Write) {
                return Err(Reply::unauthorized());
            }
            id
        }
    };
    let name = text_param(p, "name", 0, MAX_TEXT)?;
    let pos = p.pos("pos")?;
    // `idChecklistSource` (FACTS.md §4, ADR 0006): a checklist the token can
    // read; its items are copied with their names, positions and states.
    let source = match p.str("idChecklistSource") {
        None if p.has("idChecklistSource") => return Err(Reply::invalid("idChecklistSource")),
        None => None,
        Some(src) => {
            if !ids::is_object_id(&src) {
                return Err(Reply::invalid("idChecklistSource"));
            }
            let cl = state
                .checklists
                .get(&src)
                .ok_or_else(|| Reply::invalid("idChecklistSource"))?;
            if !auth::can_board(state, auth, &cl.id_board, Access::Read) {
                return Err(Reply::unauthorized());
            }
            Some(src)
        }
    };
    let cl = match source {
        Some(src) => state.copy_checklist(&src, &id, name.as_deref(), pos),
        None => state.create_checklist(&id, name.as_deref().unwrap_or("Checklist"), pos),
    }
    .ok_or_else(Reply::not_found)?;
    Ok(Value::Object(render::checklist(
        &state.checklists[&cl],
        true,
    )))
}

/// `GET /1/cards/{id}/checklists`: `checkItems` all|none (default all).
pub(super) fn checklists(state: &State, auth: &Auth, id: &str, p: &Params) -> Res {
    let id = load_card(state, auth, id, Access::Read)?;
    let with_items = match p.str("checkItems").as_deref() {
        None | Some("all") => true,
        Some("none") => false,
        Some(_) => return Err(Reply::invalid("checkItems")),
    };
    let fields = Fields::parse(p.str("fields"), "all");
    let out: Vec<Value> = state.cards[&id]
        .id_checklists
        .iter()
        .filter_map(|cl| state.checklists.get(cl))
        .map(|cl| {
            let mut v = fields.apply(render::checklist(cl, false));
            if with_items {
                if let (Value::Object(m), Some(items)) =
                    (&mut v, render::checklist(cl, true).remove("checkItems"))
                {
                    m.insert("checkItems".into(), items);
                }
            }
            v
        })
        .collect();
    Ok(Value::Array(out))
}

fn load_checklist(state: &State, auth: &Auth, id: &str, access: Access) -> Result<String, Reply> {
    check_id(id, false)?;
    let cl = state.checklists.get(id).ok_or_else(Reply::not_found)?;
    if !auth::can_board(state, auth, &cl.id_board, access) {
        return Err(Reply::unauthorized());
    }
    Ok(id.to_owned())
}

/// `POST /1/checklists/{id}/checkItems`: `name` required, `pos`, `checked`.
pub(super) fn create_check_item(state: &mut State, auth: &Auth, id: &str, p: &Params) -> Res {
    let id = load_checklist(state, auth, id, Access::Write)?;
    let name = text_param(p, "name", 1, MAX_TEXT)?.ok_or_else(|| Reply::invalid("name"))?;
    let pos = p.pos("pos")?;
    let checked = p.bool("checked")?.unwrap_or(false);
    let item = state
        .create_check_item(&id, &name, pos, checked)
        .ok_or_else(Reply::not_found)?;
    let cl = render::checklist(&state.checklists[&id], true);
    let found = cl
        .get("checkItems")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|i| i["id"] == item.as_str()).cloned())
        .unwrap_or(Value::Null);
    Ok(found)
}

/// `PUT /1/cards/{idCard}/checkItem/{idCheckItem}`: `state`
/// complete|incomplete|true|false, `name`, `pos`.
pub(super) fn update_check_item(
    state: &mut State,
    auth: &Auth,
    card: &str,
    item: &str,
    p: &Params,
) -> Res {
    let card = load_card(state, auth, card, Access::Write)?;
    check_id(item, false)?;
    let cl = state
        .checklist_of_item(&card, item)
        .ok_or_else(Reply::not_found)?;
    let complete = match p.str("state").as_deref() {
        None => None,
        Some("complete" | "true") => Some(true),
        Some("incomplete" | "false") => Some(false),
        Some(_) => return Err(Reply::invalid("state")),
    };
    let name = text_param(p, "name", 1, MAX_TEXT)?;
    let pos = p.pos("pos")?;
    state
        .update_check_item(&cl, item, complete, name, pos)
        .ok_or_else(Reply::not_found)?;
    let rendered = render::checklist(&state.checklists[&cl], true);
    let mut found = rendered
        .get("checkItems")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|i| i["id"] == item).cloned())
        .unwrap_or(Value::Null);
    if let Value::Object(m) = &mut found {
        m.insert("idCard".into(), Value::String(card));
    }
    Ok(found)
}

/// `DELETE /1/checklists/{id}/checkItems/{idCheckItem}`.
pub(super) fn delete_check_item(state: &mut State, auth: &Auth, id: &str, item: &str) -> Res {
    let id = load_checklist(state, auth, id, Access::Write)?;
    check_id(item, false)?;
    if !state.delete_check_item(&id, item) {
        return Err(Reply::not_found());
    }
    Ok(json!({ "_value": null }))
}
