//! The Linear adapter behind the ports, against linear-sim over HTTP: the shared
//! conformance suite, what a create writes and reads back, states a person chooses in
//! Linear, a create whose answer is lost, and requests per new issue.

use std::sync::Arc;

use chrono::NaiveDate;
use linear_sim::{Fault, FaultRule, Fixture, SimConfig, SimHandle, SimServer};
use url::Url;
use webriskops_domain::{card::marker, FindingId, ItemId, StateCategory, TargetState, TenantId};
use webriskops_linear::{
    Credential, FindingUrl, LinearAdapter, LinearAdapterOptions, LinearSecret, LinearSettings,
    NewIssue, OAuthClient, RetryPolicy,
};
use webriskops_ports::conformance::{self, Target};
use webriskops_ports::{
    ItemChanges, NewItem, NewLabel, Placement, PortError, ReadOptions, TrackerIntrospection,
    WorkItems,
};

/// A well-formed issue id (UUID v4) that no issue has.
const MISSING_ID: &str = "00000000-0000-4000-8000-000000000000";

struct World {
    sim: SimServer,
    h: SimHandle,
    fx: Fixture,
}

async fn world() -> World {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let h = sim.handle();
    let fx = h.seed_standard();
    World { sim, h, fx }
}

impl World {
    fn settings(&self) -> LinearSettings {
        LinearSettings {
            api_url: self.sim.base_url(),
            retry: RetryPolicy {
                initial_backoff_ms: 5,
                max_backoff_ms: 20,
                ..RetryPolicy::default()
            },
            ..LinearSettings::default()
        }
    }

    fn options(&self) -> LinearAdapterOptions {
        LinearAdapterOptions {
            finding_url: FindingUrl::new("https://risk.example.com/findings/{id}").unwrap(),
            revoke_url: format!("{}/oauth/revoke", self.sim.root_url()),
            ..LinearAdapterOptions::default()
        }
    }

    fn adapter_with(&self, credential: Credential) -> LinearAdapter {
        LinearAdapter::new(
            &self.settings(),
            credential,
            TenantId::new("acme").unwrap(),
            self.options(),
        )
        .unwrap()
    }

    fn adapter(&self) -> LinearAdapter {
        self.adapter_with(Credential::api_key(self.fx.keys.full.clone()).unwrap())
    }

    fn user(&self, short: &str) -> String {
        self.fx.user(short).unwrap().id.clone()
    }

