//! The operations as typed calls: what the port implementation will use. Each call is
//! one GraphQL document from `graphql/`, sent through the [`Transport`].

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use webriskops_domain::{FindingId, TenantId};
use webriskops_ports::PortError;

use crate::client_id::issue_client_id;
use crate::config::{ConfigError, LinearSettings};
use crate::ops::{self, Operation, PAGE_SIZE};
use crate::paging::{collect_pages, shape, Page, MAX_PAGES};
use crate::secret::Credential;
use crate::transport::{RequestStats, Transport};

/// The credential's user.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Viewer {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
}

/// The credential's workspace.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub url_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Team {
    pub id: String,
    pub key: String,
    pub name: String,
    #[serde(default)]
    pub archived_at: Option<String>,
}

/// A workflow state; `kind` is Linear's `type`: triage, backlog, unstarted, started,
/// completed, canceled or duplicate (FACTS.md "Lookups").
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowState {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub position: Option<f64>,
    #[serde(default)]
    pub archived_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IdOnly {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Label {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub color: Option<String>,
    /// `None` for a workspace label.
    #[serde(default)]
    pub team: Option<IdOnly>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StateRef {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NamedRef {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Attachment {
    pub id: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TeamRef {
    pub id: String,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Nodes<T> {
    pub nodes: Vec<T>,
}

/// An issue as the adapter reads it (`graphql/IssueFields.fragment.graphql`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Issue {
    pub id: String,
    pub identifier: String,
    pub url: String,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    /// 0 none, 1 urgent, 2 high, 3 medium, 4 low (a Float in the schema).
    pub priority: f64,
    #[serde(default)]
    pub due_date: Option<String>,
    #[serde(default)]
    pub archived_at: Option<String>,
    /// ISO 8601; absent only in answers that did not select it.
    #[serde(default)]
    pub created_at: Option<String>,
    pub updated_at: String,
    pub state: StateRef,
    #[serde(default)]
    pub assignee: Option<IdOnly>,
    pub labels: Nodes<NamedRef>,
    pub attachments: Nodes<Attachment>,
    pub team: TeamRef,
}

/// A new issue and the attachment that carries its finding's canonical URL.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIssue {
    pub team_id: String,
    pub title: String,
    pub description: String,
    /// 0..=4 (FACTS.md "Create issue").
    pub priority: Option<u8>,
    pub state_id: Option<String>,
    pub label_ids: Vec<String>,
    pub assignee_id: Option<String>,
    /// `YYYY-MM-DD`.
    pub due_date: Option<String>,
    /// The finding's canonical URL: the attachment's `url`, the identity lookup key.
    pub finding_url: String,
    pub attachment_title: String,
    pub attachment_subtitle: Option<String>,
}

/// A team with its workspace (`graphql/Team.graphql`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamDetail {
    pub id: String,
    pub key: String,
    pub name: String,
    #[serde(default)]
    pub archived_at: Option<String>,
    #[serde(default)]
    pub organization: Option<IdOnly>,
}

/// A workflow state with its team (`graphql/WorkflowState.graphql`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateDetail {
    #[serde(flatten)]
    pub state: WorkflowState,
    pub team: IdOnly,
}

/// One page of a team's issues, newest first, and the cursor of the next (older) page.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuePage {
    pub issues: Vec<Issue>,
    /// `None` on the last (oldest) page.
    pub older: Option<String>,
}

/// What Linear knows of one finding's issue (`graphql/IssueByFinding.graphql`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FindingLookup {
    /// The issues carrying the finding's URL, in the order of their attachments
    /// (oldest first), each once.
    pub by_url: Vec<Issue>,
    /// The issue with the finding's deterministic client id, if any.
    pub by_client_id: Option<Issue>,
}

/// Options of a team's issue listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TeamIssuesOptions {
    pub include_archived: bool,
}

/// Typed Linear operations over one credential.
#[derive(Debug)]
pub struct LinearClient {
    transport: Transport,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IssueCreateInput<'a> {
    id: &'a str,
    team_id: &'a str,
    title: &'a str,
    description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_id: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    label_ids: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    assignee_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    due_date: Option<&'a str>,
}

fn field<T: DeserializeOwned>(data: &Value, path: &[&str], what: &str) -> Result<T, PortError> {
    let mut v = data;
    for p in path {
        v = v.get(p).ok_or_else(|| shape(what, &format!("no {p}")))?;
    }
    serde_json::from_value(v.clone()).map_err(|e| shape(what, &e.to_string()))
}

