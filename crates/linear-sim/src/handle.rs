//! `SimHandle`: seeding, "a person acting in Linear", faults and inspection.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::faults::FaultRule;
use crate::http::Shared;
use crate::ids;
use crate::log::LoggedRequest;
use crate::state::{render_markdown, ApiKey, IssuePatch, NewIssue, OAuthClient, Scopes, State};

/// Ids and credentials of the standard world built by [`SimHandle::seed_standard`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fixture {
    pub organization_id: String,
    /// Engineering, key `ENG`, no triage.
    pub eng: FixtureTeam,
    /// Operations, key `OPS`, triage enabled (new issues without `stateId` land in Triage).
    pub ops: FixtureTeam,
    /// Workspace label `sec-remediation` (no team).
    pub workspace_label_id: String,
    /// secops (admin; ENG and OPS), jdoe (ENG), asmith (OPS), outsider (no team).
    pub users: Vec<FixtureUser>,
    pub keys: FixtureKeys,
    pub oauth: FixtureOAuthClient,
}

impl Fixture {
    /// The fixture user with this short name (`secops`, `jdoe`, `asmith`, `outsider`).
    pub fn user(&self, short: &str) -> Option<&FixtureUser> {
        self.users.iter().find(|u| u.short == short)
    }
}

/// A team of the standard world, with its workflow states and labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixtureTeam {
    pub id: String,
    pub key: String,
    pub name: String,
    /// Triage state, when the team has triage enabled.
    pub triage: Option<String>,
    /// "Backlog" (backlog).
    pub backlog: String,
    /// "Todo" (unstarted).
    pub todo: String,
    /// "In Progress" (started).
    pub in_progress: String,
    /// "Done" (completed).
    pub done: String,
    /// "Canceled" (canceled).
    pub canceled: String,
    /// "Duplicate" (duplicate).
    pub duplicate: String,
    /// "Old Todo" (unstarted), archived.
    pub archived_state: String,
    /// Team labels by name.
    pub labels: BTreeMap<String, String>,
}

/// A user of the standard world.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixtureUser {
    pub id: String,
    /// Short name: secops, jdoe, asmith, outsider.
    pub short: String,
    pub name: String,
    pub email: String,
    /// Keys of the teams the user is a member of.
    pub teams: Vec<String>,
}

/// API keys of the standard world (values generated at run time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixtureKeys {
    /// secops, read+write, every team.
    pub full: String,
    /// secops, read only.
    pub read_only: String,
    /// secops, read+write, sees only ENG.
    pub eng_only: String,
    /// secops, read + `issues:create` only (no `write`).
    pub create_only: String,
    /// jdoe, read+write: another user, so another rate-limit bucket.
    pub other_user: String,
    /// secops (a workspace admin), read+write+admin: may create and read webhooks.
    pub admin: String,
}

/// The OAuth application of the standard world.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixtureOAuthClient {
    pub client_id: String,
    pub client_secret: String,
    /// The one registered redirect URI.
    pub redirect_uri: String,
}

/// A snapshot of an issue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimIssue {
    pub id: String,
    pub identifier: String,
    pub team_id: String,
    pub title: String,
    pub description: Option<String>,
    pub priority: i64,
    pub state_id: String,
    pub state_name: String,
    /// `triage`, `backlog`, `unstarted`, `started`, `completed`, `canceled` or `duplicate`.
    pub state_type: String,
    pub assignee_id: Option<String>,
    pub label_ids: Vec<String>,
    pub label_names: Vec<String>,
    pub due_date: Option<String>,
    pub archived: bool,
    pub trashed: bool,
    pub attachments: Vec<SimAttachment>,
}

/// A snapshot of an attachment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimAttachment {
    pub id: String,
    pub issue_id: String,
    pub url: String,
    pub title: String,
    pub metadata: serde_json::Value,
}

/// Controls the simulated world. Cheap to clone; every method is
/// synchronous and holds the state lock only briefly.
#[derive(Debug, Clone)]
pub struct SimHandle {
    shared: Arc<Shared>,
}

