//! `SimHandle`: seeding, "a person acting in Trello", faults and inspection.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::faults::FaultRule;
use crate::http::Shared;
use crate::log::LoggedRequest;
use crate::state::{NewCard, Permission, Pos, SimCard, SimLabel};

/// Ids and credentials of the standard world built by
/// [`SimHandle::seed_standard`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fixture {
    pub api_key: String,
    /// The key's application secret (the OAuth secret of Trello's key page): it signs
    /// webhook deliveries and OAuth 1.0 requests. Replace it with
    /// [`SimHandle::set_api_secret`].
    pub api_secret: String,
    /// "Acme Security".
    pub org_id: String,
    /// "Other Co".
    pub other_org_id: String,
    /// "Security Remediation" in Acme Security.
    pub board_id: String,
    /// "To Do".
    pub list_id: String,
    /// "Doing".
    pub doing_list_id: String,
    /// "Done".
    pub done_list_id: String,
    /// "Old", archived.
    pub closed_list_id: String,
    /// A board in Other Co that the token owner can see.
    pub other_board_id: String,
    /// A board without organization.
    pub personal_board_id: String,
    /// An archived board.
    pub closed_board_id: String,
    /// secops, jdoe, asmith (on the board) and outsider (not).
    pub members: Vec<FixtureMember>,
    pub tokens: FixtureTokens,
}

impl Fixture {
    /// The fixture member with this username.
    pub fn member(&self, username: &str) -> Option<&FixtureMember> {
        self.members.iter().find(|m| m.username == username)
    }
}

/// A member of the standard world.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixtureMember {
    pub id: String,
    pub username: String,
    pub full_name: String,
    /// Member of the fixture board.
    pub on_board: bool,
}

/// Tokens of the standard world, all owned by `secops` for the fixture key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixtureTokens {
    /// Read+write on `*` boards, `*` organizations and the member; never expires.
    pub full: String,
    /// Read only on the same models.
    pub read_only: String,
    /// Read+write only on `other_board_id` (plus reading the member).
    pub other_board_only: String,
    /// Like `full` but expired a day ago.
    pub expired: String,
    /// Like `full`, for revoke tests.
    pub revocable: String,
}

/// A customer's own corner of the world, made by [`SimHandle::seed_workspace`]: a
/// member, their organization and board with "To Do" and "Done", and a full read+write
/// token of theirs for a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    pub member_id: String,
    pub org_id: String,
    pub board_id: String,
    pub list_id: String,
    pub done_list_id: String,
    /// `*`/Board, `*`/Organization and the member, read+write, never expires.
    pub token: String,
    /// The token's object id, as the request log names it.
    pub token_id: String,
}

/// Controls the simulated world. Cheap to clone; every method is
/// synchronous and holds the state lock only briefly.
#[derive(Debug, Clone)]
pub struct SimHandle {
    shared: Arc<Shared>,
}

fn full_permissions(member: &str, write: bool) -> Vec<Permission> {
    vec![
        Permission::new("*", "Board", true, write),
        Permission::new("*", "Organization", true, write),
        Permission::new(member, "Member", true, write),
    ]
}

