//! JSON shapes of Trello objects, with `fields` selection.

use std::collections::HashSet;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use crate::state::{Board, Card, Checklist, Label, List, Member, Organization, State, Token};

/// A `fields` parameter: `all` or a list. Unknown names are ignored
/// (the simulator does not carry every field real Trello has).
#[derive(Debug, Clone)]
pub(crate) enum Fields {
    All,
    Only(HashSet<String>),
}

impl Fields {
    /// Parses `fields`, falling back to `default` (a comma list or `all`).
    pub(crate) fn parse(value: Option<String>, default: &str) -> Fields {
        let v = value.unwrap_or_else(|| default.to_owned());
        if v.split(',').any(|f| f.trim() == "all") {
            Fields::All
        } else {
            Fields::Only(
                v.split(',')
                    .map(|f| f.trim().to_owned())
                    .filter(|f| !f.is_empty())
                    .collect(),
            )
        }
    }

    /// Keeps `id` and the selected fields of `obj`.
    pub(crate) fn apply(&self, obj: Map<String, Value>) -> Value {
        match self {
            Fields::All => Value::Object(obj),
            Fields::Only(set) => Value::Object(
                obj.into_iter()
                    .filter(|(k, _)| k == "id" || set.contains(k))
                    .collect(),
            ),
        }
    }
}

