//! Trello's JSON shapes (only the fields the adapter reads) and their conversion to the
//! port model. Unknown fields are ignored; optional ones may be absent or null.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::Value;
use webriskops_domain::{extract_marker, ItemId, Permission, StateCategory, TrelloId};
use webriskops_ports::{
    Account, CheckItem, Checklist, Container, Destination, Label, Member, PortError, RemoteItem,
    TokenInfo,
};

/// Fields asked for on every card read.
pub(crate) const CARD_FIELDS: &str =
    "id,idBoard,idList,name,desc,closed,idLabels,idMembers,due,dateLastActivity,url";
pub(crate) const BOARD_FIELDS: &str = "name,closed,idOrganization,url";
pub(crate) const LIST_FIELDS: &str = "name,closed,idBoard";
pub(crate) const LABEL_FIELDS: &str = "name,color";
pub(crate) const MEMBER_FIELDS: &str = "username,fullName";
pub(crate) const ME_FIELDS: &str = "id,username,fullName";
pub(crate) const TOKEN_FIELDS: &str = "identifier,idMember,dateCreated,dateExpires,permissions";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WMember {
    pub id: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub full_name: Option<String>,
}

impl WMember {
    pub(crate) fn account(self) -> Account {
        Account {
            id: self.id,
            username: self.username.unwrap_or_default(),
            full_name: self.full_name.filter(|s| !s.is_empty()),
        }
    }