fn snapshot(st: &State, idx: usize) -> SimIssue {
    let i = &st.issues[idx];
    let state = st.wf_state(&i.state_id);
    SimIssue {
        id: i.id.clone(),
        identifier: st.identifier(i),
        team_id: i.team_id.clone(),
        title: i.title.clone(),
        description: i.description.clone(),
        priority: i.priority,
        state_id: i.state_id.clone(),
        state_name: state.map(|s| s.name.clone()).unwrap_or_default(),
        state_type: state.map(|s| s.kind.clone()).unwrap_or_default(),
        assignee_id: i.assignee_id.clone(),
        label_ids: i.label_ids.clone(),
        label_names: i
            .label_ids
            .iter()
            .filter_map(|l| st.label(l).map(|l| l.name.clone()))
            .collect(),
        due_date: i.due_date.clone(),
        archived: i.archived_at.is_some(),
        trashed: i.trashed,
        attachments: st
            .attachments
            .iter()
            .filter(|a| a.issue_id == i.id)
            .map(|a| SimAttachment {
                id: a.id.clone(),
                issue_id: a.issue_id.clone(),
                url: a.url.clone(),
                title: a.title.clone(),
                metadata: a.metadata.clone(),
            })
            .collect(),
    }
}

impl SimHandle {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        SimHandle { shared }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.lock()
    }

    /// Builds the standard world (see `docs/linear-sim.md`) and returns its
    /// ids and freshly generated credentials.
    pub fn seed_standard(&self) -> Fixture {
        let people = [
            (
                "secops",
                "Security Operations",
                "secops@acme.test",
                true,
                vec!["ENG", "OPS"],
            ),
            ("jdoe", "Jane Doe", "jdoe@acme.test", false, vec!["ENG"]),
            (
                "asmith",
                "Alex Smith",
                "asmith@acme.test",
                false,
                vec!["OPS"],
            ),
            (
                "outsider",
                "Olivia Outsider",
                "outsider@acme.test",
                false,
                vec![],
            ),
        ];
        let mut st = self.lock();
        st.org.name = "Acme Security".into();
        st.org.url_key = "acme".into();
        let eng = seed_team(
            &mut st,
            "ENG",
            "Engineering",
            false,
            &["Bug", "security", "Feature"],
        );
        let ops = seed_team(
            &mut st,
            "OPS",
            "Operations",
            true,
            &["Incident", "security", "Maintenance"],
        );
        let teams = [&eng, &ops];
        let workspace_label_id = st
            .create_label(None, "sec-remediation", Some("#eb5757"), None)
            .unwrap_or_default();
        let mut users = Vec::new();
        for (short, name, email, admin, member_of) in people {
            let id = st.create_user(name, email, admin);
            for key in &member_of {
                if let Some(t) = teams.iter().find(|t| t.key == *key) {
                    st.add_team_member(&t.id, &id);
                }
            }
            users.push(FixtureUser {
                id,
                short: short.to_owned(),
                name: name.to_owned(),
                email: email.to_owned(),
                teams: member_of.iter().map(|k| (*k).to_owned()).collect(),
            });
        }
        let secops = users[0].id.clone();
        let jdoe = users[1].id.clone();
        st.authorizing_user = Some(secops.clone());
        let mut key = |user: &str, scopes: Scopes, teams: Option<Vec<String>>| {
            let k = ids::api_key();
            st.granted.push(k.clone());
            st.api_keys.insert(
                k.clone(),
                ApiKey {
                    user_id: user.to_owned(),
                    scopes,
                    team_ids: teams,
                    revoked: false,
                },
            );
            k
        };
        let eng_id = teams[0].id.clone();
        let keys = FixtureKeys {
            full: key(&secops, Scopes::read_write(), None),
            read_only: key(&secops, Scopes::read_only(), None),
            eng_only: key(&secops, Scopes::read_write(), Some(vec![eng_id])),
            create_only: key(
                &secops,
                Scopes {
                    issues_create: true,
                    ..Scopes::read_only()
                },
                None,
            ),
            other_user: key(&jdoe, Scopes::read_write(), None),
            admin: key(
                &secops,
                Scopes {
                    admin: true,
                    ..Scopes::read_write()
                },
                None,
            ),
        };
        let client_id = ids::secret_hex();
        let client_secret = ids::secret_hex();
        st.granted.push(client_secret.clone());
        let redirect_uri = "http://127.0.0.1:9/oauth/callback".to_owned();
        st.oauth_clients.insert(
            client_id.clone(),
            OAuthClient {
                secret: client_secret.clone(),
                redirect_uris: vec![redirect_uri.clone()],
            },
        );
        let organization_id = st.org.id.clone();
        drop(st);
        Fixture {
            organization_id,
            eng,
            ops,
            workspace_label_id,
            users,
            keys,
            oauth: FixtureOAuthClient {
                client_id,
                client_secret,
                redirect_uri,
            },
        }
    }

    /// Creates a user (active; `admin` as given); returns its id.
    pub fn create_user(&self, name: &str, email: &str, admin: bool) -> String {
        self.lock().create_user(name, email, admin)
    }

    /// Deactivates a user: their keys and tokens stop authenticating.
    pub fn deactivate_user(&self, user: &str) {
        if let Some(u) = self.lock().users.iter_mut().find(|u| u.id == user) {
            u.active = false;
        }
    }

    /// Creates a team with the standard workflow states; returns its id.
    pub fn create_team(&self, key: &str, name: &str, triage: bool) -> String {
        self.lock().create_team(key, name, triage)
    }

    /// Adds a user to a team.
    pub fn add_team_member(&self, team: &str, user: &str) {
        self.lock().add_team_member(team, user);
    }

    /// Creates a workflow state; returns its id.
    pub fn create_state(&self, team: &str, name: &str, kind: &str, position: f64) -> String {
        self.lock()
            .create_state(team, name, kind, position, "#bec2c8")
    }

    /// Archives a workflow state.
    pub fn archive_state(&self, state: &str) {
        if let Some(s) = self.lock().states.iter_mut().find(|s| s.id == state) {
            s.archived_at = Some(Utc::now());
        }
    }

    /// The id of a team's workflow state by name (archived ones included).
    pub fn state_id(&self, team: &str, name: &str) -> Option<String> {
        self.lock()
            .states
            .iter()
            .find(|s| s.team_id == team && s.name == name)
            .map(|s| s.id.clone())
    }

    /// Creates a label (`team: None` = workspace label); returns its id, or
    /// empty when the name is taken or the team unknown.
    pub fn create_label(&self, team: Option<&str>, name: &str) -> String {
        self.lock()
            .create_label(team, name, None, None)
            .unwrap_or_default()
    }

    /// Creates a personal API key for `user`; `teams: None` sees every team.
    pub fn create_api_key(&self, user: &str, scopes: Scopes, teams: Option<Vec<String>>) -> String {
        let k = ids::api_key();
        let mut st = self.lock();
        st.granted.push(k.clone());
        st.api_keys.insert(
            k.clone(),
            ApiKey {
                user_id: user.to_owned(),
                scopes,
                team_ids: teams,
                revoked: false,
            },
        );
        k
    }

    /// Revokes an API key, as a person would in Settings › Security & access
    /// (the schema has no mutation for it).
    pub fn revoke_api_key(&self, key: &str) {
        if let Some(k) = self.lock().api_keys.get_mut(key) {
            k.revoked = true;
        }
    }

    /// Registers an OAuth application; returns `(client_id, client_secret)`.
    pub fn create_oauth_client(&self, redirect_uris: &[&str]) -> (String, String) {
        let id = ids::secret_hex();
        let secret = ids::secret_hex();
        let mut st = self.lock();
        st.granted.push(secret.clone());
        st.oauth_clients.insert(
            id.clone(),
            OAuthClient {
                secret: secret.clone(),
                redirect_uris: redirect_uris.iter().map(|s| (*s).to_owned()).collect(),
            },
        );
        (id, secret)
    }

    /// Who approves `GET /oauth/authorize` (`None`: nobody, the answer is
    /// `error=access_denied`). The standard world sets secops.
    pub fn set_authorizing_user(&self, user: Option<&str>) {
        self.lock().authorizing_user = user.map(str::to_owned);
    }

    /// Makes an OAuth access token expire now.
    pub fn expire_access_token(&self, token: &str) {
        if let Some(t) = self.lock().access_tokens.get_mut(token) {
            t.expires_at = Instant::now();
        }
    }

    /// True when the access or refresh token exists and is revoked.
    pub fn token_revoked(&self, token: &str) -> bool {
        let st = self.lock();
        st.access_tokens.get(token).is_some_and(|t| t.revoked)
            || st.refresh_tokens.get(token).is_some_and(|t| t.revoked)
    }

    /// Every secret the simulator has handed out so far, oldest first: API keys, OAuth
    /// client secrets, authorization codes, access and refresh tokens and webhook
    /// signing secrets. Revoked, used and deleted ones stay listed: none of them may
    /// ever appear in what a server shows or logs.
    pub fn granted_secrets(&self) -> Vec<String> {
        self.lock().granted.clone()
    }

    /// Every webhook, oldest first (secrets included: this is the test's view).
    pub fn webhooks(&self) -> Vec<crate::SimWebhook> {
        self.lock()
            .webhooks
            .iter()
            .map(|w| crate::SimWebhook {
                id: w.id.clone(),
                url: w.url.clone(),
                secret: w.secret.clone(),
                team_id: w.team_id.clone(),
                resource_types: w.resource_types.clone(),
                enabled: w.enabled,
            })
            .collect()
    }

    /// Enables or disables a webhook, as an admin would in Settings › API.
    pub fn set_webhook_enabled(&self, id: &str, enabled: bool) {
        if let Some(w) = self.lock().webhooks.iter_mut().find(|w| w.id == id) {
            w.enabled = enabled;
        }
    }

    /// Every webhook delivery attempt so far, oldest first.
    pub fn webhook_deliveries(&self) -> Vec<crate::SimDelivery> {
        self.lock().deliveries.clone()
    }

    /// Sets the latency added to every response.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Queues a fault rule; rules apply in order and are used up.
    pub fn inject(&self, rule: FaultRule) {
        self.lock().faults.push(rule);
    }

    /// Removes every pending fault rule.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Fault rules not yet used up.
    pub fn pending_faults(&self) -> Vec<FaultRule> {
        self.lock().faults.pending()
    }

    // "A person acting in Linear": direct changes that bump updatedAt and are
    // not in the request log. Unknown ids are ignored.

    /// Creates an issue as `creator` would in the app; returns its id (empty
    /// when the team is unknown).
    pub fn person_create_issue(&self, team: &str, title: &str, description: &str) -> String {
        let mut st = self.lock();
        let markdown = self.shared.cfg.markdown;
        st.create_issue(
            NewIssue {
                team_id: team.to_owned(),
                title: title.to_owned(),
                description: Some(description.to_owned()),
                ..NewIssue::default()
            },
            markdown,
        )
        .unwrap_or_default()
    }

    fn patch(&self, issue: &str, patch: IssuePatch) {
        let mut st = self.lock();
        if let Some(idx) = st.issue_index(issue) {
            let _ = st.update_issue(idx, patch, false);
        }
    }

    /// Moves an issue to a workflow state of its team (e.g. Canceled, Duplicate, Done).
    pub fn person_move_issue(&self, issue: &str, state: &str) {
        self.patch(
            issue,
            IssuePatch {
                state_id: Some(state.to_owned()),
                ..IssuePatch::default()
            },
        );
    }

    /// Adds a label to an issue.
    pub fn person_add_label(&self, issue: &str, label: &str) {
        self.patch(
            issue,
            IssuePatch {
                added_label_ids: vec![label.to_owned()],
                ..IssuePatch::default()
            },
        );
    }

    /// Removes a label from an issue.
    pub fn person_remove_label(&self, issue: &str, label: &str) {
        self.patch(
            issue,
            IssuePatch {
                removed_label_ids: vec![label.to_owned()],
                ..IssuePatch::default()
            },
        );
    }

    /// Sets or clears the assignee.
    pub fn person_set_assignee(&self, issue: &str, user: Option<&str>) {
        self.patch(
            issue,
            IssuePatch {
                assignee_id: Some(user.map(str::to_owned)),
                ..IssuePatch::default()
            },
        );
    }

    /// Sets the priority (0..=4).
    pub fn person_set_priority(&self, issue: &str, priority: i64) {
        self.patch(
            issue,
            IssuePatch {
                priority: Some(priority),
                ..IssuePatch::default()
            },
        );
    }

    /// Edits the description in Linear's editor: the stored Markdown is
    /// re-rendered (`*` bullets become `-`, `1)` becomes `1.`, CRLF becomes LF).
    pub fn person_edit_description(&self, issue: &str, markdown: &str) {
        self.patch(
            issue,
            IssuePatch {
                description: Some(Some(render_markdown(markdown))),
                ..IssuePatch::default()
            },
        );
    }

    /// Archives an issue.
    pub fn person_archive_issue(&self, issue: &str) {
        let mut st = self.lock();
        if let Some(idx) = st.issue_index(issue) {
            st.archive_issue(idx, false);
        }
    }

    /// Moves an issue to the trash (archived and `trashed`).
    pub fn person_trash_issue(&self, issue: &str) {
        let mut st = self.lock();
        if let Some(idx) = st.issue_index(issue) {
            st.archive_issue(idx, true);
        }
    }

    /// Restores an archived or trashed issue.
    pub fn person_unarchive_issue(&self, issue: &str) {
        let mut st = self.lock();
        if let Some(idx) = st.issue_index(issue) {
            st.unarchive_issue(idx);
        }
    }

    /// Deletes an issue and its attachments for good.
    pub fn person_delete_issue(&self, issue: &str) {
        let mut st = self.lock();
        if let Some(idx) = st.issue_index(issue) {
            st.delete_issue(idx);
        }
    }

    /// Every request so far, oldest first.
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.lock().log.clone()
    }

    /// Empties the request log.
    pub fn clear_request_log(&self) {
        self.lock().log.clear();
    }

    /// Number of logged requests.
    pub fn request_count(&self) -> usize {
        self.lock().log.len()
    }

    /// Logged requests per HTTP status (0 = connection dropped).
    pub fn status_counts(&self) -> BTreeMap<u16, usize> {
        let mut out = BTreeMap::new();
        for r in &self.lock().log {
            *out.entry(r.status).or_insert(0) += 1;
        }
        out
    }

    /// Logged requests per error code (`RATELIMITED`, `AUTHENTICATION_ERROR`, …).
    pub fn error_code_counts(&self) -> HashMap<String, usize> {
        let mut out = HashMap::new();
        for r in &self.lock().log {
            if let Some(c) = &r.error_code {
                *out.entry(c.clone()).or_insert(0) += 1;
            }
        }
        out
    }

    /// Snapshot of one issue by UUID or identifier (archived ones included).
    pub fn issue(&self, id: &str) -> Option<SimIssue> {
        let st = self.lock();
        st.issue_index(id).map(|i| snapshot(&st, i))
    }

    /// Snapshot of a team's issues, archived ones included, oldest first.
    pub fn issues(&self, team: &str) -> Vec<SimIssue> {
        let st = self.lock();
        (0..st.issues.len())
            .filter(|i| st.issues[*i].team_id == team)
            .map(|i| snapshot(&st, i))
            .collect()
    }

    /// Every issue of the world, oldest first.
    pub fn all_issues(&self) -> Vec<SimIssue> {
        let st = self.lock();
        (0..st.issues.len()).map(|i| snapshot(&st, i)).collect()
    }
}