impl LinearClient {
    /// # Errors
    /// A setting is unusable (see [`LinearSettings::validate`]).
    pub fn new(settings: &LinearSettings, credential: &Credential) -> Result<Self, ConfigError> {
        Ok(LinearClient {
            transport: Transport::new(settings, credential)?,
        })
    }

    pub fn stats(&self) -> RequestStats {
        self.transport.stats()
    }

    /// The transport, for operations not wrapped here.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    async fn run(&self, op: &Operation, vars: Value) -> Result<Value, PortError> {
        self.transport.execute(op, vars).await
    }

    async fn pages<T: DeserializeOwned>(
        &self,
        op: &Operation,
        vars: Map<String, Value>,
        path: &[&str],
    ) -> Result<Vec<T>, PortError> {
        collect_pages(op.name, MAX_PAGES, |after| {
            let mut v = vars.clone();
            v.insert("first".into(), json!(PAGE_SIZE));
            v.insert("after".into(), json!(after));
            async move {
                let data = self.run(op, Value::Object(v)).await?;
                Page::from_data(&data, path, op.name)
            }
        })
        .await
    }

    /// Who the credential belongs to and its workspace: the authentication probe.
    ///
    /// # Errors
    /// `Unauthenticated` for a missing, invalid or revoked credential.
    pub async fn viewer(&self) -> Result<(Viewer, Organization), PortError> {
        let data = self.run(&ops::VIEWER, json!({})).await?;
        Ok((
            field(&data, &["viewer"], "Viewer")?,
            field(&data, &["organization"], "Viewer")?,
        ))
    }

    /// Every team the credential can see.
    ///
    /// # Errors
    /// Any [`PortError`] of the transport or paging.
    pub async fn teams(&self) -> Result<Vec<Team>, PortError> {
        self.pages(&ops::TEAMS, Map::new(), &["teams"]).await
    }

    /// A team's workflow states; `NotFound` when the team is not visible.
    ///
    /// # Errors
    /// Any [`PortError`] of the transport or paging.
    pub async fn team_states(&self, team_id: &str) -> Result<Vec<WorkflowState>, PortError> {
        let mut vars = Map::new();
        vars.insert("teamId".into(), json!(team_id));
        self.pages(&ops::TEAM_STATES, vars, &["team", "states"])
            .await
    }

    /// The labels usable on a team's issues (the team's and the workspace's).
    ///
    /// # Errors
    /// Any [`PortError`] of the transport or paging.
    pub async fn labels(&self, team_id: &str) -> Result<Vec<Label>, PortError> {
        let mut vars = Map::new();
        vars.insert("teamId".into(), json!(team_id));
        self.pages(&ops::LABELS, vars, &["issueLabels"]).await
    }

    /// Creates a label on a team. `color` is `#rrggbb`.
    ///
    /// # Errors
    /// Any [`PortError`]; `success: false` is an error.
    pub async fn create_label(
        &self,
        team_id: &str,
        name: &str,
        color: Option<&str>,
    ) -> Result<Label, PortError> {
        let mut input = json!({"teamId": team_id, "name": name});
        if let Some(c) = color {
            input["color"] = json!(c);
        }
        let data = self
            .run(&ops::LABEL_CREATE, json!({ "input": input }))
            .await?;
        field(&data, &["issueLabelCreate", "issueLabel"], "LabelCreate")
    }

    /// The workspace's active users.
    ///
    /// # Errors
    /// Any [`PortError`] of the transport or paging.
    pub async fn users(&self) -> Result<Vec<User>, PortError> {
        self.pages(&ops::USERS, Map::new(), &["users"]).await
    }

    /// Creates the issue of `finding` with its deterministic client id and its
    /// attachment, in one request. Never resent when its answer is lost: the caller
    /// looks it up with [`LinearClient::issues_by_attachment_url`] (or
    /// [`LinearClient::issue`] with the client id) before trying again.
    ///
    /// # Errors
    /// `OutcomeUnknown` when the issue may exist (answer lost, 5xx, or the issue was
    /// created but its attachment failed); other [`PortError`]s when nothing was done.
    pub async fn create_issue_with_attachment(
        &self,
        tenant: &TenantId,
        finding: &FindingId,
        new: &NewIssue,
    ) -> Result<Issue, PortError> {
        let id = issue_client_id(tenant, &new.team_id, finding);
        let input = IssueCreateInput {
            id: &id,
            team_id: &new.team_id,
            title: &new.title,
            description: &new.description,
            priority: new.priority,
            state_id: new.state_id.as_deref(),
            label_ids: &new.label_ids,
            assignee_id: new.assignee_id.as_deref(),
            due_date: new.due_date.as_deref(),
        };
        let vars = json!({
            "issue": input,
            "issueId": id,
            "url": new.finding_url,
            "title": new.attachment_title,
            "subtitle": new.attachment_subtitle,
            "metadata": {"findingId": finding.as_str(), "source": "webriskops"},
        });
        let data = self.run(&ops::ISSUE_CREATE_WITH_ATTACHMENT, vars).await?;
        let mut issue: Issue = field(
            &data,
            &["issueCreate", "issue"],
            "IssueCreateWithAttachment",
        )?;
        // `issueCreate` answers before `attachmentCreate` runs: the issue it returns has
        // no attachment yet. Add the one made by the same request, so the answer reads
        // as the issue now is.
        let attachment: Attachment = field(
            &data,
            &["attachmentCreate", "attachment"],
            "IssueCreateWithAttachment",
        )?;
        if !issue
            .attachments
            .nodes
            .iter()
            .any(|a| a.id == attachment.id)
        {
            issue.attachments.nodes.push(attachment);
        }
        Ok(issue)
    }

    /// Updates an issue with an `IssueUpdateInput` (only the fields to change).
    ///
    /// # Errors
    /// Any [`PortError`]; `OutcomeUnknown` when the answer was lost.
    pub async fn update_issue(
        &self,
        id: &str,
        input: Map<String, Value>,
    ) -> Result<Issue, PortError> {
        let data = self
            .run(&ops::ISSUE_UPDATE, json!({"id": id, "input": input}))
            .await?;
        field(&data, &["issueUpdate", "issue"], "IssueUpdate")
    }

    /// Archives an issue; answers it as it is now (`None` if Linear gives no entity).
    ///
    /// # Errors
    /// Any [`PortError`]; `success: false` is an error.
    pub async fn archive_issue(&self, id: &str) -> Result<Option<Issue>, PortError> {
        let data = self.run(&ops::ISSUE_ARCHIVE, json!({ "id": id })).await?;
        field(&data, &["issueArchive", "entity"], "IssueArchive")
    }

    /// Unarchives an issue; answers it as it is now (`None` if Linear gives no entity).
    ///
    /// # Errors
    /// Any [`PortError`]; `success: false` is an error.
    pub async fn unarchive_issue(&self, id: &str) -> Result<Option<Issue>, PortError> {
        let data = self.run(&ops::ISSUE_UNARCHIVE, json!({ "id": id })).await?;
        field(&data, &["issueUnarchive", "entity"], "IssueUnarchive")
    }

    /// One team with its workspace.
    ///
    /// # Errors
    /// `NotFound` when the team does not exist or is not visible; any other [`PortError`].
    pub async fn team(&self, id: &str) -> Result<TeamDetail, PortError> {
        let data = self.run(&ops::TEAM, json!({ "id": id })).await?;
        match data.get("team") {
            None | Some(Value::Null) => Err(PortError::NotFound {
                context: Default::default(),
                what: format!("Linear team {}", crate::errors::excerpt(id, 80)),
            }),
            Some(_) => field(&data, &["team"], "Team"),
        }
    }

    /// One workflow state with its team.
    ///
    /// # Errors
    /// `NotFound` when the state does not exist or is not visible; any other [`PortError`].
    pub async fn workflow_state(&self, id: &str) -> Result<StateDetail, PortError> {
        let data = self.run(&ops::WORKFLOW_STATE, json!({ "id": id })).await?;
        match data.get("workflowState") {
            None | Some(Value::Null) => Err(PortError::NotFound {
                context: Default::default(),
                what: format!("Linear workflow state {}", crate::errors::excerpt(id, 80)),
            }),
            Some(_) => field(&data, &["workflowState"], "WorkflowState"),
        }
    }

    /// One page of a team's issues, newest first: `last` issues `before` the cursor
    /// (the previous page's [`IssuePage::older`]; `None` for the newest page).
    ///
    /// # Errors
    /// Any [`PortError`]; a page that says there is more without a cursor.
    pub async fn team_issues_page(
        &self,
        team_id: &str,
        last: u32,
        before: Option<&str>,
        include_archived: bool,
    ) -> Result<IssuePage, PortError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Info {
            has_previous_page: bool,
            start_cursor: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Conn {
            nodes: Vec<Issue>,
            page_info: Info,
        }
        let vars = json!({
            "teamId": team_id,
            "last": last,
            "before": before,
            "includeArchived": include_archived,
        });
        let data = self.run(&ops::TEAM_ISSUES_PAGE, vars).await?;
        let mut c: Conn = field(&data, &["issues"], "TeamIssuesPage")?;
        // The page runs oldest to newest: turn it round.
        c.nodes.reverse();
        let older = match (c.page_info.has_previous_page, c.page_info.start_cursor) {
            (false, _) => None,
            (true, Some(cursor)) if before != Some(cursor.as_str()) => Some(cursor),
            (true, Some(_)) => {
                return Err(shape(
                    "TeamIssuesPage",
                    "the same startCursor came twice; stopping",
                ))
            }
            (true, None) => {
                return Err(shape(
                    "TeamIssuesPage",
                    "hasPreviousPage is true but startCursor is missing",
                ))
            }
        };
        Ok(IssuePage {
            issues: c.nodes,
            older,
        })
    }

    /// The issue of a finding, in one request: by the finding's canonical `url` (the
    /// attachment) and by its deterministic client id.
    ///
    /// # Errors
    /// Any [`PortError`].
    pub async fn issue_by_finding(
        &self,
        url: &str,
        client_id: &str,
    ) -> Result<FindingLookup, PortError> {
        #[derive(Deserialize)]
        struct Node {
            issue: Option<Issue>,
        }
        let vars = json!({"url": url, "first": PAGE_SIZE, "clientId": client_id});
        let data = self.run(&ops::ISSUE_BY_FINDING, vars).await?;
        let nodes: Nodes<Node> = field(&data, &["attachmentsForURL"], "IssueByFinding")?;
        let by_id: Nodes<Issue> = field(&data, &["byClientId"], "IssueByFinding")?;
        let mut seen = std::collections::HashSet::new();
        Ok(FindingLookup {
            by_url: nodes
                .nodes
                .into_iter()
                .filter_map(|n| n.issue)
                .filter(|i| seen.insert(i.id.clone()))
                .collect(),
            by_client_id: by_id.nodes.into_iter().next(),
        })
    }

    /// The issues carrying `url` as an attachment, archived ones included (asked for:
    /// the schema's default leaves them out): the identity lookup.
    ///
    /// # Errors
    /// Any [`PortError`] of the transport or paging.
    pub async fn issues_by_attachment_url(&self, url: &str) -> Result<Vec<Issue>, PortError> {
        #[derive(Deserialize)]
        struct Node {
            issue: Option<Issue>,
        }
        let mut vars = Map::new();
        vars.insert("url".into(), json!(url));
        let nodes: Vec<Node> = self
            .pages(&ops::ATTACHMENTS_FOR_URL, vars, &["attachmentsForURL"])
            .await?;
        // Several attachments may carry the URL; each issue is returned once.
        let mut seen = std::collections::HashSet::new();
        Ok(nodes
            .into_iter()
            .filter_map(|n| n.issue)
            .filter(|i| seen.insert(i.id.clone()))
            .collect())
    }

    /// Every issue of a team.
    ///
    /// # Errors
    /// Any [`PortError`] of the transport or paging.
    pub async fn team_issues(
        &self,
        team_id: &str,
        options: TeamIssuesOptions,
    ) -> Result<Vec<Issue>, PortError> {
        let mut vars = Map::new();
        vars.insert("teamId".into(), json!(team_id));
        vars.insert("includeArchived".into(), json!(options.include_archived));
        self.pages(&ops::TEAM_ISSUES, vars, &["issues"]).await
    }

    /// One issue by id (UUID or identifier); `None` when Linear says it does not exist.
    ///
    /// # Errors
    /// Any other [`PortError`].
    pub async fn issue(&self, id: &str) -> Result<Option<Issue>, PortError> {
        match self.run(&ops::ISSUE, json!({ "id": id })).await {
            Ok(data) => match data.get("issue") {
                None | Some(Value::Null) => Ok(None),
                Some(v) => serde_json::from_value(v.clone())
                    .map(Some)
                    .map_err(|e| shape("Issue", &e.to_string())),
            },
            Err(PortError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