impl SimHandle {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        SimHandle { shared }
    }

    /// Builds the standard world (see `docs/trello-sim.md`) and returns its
    /// ids and freshly generated tokens.
    pub fn seed_standard(&self) -> Fixture {
        let api_key = self.create_api_key();
        let people = [
            ("secops", "Security Operations", true),
            ("jdoe", "Jane Doe", true),
            ("asmith", "Alex Smith", true),
            ("outsider", "Olivia Outsider", false),
        ];
        let members: Vec<FixtureMember> = people
            .iter()
            .map(|(u, n, on)| FixtureMember {
                id: self.create_member(u, n),
                username: (*u).to_owned(),
                full_name: (*n).to_owned(),
                on_board: *on,
            })
            .collect();
        let owner = members[0].id.clone();

        let org_id = self.create_organization("Acme Security");
        let other_org_id = self.create_organization("Other Co");
        for m in members.iter().filter(|m| m.on_board) {
            self.add_org_member(&org_id, &m.id);
        }
        self.add_org_member(&other_org_id, &owner);

        let board_id = self.create_board(Some(&org_id), "Security Remediation");
        self.add_board_admin(&board_id, &owner);
        for m in members.iter().skip(1).filter(|m| m.on_board) {
            self.add_board_member(&board_id, &m.id);
        }
        let list_id = self.create_list(&board_id, "To Do");
        let doing_list_id = self.create_list(&board_id, "Doing");
        let done_list_id = self.create_list(&board_id, "Done");
        let closed_list_id = self.create_list(&board_id, "Old");
        self.close_list(&closed_list_id);

        let other_board_id = self.create_board(Some(&other_org_id), "Other Co Planning");
        self.add_board_member(&other_board_id, &owner);
        self.create_list(&other_board_id, "Backlog");

        let personal_board_id = self.create_board(None, "Personal");
        self.add_board_admin(&personal_board_id, &owner);
        self.create_list(&personal_board_id, "Notes");

        let closed_board_id = self.create_board(Some(&org_id), "Retired Board");
        self.add_board_admin(&closed_board_id, &owner);
        self.create_list(&closed_board_id, "Archive");
        self.close_board(&closed_board_id);

        let tokens = FixtureTokens {
            full: self.create_token(&api_key, &owner, full_permissions(&owner, true), None),
            read_only: self.create_token(&api_key, &owner, full_permissions(&owner, false), None),
            other_board_only: self.create_token(
                &api_key,
                &owner,
                vec![
                    Permission::new(&other_board_id, "Board", true, true),
                    Permission::new(&owner, "Member", true, false),
                ],
                None,
            ),
            expired: self.create_token(
                &api_key,
                &owner,
                full_permissions(&owner, true),
                Some(Utc::now() - chrono::Duration::days(1)),
            ),
            revocable: self.create_token(&api_key, &owner, full_permissions(&owner, true), None),
        };
        Fixture {
            api_secret: self.api_secret(&api_key).unwrap_or_default(),
            api_key,
            org_id,
            other_org_id,
            board_id,
            list_id,
            doing_list_id,
            done_list_id,
            closed_list_id,
            other_board_id,
            personal_board_id,
            closed_board_id,
            members,
            tokens,
        }
    }

    /// Adds a customer's workspace for `key` (see [`Workspace`]); `name` becomes the
    /// member's username (lower case) and names the organization and board. Many
    /// workspaces may share one key, as the customers of one application do.
    pub fn seed_workspace(&self, key: &str, name: &str) -> Workspace {
        let member_id = self.create_member(&name.to_lowercase(), name);
        let org_id = self.create_organization(name);
        self.add_org_member(&org_id, &member_id);
        let board_id = self.create_board(Some(&org_id), &format!("{name} Remediation"));
        self.add_board_admin(&board_id, &member_id);
        let list_id = self.create_list(&board_id, "To Do");
        let done_list_id = self.create_list(&board_id, "Done");
        let token = self.create_token(key, &member_id, full_permissions(&member_id, true), None);
        let token_id = self.token_id(&token).unwrap_or_default();
        Workspace {
            member_id,
            org_id,
            board_id,
            list_id,
            done_list_id,
            token,
            token_id,
        }
    }

    /// The object id of a token (what `GET /1/tokens/{token}` answers as `id` and the
    /// request log records), or `None` for an unknown token.
    pub fn token_id(&self, token: &str) -> Option<String> {
        self.shared.lock().tokens.get(token).map(|t| t.id.clone())
    }

    /// Creates a member; returns its id.
    pub fn create_member(&self, username: &str, full_name: &str) -> String {
        self.shared.lock().create_member(username, full_name)
    }

    /// Creates an organization (display name `name`); returns its id.
    pub fn create_organization(&self, name: &str) -> String {
        self.shared.lock().create_organization(name)
    }

    /// Adds a member to an organization.
    pub fn add_org_member(&self, org: &str, member: &str) {
        self.shared.lock().add_org_member(org, member);
    }

    /// Creates a board with Trello's six default labels (green, yellow,
    /// orange, red, purple, blue; unnamed); returns its id.
    pub fn create_board(&self, org: Option<&str>, name: &str) -> String {
        self.shared.lock().create_board(org, name)
    }

    /// Adds a normal member to a board.
    pub fn add_board_member(&self, board: &str, member: &str) {
        self.shared.lock().add_board_member(board, member, false);
    }

    /// Adds an admin to a board.
    pub fn add_board_admin(&self, board: &str, member: &str) {
        self.shared.lock().add_board_member(board, member, true);
    }

    /// Creates an open list at the bottom of a board; returns its id.
    pub fn create_list(&self, board: &str, name: &str) -> String {
        self.shared.lock().create_list(board, name)
    }

    /// Archives a list.
    pub fn close_list(&self, list: &str) {
        if let Some(l) = self.shared.lock().lists.get_mut(list) {
            l.closed = true;
        }
    }

    /// Archives a board.
    pub fn close_board(&self, board: &str) {
        if let Some(b) = self.shared.lock().boards.get_mut(board) {
            b.closed = true;
        }
    }

    /// Creates a label on a board; returns its id.
    pub fn create_label(&self, board: &str, name: &str, color: Option<&str>) -> String {
        self.shared.lock().create_label(board, name, color)
    }

    /// Creates an API key (32 hex).
    pub fn create_api_key(&self) -> String {
        self.shared.lock().create_api_key()
    }

    /// Creates a token (76 characters, random) for `key` owned by `member`.
    pub fn create_token(
        &self,
        key: &str,
        member: &str,
        permissions: Vec<Permission>,
        expires_at: Option<DateTime<Utc>>,
    ) -> String {
        self.shared
            .lock()
            .create_token(key, member, permissions, expires_at)
    }

    /// Revokes a token, as a user would in account settings; its webhooks go with it.
    pub fn revoke_token(&self, token: &str) {
        let mut st = self.shared.lock();
        if let Some(t) = st.tokens.get_mut(token) {
            t.revoked = true;
        }
        st.drop_token_webhooks(token);
    }

    /// The application secret of an API key (64 hex, made with the key).
    pub fn api_secret(&self, key: &str) -> Option<String> {
        self.shared.lock().key_secrets.get(key).cloned()
    }

    /// Sets the application secret of an API key (e.g. to the `TRELLO_API_SECRET` a
    /// server under test holds). Deliveries queued from now on are signed with it.
    pub fn set_api_secret(&self, key: &str, secret: &str) {
        let mut st = self.shared.lock();
        st.granted.push(secret.to_owned());
        st.key_secrets.insert(key.to_owned(), secret.to_owned());
    }

    /// Every secret the simulator has handed out or been given so far, oldest first:
    /// every API token (the fixture's, and each one the authorize page or the OAuth 1.0
    /// access-token leg granted), every application secret, and the OAuth 1.0
    /// request-token secrets, verifiers and access-token secrets. Revoked and used ones
    /// stay listed: none of them may ever appear in what a server shows or logs.
    pub fn granted_secrets(&self) -> Vec<String> {
        self.shared.lock().granted.clone()
    }

    /// Signs `member` in to the simulated browser: the authorize pages grant tokens
    /// for them. By default the first member created (`secops` in the standard world).
    pub fn set_browser_member(&self, member: &str) {
        self.shared.lock().browser_member = Some(member.to_owned());
    }

    /// Every webhook, oldest first.
    pub fn webhooks(&self) -> Vec<crate::SimWebhook> {
        self.shared
            .lock()
            .webhooks
            .values()
            .map(|w| crate::SimWebhook {
                id: w.id.clone(),
                id_model: w.id_model.clone(),
                callback_url: w.callback_url.clone(),
                description: w.description.clone(),
                active: w.active,
                consecutive_failures: w.consecutive_failures,
            })
            .collect()
    }

    /// Every webhook delivery attempt so far, oldest first.
    pub fn webhook_deliveries(&self) -> Vec<crate::SimDelivery> {
        self.shared.lock().deliveries.clone()
    }

    /// True when the token exists and has been revoked.
    pub fn token_revoked(&self, token: &str) -> bool {
        self.shared
            .lock()
            .tokens
            .get(token)
            .is_some_and(|t| t.revoked)
    }

    /// Sets the latency added to every response.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().latency = latency;
    }

    /// Queues a fault rule; rules apply in order and are used up.
    pub fn inject(&self, rule: FaultRule) {
        self.shared.lock().faults.push(rule);
    }

    /// Removes every pending fault rule.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Fault rules not yet used up.
    pub fn pending_faults(&self) -> Vec<FaultRule> {
        self.shared.lock().faults.pending()
    }

    // "A person acting in Trello": direct changes that bump dateLastActivity
    // and are not in the request log. Unknown ids are ignored.

    // Each person action is also an action for the webhooks watching the card, its
    // list or its board, delivered as Trello does (see `webhooks.rs`).

    /// Moves a card to a list (possibly on another board).
    pub fn person_move_card(&self, card: &str, list: &str) {
        let mut st = self.shared.lock();
        let Some((before, closed)) = st.cards.get(card).map(|c| (c.id_list.clone(), c.closed))
        else {
            return;
        };
        st.move_card(card, list, None);
        let extra = st.card_change(card, &before, closed);
        st.emit_card_action("updateCard", card, None, extra);
    }

    /// Archives a card.
    pub fn person_archive_card(&self, card: &str) {
        self.set_closed(card, true);
    }

    /// Unarchives a card.
    pub fn person_unarchive_card(&self, card: &str) {
        self.set_closed(card, false);
    }

    fn set_closed(&self, card: &str, closed: bool) {
        let mut st = self.shared.lock();
        if let Some(c) = st.cards.get_mut(card) {
            let (list, was) = (c.id_list.clone(), c.closed);
            c.closed = closed;
            st.touch_card(card);
            let extra = st.card_change(card, &list, was);
            st.emit_card_action("updateCard", card, None, extra);
        }
    }

    /// Adds a label to a card.
    pub fn person_add_label(&self, card: &str, label: &str) {
        let mut st = self.shared.lock();
        if let Some(c) = st.cards.get_mut(card) {
            if !c.id_labels.iter().any(|l| l == label) {
                c.id_labels.push(label.to_owned());
            }
            st.touch_card(card);
            st.emit_card_action("addLabelToCard", card, None, serde_json::json!({}));
        }
    }

    /// Assigns a member to a card.
    pub fn person_add_member(&self, card: &str, member: &str) {
        let mut st = self.shared.lock();
        if let Some(c) = st.cards.get_mut(card) {
            if !c.id_members.iter().any(|m| m == member) {
                c.id_members.push(member.to_owned());
            }
            st.touch_card(card);
            st.emit_card_action("addMemberToCard", card, None, serde_json::json!({}));
        }
    }

    /// Ticks or unticks a check item of a card.
    pub fn person_tick_check_item(&self, card: &str, check_item: &str, complete: bool) {
        let mut st = self.shared.lock();
        if let Some(cl) = st.checklist_of_item(card, check_item) {
            st.update_check_item(&cl, check_item, Some(complete), None, None);
            let extra = serde_json::json!({
                "checkItem": {"id": check_item, "state": if complete { "complete" } else { "incomplete" }},
                "checklist": {"id": cl},
            });
            st.emit_card_action("updateCheckItemStateOnCard", card, None, extra);
        }
    }

    /// Replaces a card's description.
    pub fn person_edit_desc(&self, card: &str, desc: &str) {
        let mut st = self.shared.lock();
        if let Some(c) = st.cards.get_mut(card) {
            let old = std::mem::replace(&mut c.desc, desc.to_owned());
            st.touch_card(card);
            let extra = serde_json::json!({"old": {"desc": old}});
            st.emit_card_action("updateCard", card, None, extra);
        }
    }

    /// Deletes a card permanently.
    pub fn person_delete_card(&self, card: &str) {
        let mut st = self.shared.lock();
        st.emit_card_action("deleteCard", card, None, serde_json::json!({}));
        st.delete_card(card);
    }

    /// Creates a card at the bottom of a list; returns its id (empty when
    /// the list does not exist).
    pub fn person_create_card(&self, list: &str, name: &str, desc: &str) -> String {
        let mut st = self.shared.lock();
        let id = st
            .create_card(
                list,
                NewCard {
                    name: name.to_owned(),
                    desc: desc.to_owned(),
                    pos: Some(Pos::Bottom),
                    ..NewCard::default()
                },
            )
            .unwrap_or_default();
        st.emit_card_action("createCard", &id, None, serde_json::json!({}));
        id
    }

    /// Adds a checklist to a card; returns its id (empty for an unknown card).
    pub fn person_add_checklist(&self, card: &str, name: &str) -> String {
        self.shared
            .lock()
            .create_checklist(card, name, None)
            .unwrap_or_default()
    }

    /// Adds a check item to a checklist; returns its id (empty for an
    /// unknown checklist).
    pub fn person_add_check_item(&self, checklist: &str, name: &str) -> String {
        self.shared
            .lock()
            .create_check_item(checklist, name, None, false)
            .unwrap_or_default()
    }

    /// Every request so far, oldest first.
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.shared.lock().log.clone()
    }

    /// Every request so far with the names of the parameters it carried (query and
    /// body, sorted; `key` and `token` left out, and never a value), oldest first. Only
    /// an authenticated request that was answered has them: one abandoned before its
    /// answer (a client that hung up during a `Delay` fault) or refused before
    /// authentication lists none.
    pub fn request_log_with_params(&self) -> Vec<(LoggedRequest, Vec<String>)> {
        let st = self.shared.lock();
        st.log
            .iter()
            .cloned()
            .zip(st.log_params.iter().cloned())
            .collect()
    }

    /// Empties the request log.
    pub fn clear_request_log(&self) {
        let mut st = self.shared.lock();
        st.log.clear();
        st.log_params.clear();
    }

    /// Number of logged requests.
    pub fn request_count(&self) -> usize {
        self.shared.lock().log.len()
    }

    /// Logged requests per status (0 = connection dropped).
    pub fn status_counts(&self) -> BTreeMap<u16, usize> {
        let mut out = BTreeMap::new();
        for r in &self.shared.lock().log {
            *out.entry(r.status).or_insert(0) += 1;
        }
        out
    }

    /// Logged requests that answered `status`.
    pub fn count_status(&self, status: u16) -> usize {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| r.status == status)
            .count()
    }

    /// Snapshot of a board's cards, closed ones included, oldest first.
    pub fn cards(&self, board: &str) -> Vec<SimCard> {
        let st = self.shared.lock();
        st.cards
            .values()
            .filter(|c| c.id_board == board)
            .filter_map(|c| st.sim_card(&c.id))
            .collect()
    }

    /// Snapshot of one card.
    pub fn card(&self, id: &str) -> Option<SimCard> {
        let st = self.shared.lock();
        let id = st.card_id(id)?;
        st.sim_card(&id)
    }

    /// A board's labels, oldest first.
    pub fn labels(&self, board: &str) -> Vec<SimLabel> {
        let st = self.shared.lock();
        st.labels
            .values()
            .filter(|l| l.id_board == board)
            .filter_map(|l| st.sim_label(&l.id))
            .collect()
    }
}
