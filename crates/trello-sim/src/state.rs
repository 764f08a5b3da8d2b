//! The simulated Trello world: members, organizations, boards, lists, labels,
//! cards, checklists, keys and tokens, plus the mutations shared by the HTTP
//! routes and the "person acting in Trello" helpers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::faults::Faults;
use crate::ids::{self, IdGen};
use crate::log::LoggedRequest;
use crate::ratelimit::RateLimiter;

/// The 30 label colours of the live API (FACTS.md §3): ten hues, each plain,
/// `_light` and `_dark`.
pub(crate) const LABEL_HUES: [&str; 10] = [
    "green", "yellow", "orange", "red", "purple", "blue", "sky", "lime", "pink", "black",
];

/// True when `c` is one of Trello's 30 label colours.
pub(crate) fn is_label_color(c: &str) -> bool {
    let hue = c
        .strip_suffix("_light")
        .or_else(|| c.strip_suffix("_dark"))
        .unwrap_or(c);
    LABEL_HUES.contains(&hue)
}

/// One permission of a token (FACTS.md §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Permission {
    /// A 24-hex id or `*`.
    pub id_model: String,
    /// `Board`, `Organization`, `Member` or `*` (compared case-insensitively).
    pub model_type: String,
    /// Read access.
    pub read: bool,
    /// Write access.
    pub write: bool,
}