/// ISO-8601 with milliseconds, as Trello writes dates.
pub(crate) fn date(d: DateTime<Utc>) -> Value {
    Value::String(d.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn opt_date(d: Option<DateTime<Utc>>) -> Value {
    d.map_or(Value::Null, date)
}

/// A position as Trello writes it: an integer when it has no fraction.
pub(crate) fn pos(p: f64) -> Value {
    if p.fract() == 0.0 && p.abs() < 9.0e15 {
        json!(p as i64)
    } else {
        json!(p)
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A label as the spec's `Label` schema has it; the board's label list adds `uses`
/// (how many cards carry it), which labels embedded in cards leave out: counting uses
/// scans every card, and a board listing of 1,000 cards must not do that per label.
pub(crate) fn label(l: &Label, uses: Option<usize>) -> Map<String, Value> {
    let mut m = obj(json!({
        "id": l.id,
        "idBoard": l.id_board,
        "name": l.name,
        "color": l.color,
    }));
    if let Some(n) = uses {
        m.insert("uses".into(), json!(n));
    }
    m
}

pub(crate) fn label_uses(state: &State, id: &str) -> usize {
    state
        .cards
        .values()
        .filter(|c| c.id_labels.iter().any(|l| l == id))
        .count()
}

pub(crate) fn member(state: &State, m: &Member) -> Map<String, Value> {
    let initials: String = m
        .full_name
        .split_whitespace()
        .filter_map(|w| w.chars().next())
        .flat_map(char::to_uppercase)
        .collect();
    let id_boards: Vec<&str> = state
        .boards
        .values()
        .filter(|b| b.has_member(&m.id))
        .map(|b| b.id.as_str())
        .collect();
    let id_orgs: Vec<&str> = state
        .orgs
        .values()
        .filter(|o| o.members.contains(&m.id))
        .map(|o| o.id.as_str())
        .collect();
    obj(json!({
        "id": m.id,
        "username": m.username,
        "fullName": m.full_name,
        "initials": initials,
        "avatarUrl": null,
        "url": format!("https://trello.com/{}", m.username),
        "memberType": "normal",
        "confirmed": true,
        "activityBlocked": false,
        "idBoards": id_boards,
        "idOrganizations": id_orgs,
    }))
}

pub(crate) fn board(state: &State, b: &Board) -> Map<String, Value> {
    let label_names: Map<String, Value> = crate::state::LABEL_HUES
        .iter()
        .map(|h| {
            let name = state
                .labels
                .values()
                .find(|l| l.id_board == b.id && l.color.as_deref() == Some(h))
                .map_or(String::new(), |l| l.name.clone());
            ((*h).to_owned(), Value::String(name))
        })
        .collect();
    let slug = crate::ids::slug(&b.name);
    obj(json!({
        "id": b.id,
        "name": b.name,
        "desc": b.desc,
        "descData": null,
        "closed": b.closed,
        "idOrganization": b.id_org,
        "idEnterprise": null,
        "pinned": false,
        "url": format!("https://trello.com/b/{}/{}", b.short_link, slug),
        "shortUrl": format!("https://trello.com/b/{}", b.short_link),
        "shortLink": b.short_link,
        "dateLastActivity": date(b.date_last_activity),
        "prefs": { "permissionLevel": if b.id_org.is_some() { "org" } else { "private" } },
        "labelNames": label_names,
        "limits": {
            "labels": { "perBoard": { "status": "ok", "disableAt": 1000, "warnAt": 900 } },
            "checklists": { "perCard": { "status": "ok", "disableAt": 500, "warnAt": 450 } },
            "cards": { "openPerBoard": { "status": "ok", "disableAt": 5000, "warnAt": 4500 } },
        },
    }))
}

pub(crate) fn list(l: &List) -> Map<String, Value> {
    obj(json!({
        "id": l.id,
        "name": l.name,
        "closed": l.closed,
        "pos": pos(l.pos),
        "idBoard": l.id_board,
        "subscribed": false,
        "softLimit": null,
    }))
}

pub(crate) fn organization(state: &State, o: &Organization) -> Map<String, Value> {
    let id_boards: Vec<&str> = state
        .boards
        .values()
        .filter(|b| b.id_org.as_deref() == Some(o.id.as_str()))
        .map(|b| b.id.as_str())
        .collect();
    obj(json!({
        "id": o.id,
        "name": o.name,
        "displayName": o.display_name,
        "desc": "",
        "url": format!("https://trello.com/w/{}", o.name),
        "website": null,
        "idBoards": id_boards,
    }))
}

pub(crate) fn checklist(cl: &Checklist, with_items: bool) -> Map<String, Value> {
    let mut m = obj(json!({
        "id": cl.id,
        "name": cl.name,
        "idBoard": cl.id_board,
        "idCard": cl.id_card,
        "pos": pos(cl.pos),
    }));
    if with_items {
        let items: Vec<Value> = cl
            .items
            .iter()
            .map(|i| {
                json!({
                    "id": i.id,
                    "name": i.name,
                    "nameData": null,
                    "pos": pos(i.pos),
                    "state": if i.complete { "complete" } else { "incomplete" },
                    "due": null,
                    "dueReminder": null,
                    "idMember": null,
                    "idChecklist": cl.id,
                })
            })
            .collect();
        m.insert("checkItems".into(), Value::Array(items));
    }
    m
}

/// Extra parts of a card answer.
#[derive(Debug, Clone)]
pub(crate) struct CardOpts {
    pub fields: Fields,
    pub checklists: bool,
    pub members: bool,
}

impl CardOpts {
    /// The card options a request asks for: `fields`, `checklists=all|none`, `members`.
    pub(crate) fn from_params(p: &super::Params) -> Result<CardOpts, super::Reply> {
        let checklists = match p.str("checklists").as_deref() {
            None | Some("none") => false,
            Some("all") => true,
            Some(_) => return Err(super::Reply::invalid("checklists")),
        };
        Ok(CardOpts {
            fields: Fields::parse(p.str("fields"), "all"),
            checklists,
            members: p.bool("members")?.unwrap_or(false),
        })
    }
}

pub(crate) fn card(state: &State, c: &Card, opts: &CardOpts) -> Value {
    let checklists: Vec<&Checklist> = c
        .id_checklists
        .iter()
        .filter_map(|id| state.checklists.get(id))
        .collect();
    let (total, checked) = checklists.iter().fold((0, 0), |(t, k), cl| {
        (
            t + cl.items.len(),
            k + cl.items.iter().filter(|i| i.complete).count(),
        )
    });
    let labels: Vec<Value> = c
        .id_labels
        .iter()
        .filter_map(|id| state.labels.get(id))
        .map(|l| Value::Object(label(l, None)))
        .collect();
    let slug = crate::ids::slug(&c.name);
    let m = obj(json!({
        "id": c.id,
        "badges": {
            "checkItems": total,
            "checkItemsChecked": checked,
            "comments": 0,
            "attachments": 0,
            "description": !c.desc.is_empty(),
            "due": opt_date(c.due),
            "dueComplete": c.due_complete,
            "start": opt_date(c.start),
        },
        "checkItemStates": [],
        "closed": c.closed,
        "dueComplete": c.due_complete,
        "dateLastActivity": date(c.date_last_activity),
        "desc": c.desc,
        "due": opt_date(c.due),
        "dueReminder": null,
        "email": null,
        "idBoard": c.id_board,
        "idChecklists": c.id_checklists,
        "idList": c.id_list,
        "idMembers": c.id_members,
        "idMembersVoted": [],
        "idShort": c.id_short,
        "idAttachmentCover": null,
        "idLabels": c.id_labels,
        "labels": labels,
        "manualCoverAttachment": false,
        "name": c.name,
        "pos": pos(c.pos),
        "shortLink": c.short_link,
        "shortUrl": format!("https://trello.com/c/{}", c.short_link),
        "start": opt_date(c.start),
        "subscribed": false,
        "url": format!("https://trello.com/c/{}/{}-{}", c.short_link, c.id_short, slug),
        "isTemplate": false,
        "cardRole": null,
        "mirrorSourceId": null,
    }));
    let mut v = opts.fields.apply(m);
    if let Value::Object(map) = &mut v {
        if opts.checklists {
            let cls: Vec<Value> = checklists
                .iter()
                .map(|cl| Value::Object(checklist(cl, true)))
                .collect();
            map.insert("checklists".into(), Value::Array(cls));
        }
        if opts.members {
            let ms: Vec<Value> = c
                .id_members
                .iter()
                .filter_map(|id| state.members.get(id))
                .map(|m| json!({ "id": m.id, "username": m.username, "fullName": m.full_name }))
                .collect();
            map.insert("members".into(), Value::Array(ms));
        }
    }
    v
}

pub(crate) fn token(t: &Token) -> Map<String, Value> {
    let perms: Vec<Value> = t
        .permissions
        .iter()
        .map(|p| {
            json!({
                "idModel": p.id_model,
                "modelType": p.model_type,
                "read": p.read,
                "write": p.write,
            })
        })
        .collect();
    obj(json!({
        "id": t.id,
        "identifier": "trello-sim",
        "idMember": t.id_member,
        "dateCreated": date(t.date_created),
        "dateExpires": opt_date(t.date_expires),
        "permissions": perms,
    }))
}