/// A team with the standard states, an archived "Old Todo" state and labels.
fn seed_team(st: &mut State, key: &str, name: &str, triage: bool, labels: &[&str]) -> FixtureTeam {
    let id = st.create_team(key, name, triage);
    let archived_state = st.create_state(&id, "Old Todo", "unstarted", 10.0, "#e2e2e2");
    if let Some(s) = st.states.iter_mut().find(|s| s.id == archived_state) {
        s.archived_at = Some(Utc::now());
    }
    let mut label_ids = BTreeMap::new();
    for l in labels {
        if let Ok(lid) = st.create_label(Some(&id), l, None, None) {
            label_ids.insert((*l).to_owned(), lid);
        }
    }
    let state = |kind: &str| {
        st.states
            .iter()
            .find(|s| s.team_id == id && s.kind == kind && s.archived_at.is_none())
            .map(|s| s.id.clone())
            .unwrap_or_default()
    };
    FixtureTeam {
        id: id.clone(),
        key: key.to_owned(),
        name: name.to_owned(),
        triage: triage.then(|| state("triage")),
        backlog: state("backlog"),
        todo: state("unstarted"),
        in_progress: state("started"),
        done: state("completed"),
        canceled: state("canceled"),
        duplicate: state("duplicate"),
        archived_state,
        labels: label_ids,
    }
}