    pub(crate) fn member(self) -> Member {
        Member {
            id: self.id,
            username: self.username.unwrap_or_default(),
            full_name: self.full_name.filter(|s| !s.is_empty()),
            email: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WPermission {
    pub id_model: String,
    /// A free string: `"*"` occurs though the spec enum lacks it (FACTS.md §6).
    pub model_type: String,
    #[serde(default)]
    pub read: bool,
    #[serde(default)]
    pub write: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WToken {
    #[serde(default)]
    pub identifier: Option<String>,
    #[serde(default)]
    pub id_member: Option<String>,
    #[serde(default)]
    pub date_created: Option<String>,
    /// Null for tokens that never expire.
    #[serde(default)]
    pub date_expires: Option<String>,
    #[serde(default)]
    pub permissions: Vec<WPermission>,
}

impl WToken {
    pub(crate) fn info(self) -> TokenInfo {
        let expires_at = self.date_expires.as_deref().and_then(parse_time);
        let permissions: Vec<Permission> = self
            .permissions
            .into_iter()
            .map(|p| Permission {
                id_model: p.id_model,
                model_type: p.model_type,
                read: p.read,
                write: p.write,
            })
            .collect();
        TokenInfo {
            member_id: self.id_member,
            app_name: self.identifier,
            created_at: self.date_created.as_deref().and_then(parse_time),
            expires_at,
            grant: webriskops_ports::Grant::from_permissions(&permissions, expires_at),
            permissions,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WBoard {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub closed: bool,
    #[serde(default)]
    pub id_organization: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
}

impl From<WBoard> for Container {
    fn from(b: WBoard) -> Self {
        Container {
            id: b.id,
            name: b.name,
            closed: b.closed,
            organization_id: b.id_organization.filter(|s| !s.is_empty()),
            url: b.url,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WList {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub closed: bool,
    #[serde(default)]
    pub id_board: String,
}

impl From<WList> for Destination {
    fn from(l: WList) -> Self {
        Destination {
            id: l.id,
            name: l.name,
            closed: l.closed,
            container_id: l.id_board,
            // A list has no category of its own: the record's done list is passed on
            // reads (`done_destination`) and read as `Done` there.
            category: StateCategory::Open,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct WLabel {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Any string: 30 real colours against 10 in the spec (FACTS.md §3).
    #[serde(default)]
    pub color: Option<String>,
}

impl From<WLabel> for Label {
    fn from(l: WLabel) -> Self {
        Label {
            id: l.id,
            name: l.name.unwrap_or_default(),
            color: l.color.filter(|c| !c.is_empty()),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct WCheckItem {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub state: Option<String>,
    /// Declared a string, sent as a number (FACTS.md §4).
    #[serde(default)]
    pub pos: Value,
}

impl From<WCheckItem> for CheckItem {
    fn from(i: WCheckItem) -> Self {
        CheckItem {
            id: i.id,
            name: i.name,
            complete: matches!(i.state.as_deref(), Some("complete" | "true")),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WChecklist {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub pos: Value,
    #[serde(default)]
    pub check_items: Vec<WCheckItem>,
}

/// A `pos` as a number: Trello sends numbers, sometimes strings.
pub(crate) fn pos_of(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(s) => s.parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

impl From<WChecklist> for Checklist {
    fn from(c: WChecklist) -> Self {
        let mut items = c.check_items;
        items.sort_by(|a, b| pos_of(&a.pos).total_cmp(&pos_of(&b.pos)));
        Checklist {
            id: c.id,
            name: c.name,
            items: items.into_iter().map(CheckItem::from).collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WCard {
    pub id: String,
    #[serde(default)]
    pub id_board: String,
    #[serde(default)]
    pub id_list: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub desc: String,
    #[serde(default)]
    pub closed: bool,
    #[serde(default)]
    pub id_labels: Vec<String>,
    #[serde(default)]
    pub id_members: Vec<String>,
    #[serde(default)]
    pub due: Option<String>,
    #[serde(default)]
    pub date_last_activity: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub short_url: Option<String>,
    /// Present when asked for with `checklists=all`.
    #[serde(default)]
    pub checklists: Option<Vec<WChecklist>>,
}

/// The category of a card (ADR 0005 §1): in the record's done list, `Done`; archived
/// while the record names no done list, `Done` (the export archives closed findings
/// then); otherwise `Open` (a list has no category of its own).
pub(crate) fn card_category(id_list: &str, closed: bool, done_list: Option<&str>) -> StateCategory {
    match done_list {
        Some(done) if done == id_list => StateCategory::Done,
        None if closed => StateCategory::Done,
        _ => StateCategory::Open,
    }
}

impl WCard {
    /// The card as a write answers it: no done list known, list names unknown.
    pub(crate) fn item(self) -> Result<RemoteItem, PortError> {
        self.read(None, &HashMap::new())
    }

    /// The card in the port's terms: its finding from the marker in its description,
    /// its category by `done_list`, its state name from `list_names` (the list's id
    /// when its name has not been read).
    pub(crate) fn read(
        self,
        done_list: Option<&str>,
        list_names: &HashMap<String, String>,
    ) -> Result<RemoteItem, PortError> {
        let id = ItemId::new(&self.id).map_err(|e| {
            PortError::other(format!("Trello sent a card with an unusable id: {e}"))
        })?;
        let checklists = self.checklists.map(|mut cls| {
            cls.sort_by(|a, b| pos_of(&a.pos).total_cmp(&pos_of(&b.pos)));
            cls.into_iter().map(Checklist::from).collect()
        });
        Ok(RemoteItem {
            created_secs: created_secs(&self.id),
            id,
            finding_id: extract_marker(&self.desc),
            url: self.url.or(self.short_url),
            category: card_category(&self.id_list, self.closed, done_list),
            state_name: list_names
                .get(&self.id_list)
                .cloned()
                .unwrap_or_else(|| self.id_list.clone()),
            container_id: self.id_board,
            destination_id: self.id_list,
            title: self.name,
            body: self.desc,
            archived: self.closed,
            label_ids: self.id_labels,
            member_ids: self.id_members,
            due: self.due.as_deref().and_then(parse_due),
            last_activity: self.date_last_activity.as_deref().and_then(parse_time),
            checklists,
            // Trello has no native priority: it travels as a label.
            priority: None,
        })
    }
}

/// Creation time from the first 8 hex digits of a Trello id; 0 when not an id.
pub(crate) fn created_secs(id: &str) -> u64 {
    TrelloId::new(id).map_or(0, |t| t.created_at_secs())
}

pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// The date part of a due timestamp (its UTC date), or a bare date.
pub(crate) fn parse_due(s: &str) -> Option<NaiveDate> {
    parse_time(s).map(|t| t.date_naive()).or_else(|| {
        s.get(..10)
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
    })
}

/// The due timestamp written for a date: noon UTC, so the date reads the same in every
/// time zone from UTC-11 to UTC+11 and the date part round-trips.
pub(crate) fn due_value(d: NaiveDate) -> String {
    format!("{}T12:00:00.000Z", d.format("%Y-%m-%d"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn card_maps_to_remote_item() {
        let c: WCard = serde_json::from_value(json!({
            "id": "5e9f8f8f8f8f8f8f8f8f8f8f",
            "idBoard": "b", "idList": "l", "name": "n", "desc": "d",
            "closed": true, "idLabels": ["x"], "idMembers": [],
            "due": "2024-03-09T12:00:00.000Z",
            "dateLastActivity": "2024-03-10T19:41:51.396Z",
            "url": "https://trello.com/c/abc",
            "checklists": [
                {"id": "c2", "name": "second", "pos": 32768, "checkItems": []},
                {"id": "c1", "name": "first", "pos": "16384", "checkItems": [
                    {"id": "i2", "name": "b", "state": "complete", "pos": 2},
                    {"id": "i1", "name": "a", "state": "incomplete", "pos": 1.5}
                ]}
            ]
        }))
        .unwrap();
        let item = c.item().unwrap();
        assert_eq!(item.created_secs, 0x5e9f8f8f);
        assert!(item.archived);
        assert_eq!(
            item.category,
            StateCategory::Done,
            "archived without a done list"
        );
        assert_eq!(item.finding_id, None, "no marker in the description");
        assert_eq!(item.due, NaiveDate::from_ymd_opt(2024, 3, 9));
        assert!(item.last_activity.is_some());
        let cls = item.checklists.unwrap();
        assert_eq!(cls[0].name, "first");
        assert_eq!(cls[0].items[0].name, "a");
        assert!(cls[0].items[1].complete);
    }

    #[test]
    fn the_adapter_reads_identity_and_category_from_the_card() {
        let card = |list: &str, closed: bool| -> WCard {
            serde_json::from_value(json!({
                "id": "5e9f8f8f8f8f8f8f8f8f8f8f", "idBoard": "b", "idList": list,
                "name": "n", "closed": closed,
                "desc": "text\n\n---\n[webriskops:finding:wro-7]\n\nnote of a person"
            }))
            .unwrap()
        };
        let names = HashMap::from([("todo".to_owned(), "To Do".to_owned())]);
        let open = card("todo", false).read(Some("done"), &names).unwrap();
        assert_eq!(open.finding_id.unwrap().as_str(), "wro-7");
        assert_eq!(
            (open.category, open.state_name.as_str()),
            (StateCategory::Open, "To Do")
        );
        let done = card("done", false).read(Some("done"), &names).unwrap();
        assert_eq!(done.category, StateCategory::Done);
        assert_eq!(
            done.state_name, "done",
            "an unread list name reads as its id"
        );
        let archived = card("todo", true).read(Some("done"), &names).unwrap();
        assert_eq!(
            archived.category,
            StateCategory::Open,
            "with a done list, archiving does not make a card done"
        );
        let archived = card("todo", true).read(None, &names).unwrap();
        assert_eq!(archived.category, StateCategory::Done);
    }

    #[test]
    fn token_with_star_model_type_and_null_expiry() {
        let t: WToken = serde_json::from_value(json!({
            "id": "x", "identifier": "App", "idMember": "m",
            "dateCreated": "2024-01-01T00:00:00.000Z", "dateExpires": null,
            "permissions": [{"idModel": "*", "modelType": "*", "read": true, "write": false}]
        }))
        .unwrap();
        let info = t.info();
        assert_eq!(info.expires_at, None);
        assert_eq!(info.permissions[0].model_type, "*");
        assert_eq!(info.app_name.as_deref(), Some("App"));
    }

    #[test]
    fn due_round_trips_through_noon_utc() {
        let d = NaiveDate::from_ymd_opt(2025, 12, 31).unwrap();
        assert_eq!(parse_due(&due_value(d)), Some(d));
        assert_eq!(parse_due("2025-12-31"), Some(d));
        assert_eq!(parse_due("garbage"), None);
    }

    #[test]
    fn labels_accept_any_colour_and_null_names() {
        let l: WLabel =
            serde_json::from_value(json!({"id": "l", "name": null, "color": "sky_dark"})).unwrap();
        let l = Label::from(l);
        assert_eq!(l.name, "");
        assert_eq!(l.color.as_deref(), Some("sky_dark"));
    }
}