impl Permission {
    /// A permission on `id_model` of `model_type`.
    pub fn new(id_model: &str, model_type: &str, read: bool, write: bool) -> Self {
        Permission {
            id_model: id_model.to_owned(),
            model_type: model_type.to_owned(),
            read,
            write,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub id: String,
    pub username: String,
    pub full_name: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Organization {
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub members: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct BoardMembership {
    pub id_member: String,
    pub admin: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Board {
    pub id: String,
    pub name: String,
    pub desc: String,
    pub closed: bool,
    pub id_org: Option<String>,
    pub short_link: String,
    pub members: Vec<BoardMembership>,
    pub date_last_activity: DateTime<Utc>,
    pub next_id_short: u64,
}

impl Board {
    pub(crate) fn has_member(&self, member: &str) -> bool {
        self.members.iter().any(|m| m.id_member == member)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct List {
    pub id: String,
    pub id_board: String,
    pub name: String,
    pub closed: bool,
    pub pos: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct Label {
    pub id: String,
    pub id_board: String,
    pub name: String,
    pub color: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Card {
    pub id: String,
    pub id_board: String,
    pub id_list: String,
    pub name: String,
    pub desc: String,
    pub closed: bool,
    pub due: Option<DateTime<Utc>>,
    pub due_complete: bool,
    pub start: Option<DateTime<Utc>>,
    pub pos: f64,
    pub short_link: String,
    pub id_short: u64,
    pub id_labels: Vec<String>,
    pub id_members: Vec<String>,
    pub id_checklists: Vec<String>,
    pub date_last_activity: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub(crate) struct CheckItem {
    pub id: String,
    pub name: String,
    pub complete: bool,
    pub pos: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct Checklist {
    pub id: String,
    pub id_card: String,
    pub id_board: String,
    pub name: String,
    pub pos: f64,
    pub items: Vec<CheckItem>,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub id: String,
    pub key: String,
    pub id_member: String,
    pub permissions: Vec<Permission>,
    pub date_created: DateTime<Utc>,
    pub date_expires: Option<DateTime<Utc>>,
    pub revoked: bool,
}

/// A position request: `top`, `bottom` or a positive number (FACTS.md §0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Pos {
    Top,
    Bottom,
    At(f64),
}

impl Pos {
    /// Parses `top`, `bottom` or a positive float.
    pub(crate) fn parse(s: &str) -> Option<Pos> {
        match s {
            "top" => Some(Pos::Top),
            "bottom" => Some(Pos::Bottom),
            _ => s
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
                .map(Pos::At),
        }
    }

    /// The numeric position among `siblings`; Trello spaces items 16384 apart.
    pub(crate) fn resolve(self, siblings: impl Iterator<Item = f64>) -> f64 {
        const STEP: f64 = 16384.0;
        let (min, max) = siblings.fold((None, None), |(lo, hi): (Option<f64>, Option<f64>), p| {
            (
                Some(lo.map_or(p, |l| l.min(p))),
                Some(hi.map_or(p, |h| h.max(p))),
            )
        });
        match self {
            Pos::At(v) => v,
            Pos::Bottom => max.map_or(STEP, |m| m + STEP),
            Pos::Top => min.map_or(STEP, |m| m / 2.0),
        }
    }
}

/// Fields of a new card, already validated.
#[derive(Debug, Clone, Default)]
pub(crate) struct NewCard {
    pub name: String,
    pub desc: String,
    pub pos: Option<Pos>,
    pub due: Option<DateTime<Utc>>,
    pub start: Option<DateTime<Utc>>,
    pub due_complete: bool,
    pub id_labels: Vec<String>,
    pub id_members: Vec<String>,
}

/// A card as the inspection API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimCard {
    pub id: String,
    pub name: String,
    pub desc: String,
    pub id_board: String,
    pub id_list: String,
    pub closed: bool,
    pub id_labels: Vec<String>,
    pub labels: Vec<SimLabel>,
    pub id_members: Vec<String>,
    pub due: Option<DateTime<Utc>>,
    pub due_complete: bool,
    pub start: Option<DateTime<Utc>>,
    pub pos: f64,
    pub short_link: String,
    pub date_last_activity: DateTime<Utc>,
    pub checklists: Vec<SimChecklist>,
}

/// A label as the inspection API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimLabel {
    pub id: String,
    pub id_board: String,
    pub name: String,
    pub color: Option<String>,
}

/// A checklist as the inspection API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimChecklist {
    pub id: String,
    pub name: String,
    pub items: Vec<SimCheckItem>,
}

/// A check item as the inspection API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimCheckItem {
    pub id: String,
    pub name: String,
    pub complete: bool,
}

/// Everything the simulator knows, behind one mutex.
#[derive(Debug)]
pub(crate) struct State {
    pub ids: IdGen,
    pub members: BTreeMap<String, Member>,
    pub orgs: BTreeMap<String, Organization>,
    pub boards: BTreeMap<String, Board>,
    pub lists: BTreeMap<String, List>,
    pub labels: BTreeMap<String, Label>,
    pub cards: BTreeMap<String, Card>,
    pub checklists: BTreeMap<String, Checklist>,
    /// check item id -> checklist id
    pub check_items: HashMap<String, String>,
    /// shortLink -> card or board id
    pub short_links: HashMap<String, String>,
    /// list id -> lowest and highest card position ever given in it. New cards at the
    /// bottom (top) go past these bounds, which stay past every current card, so a
    /// create costs O(1) instead of a scan of the list.
    pub card_pos_bounds: HashMap<String, (f64, f64)>,
    pub keys: HashSet<String>,
    /// API key -> its application (OAuth) secret, which signs webhooks and OAuth 1.0.
    pub key_secrets: HashMap<String, String>,
    pub tokens: HashMap<String, Token>,
    /// Every secret the simulator handed out or was given, oldest first, never removed:
    /// API tokens (however made), application secrets, OAuth 1.0 request-token secrets,
    /// verifiers and access-token secrets. Tests search what a server shows for them.
    pub granted: Vec<String>,
    pub webhooks: BTreeMap<String, crate::webhooks::Webhook>,
    /// Every delivery attempt, oldest first.
    pub deliveries: Vec<crate::webhooks::SimDelivery>,
    /// Where actions go to be delivered; None until the server starts its worker.
    pub outbox: Option<tokio::sync::mpsc::UnboundedSender<crate::webhooks::Outgoing>>,
    /// OAuth 1.0 request tokens in flight, and the secrets of access tokens.
    pub oauth1: crate::oauth1::OAuth1State,
    /// The member signed in to the browser pages (`/1/authorize`,
    /// `/1/OAuthAuthorizeToken`); None: the first member created.
    pub browser_member: Option<String>,
    pub limiter: RateLimiter,
    pub faults: Faults,
    pub log: Vec<LoggedRequest>,
    /// The parameter names of each request of `log`, at the same index.
    pub log_params: Vec<Vec<String>>,
    pub latency: Duration,
}

impl State {
    pub(crate) fn new(limiter: RateLimiter, latency: Duration) -> Self {
        State {
            ids: IdGen::new(),
            members: BTreeMap::new(),
            orgs: BTreeMap::new(),
            boards: BTreeMap::new(),
            lists: BTreeMap::new(),
            labels: BTreeMap::new(),
            cards: BTreeMap::new(),
            card_pos_bounds: HashMap::new(),
            checklists: BTreeMap::new(),
            check_items: HashMap::new(),
            short_links: HashMap::new(),
            keys: HashSet::new(),
            key_secrets: HashMap::new(),
            tokens: HashMap::new(),
            granted: Vec::new(),
            webhooks: BTreeMap::new(),
            deliveries: Vec::new(),
            outbox: None,
            oauth1: crate::oauth1::OAuth1State::default(),
            browser_member: None,
            limiter,
            faults: Faults::default(),
            log: Vec::new(),
            log_params: Vec::new(),
            latency,
        }
    }

    fn unique_short_link(&mut self, id: &str) -> String {
        loop {
            let sl = ids::short_link();
            if !self.short_links.contains_key(&sl) {
                self.short_links.insert(sl.clone(), id.to_owned());
                return sl;
            }
        }
    }

    pub(crate) fn create_member(&mut self, username: &str, full_name: &str) -> String {
        let id = self.ids.next_id();
        self.members.insert(
            id.clone(),
            Member {
                id: id.clone(),
                username: username.to_owned(),
                full_name: full_name.to_owned(),
            },
        );
        id
    }

    pub(crate) fn member_by_id_or_username(&self, s: &str) -> Option<&Member> {
        self.members
            .get(s)
            .or_else(|| self.members.values().find(|m| m.username == s))
    }

    pub(crate) fn create_organization(&mut self, display_name: &str) -> String {
        let id = self.ids.next_id();
        let mut name: String = display_name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .flat_map(|c| c.to_lowercase())
            .collect();
        if self.orgs.values().any(|o| o.name == name) || name.len() < 3 {
            name.push_str(&id[18..]);
        }
        self.orgs.insert(
            id.clone(),
            Organization {
                id: id.clone(),
                name,
                display_name: display_name.to_owned(),
                members: Vec::new(),
            },
        );
        id
    }

    pub(crate) fn add_org_member(&mut self, org: &str, member: &str) {
        if let Some(o) = self.orgs.get_mut(org) {
            if !o.members.iter().any(|m| m == member) {
                o.members.push(member.to_owned());
            }
        }
    }

    pub(crate) fn create_board(&mut self, org: Option<&str>, name: &str) -> String {
        let id = self.ids.next_id();
        let short_link = self.unique_short_link(&id);
        self.boards.insert(
            id.clone(),
            Board {
                id: id.clone(),
                name: name.to_owned(),
                desc: String::new(),
                closed: false,
                id_org: org.map(str::to_owned),
                short_link,
                members: Vec::new(),
                date_last_activity: Utc::now(),
                next_id_short: 1,
            },
        );
        // Every new board gets six coloured, unnamed labels.
        for color in ["green", "yellow", "orange", "red", "purple", "blue"] {
            self.create_label(&id, "", Some(color));
        }
        id
    }

    pub(crate) fn add_board_member(&mut self, board: &str, member: &str, admin: bool) {
        if let Some(b) = self.boards.get_mut(board) {
            if let Some(m) = b.members.iter_mut().find(|m| m.id_member == member) {
                m.admin |= admin;
            } else {
                b.members.push(BoardMembership {
                    id_member: member.to_owned(),
                    admin,
                });
            }
        }
    }

    pub(crate) fn create_list(&mut self, board: &str, name: &str) -> String {
        let id = self.ids.next_id();
        let pos = Pos::Bottom.resolve(
            self.lists
                .values()
                .filter(|l| l.id_board == board)
                .map(|l| l.pos),
        );
        self.lists.insert(
            id.clone(),
            List {
                id: id.clone(),
                id_board: board.to_owned(),
                name: name.to_owned(),
                closed: false,
                pos,
            },
        );
        id
    }

    pub(crate) fn create_label(&mut self, board: &str, name: &str, color: Option<&str>) -> String {
        let id = self.ids.next_id();
        self.labels.insert(
            id.clone(),
            Label {
                id: id.clone(),
                id_board: board.to_owned(),
                name: name.to_owned(),
                color: color.map(str::to_owned),
            },
        );
        id
    }

    pub(crate) fn create_api_key(&mut self) -> String {
        let key = ids::api_key();
        self.keys.insert(key.clone());
        let secret = ids::api_secret();
        self.granted.push(secret.clone());
        self.key_secrets.insert(key.clone(), secret);
        key
    }

    pub(crate) fn create_token(
        &mut self,
        key: &str,
        member: &str,
        permissions: Vec<Permission>,
        expires_at: Option<DateTime<Utc>>,
    ) -> String {
        let token = ids::token();
        self.granted.push(token.clone());
        let id = self.ids.next_id();
        self.tokens.insert(
            token.clone(),
            Token {
                id,
                key: key.to_owned(),
                id_member: member.to_owned(),
                permissions,
                date_created: Utc::now(),
                date_expires: expires_at,
                revoked: false,
            },
        );
        token
    }

    /// Resolves a card path id: a 24-hex id or a shortLink.
    pub(crate) fn card_id(&self, id_or_short: &str) -> Option<String> {
        if self.cards.contains_key(id_or_short) {
            return Some(id_or_short.to_owned());
        }
        self.short_links
            .get(id_or_short)
            .filter(|id| self.cards.contains_key(*id))
            .cloned()
    }

    /// Resolves a board path id: a 24-hex id or a shortLink.
    pub(crate) fn board_id(&self, id_or_short: &str) -> Option<String> {
        if self.boards.contains_key(id_or_short) {
            return Some(id_or_short.to_owned());
        }
        self.short_links
            .get(id_or_short)
            .filter(|id| self.boards.contains_key(*id))
            .cloned()
    }

    fn touch_board(&mut self, board: &str, now: DateTime<Utc>) {
        if let Some(b) = self.boards.get_mut(board) {
            b.date_last_activity = now;
        }
    }

    /// Marks a card (and its board) as changed now.
    pub(crate) fn touch_card(&mut self, card: &str) {
        let now = Utc::now();
        let board = match self.cards.get_mut(card) {
            Some(c) => {
                c.date_last_activity = now;
                c.id_board.clone()
            }
            None => return,
        };
        self.touch_board(&board, now);
    }

    /// Widens the position bounds of `list` to include `pos`.
    pub(crate) fn note_card_pos(&mut self, list: &str, pos: f64) {
        let b = self
            .card_pos_bounds
            .entry(list.to_owned())
            .or_insert((pos, pos));
        b.0 = b.0.min(pos);
        b.1 = b.1.max(pos);
    }

    /// Creates a card in `list`; inputs are already validated.
    pub(crate) fn create_card(&mut self, list: &str, new: NewCard) -> Option<String> {
        let board = self.lists.get(list)?.id_board.clone();
        let id = self.ids.next_id();
        let short_link = self.unique_short_link(&id);
        let bounds = self.card_pos_bounds.get(list).map(|(lo, hi)| [*lo, *hi]);
        let pos = new
            .pos
            .unwrap_or(Pos::Bottom)
            .resolve(bounds.into_iter().flatten());
        self.note_card_pos(list, pos);
        let b = self.boards.get_mut(&board)?;
        let id_short = b.next_id_short;
        b.next_id_short += 1;
        let now = Utc::now();
        self.cards.insert(
            id.clone(),
            Card {
                id: id.clone(),
                id_board: board.clone(),
                id_list: list.to_owned(),
                name: new.name,
                desc: new.desc,
                closed: false,
                due: new.due,
                due_complete: new.due_complete,
                start: new.start,
                pos,
                short_link,
                id_short,
                id_labels: dedup(new.id_labels),
                id_members: dedup(new.id_members),
                id_checklists: Vec::new(),
                date_last_activity: now,
            },
        );
        self.touch_board(&board, now);
        Some(id)
    }

    /// Moves a card to `list` (possibly on another board). Labels and members
    /// that do not belong to the new board are dropped.
    pub(crate) fn move_card(&mut self, card: &str, list: &str, pos: Option<Pos>) {
        let Some(new_board) = self.lists.get(list).map(|l| l.id_board.clone()) else {
            return;
        };
        let siblings: Vec<f64> = self
            .cards
            .values()
            .filter(|c| c.id_list == list && c.id != card && !c.closed)
            .map(|c| c.pos)
            .collect();
        let board_members: Vec<String> = self
            .boards
            .get(&new_board)
            .map(|b| b.members.iter().map(|m| m.id_member.clone()).collect())
            .unwrap_or_default();
        let labels = &self.labels;
        let Some(c) = self.cards.get_mut(card) else {
            return;
        };
        if let Some(p) = pos {
            c.pos = p.resolve(siblings.into_iter());
        }
        c.id_list = list.to_owned();
        let moved_pos = c.pos;
        if c.id_board != new_board {
            c.id_board = new_board.clone();
            c.id_labels
                .retain(|l| labels.get(l).is_some_and(|l| l.id_board == new_board));
            c.id_members.retain(|m| board_members.contains(m));
            for cl in &c.id_checklists {
                if let Some(cl) = self.checklists.get_mut(cl) {
                    cl.id_board = new_board.clone();
                }
            }
        }
        self.note_card_pos(list, moved_pos);
        self.touch_card(card);
    }

    /// `action.data` additions describing how a card changed since `list_before` /
    /// `closed_before`: `listBefore`/`listAfter` and `old.idList` for a move, `old.closed`
    /// for (un)archiving, as Trello's `updateCard` actions carry them.
    pub(crate) fn card_change(
        &self,
        card: &str,
        list_before: &str,
        closed_before: bool,
    ) -> serde_json::Value {
        let mut extra = serde_json::Map::new();
        let Some(c) = self.cards.get(card) else {
            return serde_json::Value::Object(extra);
        };
        let mut old = serde_json::Map::new();
        if c.id_list != list_before {
            let name = |id: &str| self.lists.get(id).map(|l| l.name.clone());
            extra.insert(
                "listBefore".into(),
                serde_json::json!({"id": list_before, "name": name(list_before)}),
            );
            extra.insert(
                "listAfter".into(),
                serde_json::json!({"id": c.id_list, "name": name(&c.id_list)}),
            );
            old.insert("idList".into(), list_before.into());
        }
        if c.closed != closed_before {
            old.insert("closed".into(), closed_before.into());
        }
        if !old.is_empty() {
            extra.insert("old".into(), serde_json::Value::Object(old));
        }
        serde_json::Value::Object(extra)
    }

    pub(crate) fn delete_card(&mut self, card: &str) -> bool {
        let Some(c) = self.cards.remove(card) else {
            return false;
        };
        for cl in c.id_checklists {
            if let Some(cl) = self.checklists.remove(&cl) {
                for item in cl.items {
                    self.check_items.remove(&item.id);
                }
            }
        }
        self.touch_board(&c.id_board, Utc::now());
        true
    }

    pub(crate) fn create_checklist(
        &mut self,
        card: &str,
        name: &str,
        pos: Option<Pos>,
    ) -> Option<String> {
        let board = self.cards.get(card)?.id_board.clone();
        let id = self.ids.next_id();
        let pos = pos.unwrap_or(Pos::Bottom).resolve(
            self.checklists
                .values()
                .filter(|c| c.id_card == card)
                .map(|c| c.pos),
        );
        self.checklists.insert(
            id.clone(),
            Checklist {
                id: id.clone(),
                id_card: card.to_owned(),
                id_board: board,
                name: name.to_owned(),
                pos,
                items: Vec::new(),
            },
        );
        self.cards.get_mut(card)?.id_checklists.push(id.clone());
        self.touch_card(card);
        Some(id)
    }

    /// Copies checklist `from` onto `card` (new ids): its name unless `name` is
    /// given, and every item with its name, position and state.
    pub(crate) fn copy_checklist(
        &mut self,
        from: &str,
        card: &str,
        name: Option<&str>,
        pos: Option<Pos>,
    ) -> Option<String> {
        let src = self.checklists.get(from)?.clone();
        let id = self.create_checklist(card, name.unwrap_or(&src.name), pos)?;
        let mut items = Vec::with_capacity(src.items.len());
        for item in &src.items {
            let item_id = self.ids.next_id();
            self.check_items.insert(item_id.clone(), id.clone());
            items.push(CheckItem {
                id: item_id,
                ..item.clone()
            });
        }
        self.checklists.get_mut(&id)?.items = items;
        Some(id)
    }

    pub(crate) fn create_check_item(
        &mut self,
        checklist: &str,
        name: &str,
        pos: Option<Pos>,
        checked: bool,
    ) -> Option<String> {
        let id = self.ids.next_id();
        let cl = self.checklists.get_mut(checklist)?;
        let pos = pos
            .unwrap_or(Pos::Bottom)
            .resolve(cl.items.iter().map(|i| i.pos));
        cl.items.push(CheckItem {
            id: id.clone(),
            name: name.to_owned(),
            complete: checked,
            pos,
        });
        cl.items.sort_by(|a, b| a.pos.total_cmp(&b.pos));
        let card = cl.id_card.clone();
        self.check_items.insert(id.clone(), checklist.to_owned());
        self.touch_card(&card);
        Some(id)
    }

    /// The checklist holding `item`, if the item is on `card`.
    pub(crate) fn checklist_of_item(&self, card: &str, item: &str) -> Option<String> {
        let cl = self.check_items.get(item)?;
        (self.checklists.get(cl)?.id_card == card).then(|| cl.clone())
    }

    pub(crate) fn update_check_item(
        &mut self,
        checklist: &str,
        item: &str,
        complete: Option<bool>,
        name: Option<String>,
        pos: Option<Pos>,
    ) -> Option<()> {
        let cl = self.checklists.get_mut(checklist)?;
        let siblings: Vec<f64> = cl
            .items
            .iter()
            .filter(|i| i.id != item)
            .map(|i| i.pos)
            .collect();
        let it = cl.items.iter_mut().find(|i| i.id == item)?;
        if let Some(c) = complete {
            it.complete = c;
        }
        if let Some(n) = name {
            it.name = n;
        }
        if let Some(p) = pos {
            it.pos = p.resolve(siblings.into_iter());
        }
        cl.items.sort_by(|a, b| a.pos.total_cmp(&b.pos));
        let card = cl.id_card.clone();
        self.touch_card(&card);
        Some(())
    }

    pub(crate) fn delete_check_item(&mut self, checklist: &str, item: &str) -> bool {
        let Some(cl) = self.checklists.get_mut(checklist) else {
            return false;
        };
        let before = cl.items.len();
        cl.items.retain(|i| i.id != item);
        if cl.items.len() == before {
            return false;
        }
        let card = cl.id_card.clone();
        self.check_items.remove(item);
        self.touch_card(&card);
        true
    }

    pub(crate) fn sim_label(&self, id: &str) -> Option<SimLabel> {
        self.labels.get(id).map(|l| SimLabel {
            id: l.id.clone(),
            id_board: l.id_board.clone(),
            name: l.name.clone(),
            color: l.color.clone(),
        })
    }

    pub(crate) fn sim_card(&self, id: &str) -> Option<SimCard> {
        let c = self.cards.get(id)?;
        Some(SimCard {
            id: c.id.clone(),
            name: c.name.clone(),
            desc: c.desc.clone(),
            id_board: c.id_board.clone(),
            id_list: c.id_list.clone(),
            closed: c.closed,
            id_labels: c.id_labels.clone(),
            labels: c
                .id_labels
                .iter()
                .filter_map(|l| self.sim_label(l))
                .collect(),
            id_members: c.id_members.clone(),
            due: c.due,
            due_complete: c.due_complete,
            start: c.start,
            pos: c.pos,
            short_link: c.short_link.clone(),
            date_last_activity: c.date_last_activity,
            checklists: c
                .id_checklists
                .iter()
                .filter_map(|cl| self.checklists.get(cl))
                .map(|cl| SimChecklist {
                    id: cl.id.clone(),
                    name: cl.name.clone(),
                    items: cl
                        .items
                        .iter()
                        .map(|i| SimCheckItem {
                            id: i.id.clone(),
                            name: i.name.clone(),
                            complete: i.complete,
                        })
                        .collect(),
                })
                .collect(),
        })
    }
}

/// Removes repeated ids, keeping the first occurrence.
pub(crate) fn dedup(v: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    v.into_iter().filter(|x| seen.insert(x.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours() {
        assert!(is_label_color("green"));
        assert!(is_label_color("sky_dark"));
        assert!(is_label_color("black_light"));
        assert!(!is_label_color("teal"));
        assert!(!is_label_color("green_medium"));
    }

    #[test]
    fn positions() {
        assert_eq!(Pos::Bottom.resolve([].into_iter()), 16384.0);
        assert_eq!(Pos::Bottom.resolve([16384.0].into_iter()), 32768.0);
        assert_eq!(Pos::Top.resolve([16384.0, 32768.0].into_iter()), 8192.0);
        assert_eq!(Pos::parse("-1"), None);
        assert_eq!(Pos::parse("12.5"), Some(Pos::At(12.5)));
    }
}