    /// An OAuth access token of secops, through the simulator's authorize and token
    /// endpoints.
    async fn oauth_token(&self) -> LinearSecret {
        let o = &self.fx.oauth;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let resp = http
            .get(format!("{}/oauth/authorize", self.sim.root_url()))
            .query(&[
                ("client_id", o.client_id.as_str()),
                ("redirect_uri", o.redirect_uri.as_str()),
                ("response_type", "code"),
                ("scope", "read,write"),
                ("state", "s"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 302);
        let loc = Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
        let code = loc
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned();
        let root = self.sim.root_url();
        let oauth = OAuthClient::with_endpoints(
            &o.client_id,
            LinearSecret::new("client secret", o.client_secret.clone()).unwrap(),
            &format!("{root}/oauth/token"),
            &format!("{root}/oauth/revoke"),
        )
        .unwrap();
        oauth
            .exchange_code(
                &LinearSecret::new("code", code).unwrap(),
                &Url::parse(&o.redirect_uri).unwrap(),
            )
            .await
            .unwrap()
            .access_token
    }
}

fn finding(s: &str) -> FindingId {
    FindingId::new(s).unwrap()
}

fn new_item(state: &str, f: &FindingId) -> NewItem {
    NewItem {
        finding_id: f.clone(),
        destination_id: state.to_owned(),
        title: format!("Fix {f}"),
        body: format!("Remediate.\n\n---\n{}", marker(f)),
        label_ids: vec![],
        member_ids: vec![],
        due: None,
        placement: Placement::Bottom,
        label_names: vec![],
        assignee: None,
        notes: vec![],
        target: TargetState::Open,
        priority: None,
    }
}

fn plain() -> ReadOptions {
    ReadOptions::default()
}

// ---------------------------------------------------------------- conformance

#[tokio::test]
async fn conformance_suite_passes() {
    let w = world().await;
    let a = Arc::new(w.adapter());
    let target = Target {
        items: a.clone(),
        introspection: Some(a.clone()),
        container_id: w.fx.eng.id.clone(),
        destination_id: w.fx.eng.todo.clone(),
        other_destination_id: w.fx.eng.in_progress.clone(),
        done_destination_id: w.fx.eng.done.clone(),
        missing_item_id: ItemId::new(MISSING_ID).unwrap(),
    };
    conformance::run_all(&target).await;
    let caps = webriskops_ports::Tracker::capabilities(a.as_ref());
    assert_eq!(caps.tracker, "linear");
    assert!(!caps.checklists && caps.native_priority && !caps.revoke);
    let s = a.request_stats().unwrap();
    assert!(s.reads > 0 && s.writes > 0, "{s:?}");
    assert_eq!(s.rate_limited, 0);
}

/// A personal API key cannot be revoked through Linear's API: the suite's revoke check
/// takes the tracker's word for it (`NotSupported`, with where to delete the key).
#[tokio::test]
async fn conformance_revoke_says_a_personal_key_cannot_be_revoked() {
    let w = world().await;
    let a = Arc::new(w.adapter());
    let target = Target {
        items: a.clone(),
        introspection: Some(a.clone()),
        container_id: w.fx.eng.id.clone(),
        destination_id: w.fx.eng.todo.clone(),
        other_destination_id: w.fx.eng.in_progress.clone(),
        done_destination_id: w.fx.eng.done.clone(),
        missing_item_id: ItemId::new(MISSING_ID).unwrap(),
    };
    conformance::revoke_ends_access(&target).await;
}

// ---------------------------------------------------------------- create and read back

#[tokio::test]
async fn a_create_reads_back_finding_state_priority_labels_assignee_and_due() {
    let w = world().await;
    let a = w.adapter();
    let f = finding("wro-f-0001");
    let bug = w.fx.eng.labels["Bug"].clone();
    let jdoe = w.user("jdoe");
    let due = NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
    let mut item = new_item(&w.fx.eng.todo, &f);
    item.label_ids = vec![bug.clone(), w.fx.workspace_label_id.clone()];
    // Linear has one assignee: the first member; the second is the service's to route.
    item.member_ids = vec![jdoe.clone(), w.user("secops")];
    item.due = Some(due);
    item.priority = Some(2);

    let created = a.create_item(&item).await.unwrap();
    assert_eq!(
        created.finding_id.as_ref(),
        Some(&f),
        "read from the attachment"
    );

    let read = a.get_item(&created.id, &plain()).await.unwrap();
    for got in [&created, &read] {
        assert_eq!(got.finding_id.as_ref(), Some(&f));
        assert_eq!(got.category, StateCategory::Open);
        assert_eq!(got.state_name, "Todo");
        assert_eq!(got.destination_id, w.fx.eng.todo);
        assert_eq!(got.container_id, w.fx.eng.id);
        let mut labels = got.label_ids.clone();
        labels.sort();
        let mut want = vec![bug.clone(), w.fx.workspace_label_id.clone()];
        want.sort();
        assert_eq!(labels, want);
        assert_eq!(got.member_ids, vec![jdoe.clone()]);
        assert_eq!(got.due, Some(due));
        assert!(got.body.contains(&marker(&f)));
        assert!(got.created_secs > 0);
    }
    let sim = w.h.issue(created.id.as_str()).unwrap();
    assert_eq!(sim.priority, 2, "native priority: p2 is Linear's 2 (High)");
    assert_eq!(sim.assignee_id.as_deref(), Some(jdoe.as_str()));
    assert_eq!(
        sim.attachments
            .iter()
            .map(|x| x.url.as_str())
            .collect::<Vec<_>>(),
        ["https://risk.example.com/findings/wro-f-0001"],
        "the finding's canonical URL, from the configured template"
    );

    // Update: members replace (first = assignee; none unassigns), due cleared, labels
    // replaced.
    let updated = a
        .update_item(
            &created.id,
            &ItemChanges {
                member_ids: Some(vec![]),
                due: Some(None),
                label_ids: Some(vec![bug.clone()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(updated.member_ids.is_empty());
    assert_eq!(updated.due, None);
    assert_eq!(updated.label_ids, vec![bug]);
    assert_eq!(updated.finding_id.as_ref(), Some(&f));
}

#[tokio::test]
async fn checklists_are_not_supported_and_say_where_steps_go() {
    let w = world().await;
    let a = w.adapter();
    let created = a
        .create_item(&new_item(&w.fx.eng.todo, &finding("wro-f-cl")))
        .await
        .unwrap();
    let e = a
        .create_checklist(&created.id, "Remediation")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "not_supported");
    assert!(e.to_string().contains("description"), "{e}");
    let e = a.add_check_item("x", "step", 1).await.unwrap_err();
    assert_eq!(e.kind(), "not_supported");
    let with = a
        .get_item(
            &created.id,
            &ReadOptions {
                with_checklists: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(with.checklists, Some(vec![]));
}

#[tokio::test]
async fn a_label_colour_name_becomes_hex_and_a_bad_one_is_refused() {
    let w = world().await;
    let a = w.adapter();
    let l = a
        .create_label(&NewLabel {
            container_id: w.fx.eng.id.clone(),
            name: "severity:critical".into(),
            color: Some("red".into()),
        })
        .await
        .unwrap();
    assert_eq!(l.color.as_deref(), Some("#eb5757"));
    let labels = a.labels(&w.fx.eng.id).await.unwrap();
    assert!(labels.iter().any(|x| x.id == l.id), "a team label");
    assert!(
        labels.iter().any(|x| x.id == w.fx.workspace_label_id),
        "workspace labels are the team's too"
    );
    let e = a
        .create_label(&NewLabel {
            container_id: w.fx.eng.id.clone(),
            name: "x".into(),
            color: Some("mauve".into()),
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "invalid_input", "{e}");
}

// ---------------------------------------------------------------- states people choose

#[tokio::test]
async fn states_a_person_chooses_read_as_their_category() {
    let w = world().await;
    let a = w.adapter();
    let f = finding("wro-f-person");
    let created = a.create_item(&new_item(&w.fx.eng.todo, &f)).await.unwrap();
    let id = created.id.as_str().to_owned();
    for (state, category, name) in [
        (&w.fx.eng.canceled, StateCategory::Canceled, "Canceled"),
        (&w.fx.eng.duplicate, StateCategory::Canceled, "Duplicate"),
        (&w.fx.eng.done, StateCategory::Done, "Done"),
        (&w.fx.eng.in_progress, StateCategory::Started, "In Progress"),
        (&w.fx.eng.backlog, StateCategory::Open, "Backlog"),
    ] {
        w.h.person_move_issue(&id, state);
        let read = a.get_item(&created.id, &plain()).await.unwrap();
        assert_eq!(read.category, category, "moved to {name}");
        assert_eq!(read.state_name, name);
        let found = a
            .find_by_finding(&w.fx.eng.id, &f, &plain())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.category, category, "find_by_finding, moved to {name}");
        let listed = webriskops_ports::list_all_items(
            &a,
            &webriskops_ports::ListItemsOptions {
                container_id: w.fx.eng.id.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let listed = listed.iter().find(|i| i.id == created.id).unwrap();
        assert_eq!(listed.category, category, "listed, moved to {name}");
    }
    let dests = a.destinations(&w.fx.eng.id).await.unwrap();
    let cat = |id: &str| dests.iter().find(|d| d.id == id).unwrap().category;
    assert_eq!(cat(&w.fx.eng.duplicate), StateCategory::Canceled);
    assert_eq!(cat(&w.fx.eng.done), StateCategory::Done);
    assert!(
        dests
            .iter()
            .any(|d| d.id == w.fx.eng.archived_state && d.closed),
        "an archived state is listed as closed"
    );
}

// ---------------------------------------------------------------- identity and requests

#[tokio::test]
async fn a_lost_create_answer_is_outcome_unknown_found_once_and_a_resend_collides() {
    let w = world().await;
    let a = w.adapter();
    a.destinations(&w.fx.eng.id).await.unwrap();
    let f = finding("wro-f-lost");
    w.h.inject(FaultRule::graphql(
        "issueCreate",
        1,
        Fault::DropConnection { after_apply: true },
    ));
    let before = w.h.request_count();
    let e = a
        .create_item(&new_item(&w.fx.eng.todo, &f))
        .await
        .unwrap_err();
    assert!(
        matches!(e, PortError::OutcomeUnknown { .. }),
        "a lost create answer is OutcomeUnknown, got {e:?}"
    );
    assert_eq!(
        w.h.request_count() - before,
        1,
        "a create whose answer was lost is never resent"
    );
    assert_eq!(w.h.issues(&w.fx.eng.id).len(), 1, "it was applied once");

    let before = w.h.request_count();
    let found = a
        .find_by_finding(&w.fx.eng.id, &f, &plain())
        .await
        .unwrap()
        .expect("find_by_finding finds the issue of the lost create");
    assert_eq!(w.h.request_count() - before, 1, "the lookup is one request");
    assert_eq!(found.finding_id.as_ref(), Some(&f));
    assert_eq!(found.id.as_str(), w.h.issues(&w.fx.eng.id)[0].id);

    // A caller that resends anyway: the client id collides, nothing new is made.
    let again = a.create_item(&new_item(&w.fx.eng.todo, &f)).await;
    assert!(again.is_err(), "a resent create must collide: {again:?}");
    assert_eq!(w.h.issues(&w.fx.eng.id).len(), 1, "still one issue");
    // A finding on another team is another issue (the lookup is per team).
    assert_eq!(
        a.find_by_finding(&w.fx.ops.id, &f, &plain()).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn an_issue_whose_attachment_failed_is_found_by_its_client_id() {
    let w = world().await;
    let a = w.adapter();
    let f = finding("wro-f-half");
    // The document's second mutation (the attachment) fails after the first made the
    // issue with the finding's client id: an unusable URL stands in for any failure.
    let half = NewIssue {
        team_id: w.fx.eng.id.clone(),
        title: "Half made".into(),
        description: marker(&f),
        priority: None,
        state_id: Some(w.fx.eng.todo.clone()),
        label_ids: vec![],
        assignee_id: None,
        due_date: None,
        finding_url: "not a url".into(),
        attachment_title: "x".into(),
        attachment_subtitle: None,
    };
    let e = a
        .client()
        .create_issue_with_attachment(&TenantId::new("acme").unwrap(), &f, &half)
        .await
        .unwrap_err();
    assert!(e.may_have_applied(), "{e:?}");
    let issues = w.h.issues(&w.fx.eng.id);
    assert_eq!(issues.len(), 1, "the issue was made");
    assert!(issues[0].attachments.is_empty(), "without its attachment");

    let before = w.h.request_count();
    let found = a
        .find_by_finding(&w.fx.eng.id, &f, &plain())
        .await
        .unwrap()
        .expect("found by the finding's client id");
    assert_eq!(w.h.request_count() - before, 1, "still one request");
    assert_eq!(found.id.as_str(), issues[0].id);
    assert_eq!(found.finding_id.as_ref(), Some(&f));
    // Another tenant's client id for the same finding is another issue: not this one.
    let other = LinearAdapter::new(
        &w.settings(),
        Credential::api_key(w.fx.keys.full.clone()).unwrap(),
        TenantId::new("globex").unwrap(),
        w.options(),
    )
    .unwrap();
    assert_eq!(
        other
            .find_by_finding(&w.fx.eng.id, &f, &plain())
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn one_request_per_new_issue() {
    let w = world().await;
    let a = w.adapter();
    // Cold: the state's team is asked once, then known.
    let before = w.h.request_count();
    for i in 0..3 {
        a.create_item(&new_item(&w.fx.eng.todo, &finding(&format!("cold-{i}"))))
            .await
            .unwrap();
    }
    assert_eq!(w.h.request_count() - before, 4, "3 issues + 1 state lookup");
    // Warm (the team's states read, as setup and export do): one request each.
    let b = w.adapter();
    b.destinations(&w.fx.eng.id).await.unwrap();
    let before = w.h.request_count();
    for i in 0..5 {
        let mut item = new_item(&w.fx.eng.in_progress, &finding(&format!("warm-{i}")));
        item.label_ids = vec![w.fx.eng.labels["security"].clone()];
        item.member_ids = vec![w.user("jdoe")];
        item.priority = Some(1);
        item.due = NaiveDate::from_ymd_opt(2027, 1, 1);
        b.create_item(&item).await.unwrap();
    }
    assert_eq!(w.h.request_count() - before, 5, "one request per new issue");
}

// ---------------------------------------------------------------- introspection, revoke

#[tokio::test]
async fn introspection_speaks_of_teams_states_and_users() {
    let w = world().await;
    let a = w.adapter();
    let me = a.whoami().await.unwrap();
    assert_eq!(me.id, w.user("secops"));
    let t = a.token_info().await.unwrap();
    assert_eq!(t.member_id.as_deref(), Some(me.id.as_str()));
    assert_eq!(t.expires_at, None, "a personal API key does not expire");
    let teams = a.containers().await.unwrap();
    assert!(teams
        .iter()
        .all(|c| c.organization_id.as_deref() == Some(w.fx.organization_id.as_str())));
    assert!(teams.iter().any(|c| c.id == w.fx.ops.id));
    let d = a.destination(&w.fx.eng.done).await.unwrap();
    assert_eq!(
        (d.container_id.as_str(), d.category),
        (w.fx.eng.id.as_str(), StateCategory::Done)
    );
    let members = a.members(&w.fx.eng.id).await.unwrap();
    let jdoe = w.fx.user("jdoe").unwrap();
    let m = members.iter().find(|m| m.id == jdoe.id).unwrap();
    assert_eq!(m.email.as_deref(), Some(jdoe.email.as_str()));
    assert!(!m.username.is_empty());
    let e = a.container(MISSING_ID).await.unwrap_err();
    assert!(
        matches!(
            e,
            PortError::NotFound { .. } | PortError::PermissionDenied { .. }
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn an_api_key_cannot_be_revoked_through_the_api_and_says_where_to_delete_it() {
    let w = world().await;
    let a = w.adapter();
    assert!(!webriskops_ports::Tracker::capabilities(&a).revoke);
    let e = a.revoke_token().await.unwrap_err();
    assert_eq!(e.kind(), "not_supported");
    assert!(
        e.to_string().contains("Settings › Security & access"),
        "{e}"
    );
    assert!(!e.to_string().contains(&w.fx.keys.full));
    a.whoami().await.expect("the key still works");
}

#[tokio::test]
async fn an_oauth_token_is_revoked_and_then_refused() {
    let w = world().await;
    let token = w.oauth_token().await;
    let raw = token.expose().to_owned();
    let a = w.adapter_with(Credential::OAuth(token));
    assert!(webriskops_ports::Tracker::capabilities(&a).revoke);
    a.whoami().await.unwrap();
    a.revoke_token().await.unwrap();
    assert!(w.h.token_revoked(&raw));
    let e = a.whoami().await.unwrap_err();
    assert_eq!(e.kind(), "unauthenticated", "{e:?}");
    assert!(!e.to_string().contains(&raw));
}

/// An unreachable Linear: the error names the adapter and the operation once, and keeps
/// the client's own error (without its URL) as its source.
#[tokio::test]
async fn an_unreachable_linear_error_names_the_operation_and_keeps_the_client_error() {
    let w = world().await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut settings = w.settings();
    settings.api_url = format!("http://127.0.0.1:{port}/graphql");
    settings.retry.max_retries = 0;
    let a = LinearAdapter::new(
        &settings,
        Credential::api_key(w.fx.keys.full.clone()).unwrap(),
        TenantId::new("acme").unwrap(),
        w.options(),
    )
    .unwrap();
    let e = a.whoami().await.unwrap_err();
    assert!(matches!(e, PortError::Unavailable { .. }), "{e:?}");
    assert_eq!(
        (e.tracker(), e.operation()),
        (Some("linear"), Some("whoami"))
    );
    assert!(
        e.to_string()
            .starts_with("linear whoami: tracker unavailable: "),
        "{e}"
    );
    assert_eq!(e.to_string().matches("linear whoami: ").count(), 1, "{e}");
    let mut chain = Vec::new();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        chain.push(s.to_string());
        source = s.source();
    }
    assert!(
        !chain.is_empty(),
        "the client error is kept as the source: {e:?}"
    );
    let chain = chain.join(": ");
    assert!(!chain.contains("127.0.0.1"), "{chain}");
}
