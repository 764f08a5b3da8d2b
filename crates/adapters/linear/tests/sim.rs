//! The operations against linear-sim (a local Linear GraphQL simulator validating every
//! document against the same schema): the create-with-attachment document in one
//! request, read back by attachment URL; a lost create answer recovered by lookup.

use linear_sim::{Fault, FaultRule, SimConfig, SimServer};
use webriskops_domain::{FindingId, TenantId};
use webriskops_linear::{
    issue_client_id, Credential, LinearClient, LinearSettings, NewIssue, RetryPolicy,
};

fn settings(url: &str) -> LinearSettings {
    LinearSettings {
        api_url: url.to_owned(),
        retry: RetryPolicy {
            initial_backoff_ms: 5,
            max_backoff_ms: 20,
            ..RetryPolicy::default()
        },
        ..LinearSettings::default()
    }
}

fn new_issue(team: &str, finding: &str) -> NewIssue {
    NewIssue {
        team_id: team.to_owned(),
        title: format!("Finding {finding}"),
        description: "- [ ] fix it".into(),
        priority: Some(2),
        state_id: None,
        label_ids: vec![],
        assignee_id: None,
        due_date: Some("2026-12-31".into()),
        finding_url: format!("https://findings.example/{finding}"),
        attachment_title: format!("WebRiskOps finding {finding}"),
        attachment_subtitle: None,
    }
}

#[tokio::test]
async fn create_with_attachment_is_one_request_and_reads_back_by_url() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let fx = sim.handle().seed_standard();
    let c = LinearClient::new(
        &settings(&sim.base_url()),
        &Credential::api_key(fx.keys.full.clone()).unwrap(),
    )
    .unwrap();
    let tenant = TenantId::new("acme").unwrap();
    let finding = FindingId::new("F-1").unwrap();

    let (_viewer, _org) = c.viewer().await.unwrap();
    let teams = c.teams().await.unwrap();
    assert!(teams.iter().any(|t| t.id == fx.eng.id));
    let states = c.team_states(&fx.eng.id).await.unwrap();
    assert!(states.iter().any(|s| s.kind == "completed"));
    c.labels(&fx.eng.id).await.unwrap();
    c.users().await.unwrap();

    let before = sim.handle().request_count();
    let issue = c
        .create_issue_with_attachment(&tenant, &finding, &new_issue(&fx.eng.id, "F-1"))
        .await
        .unwrap();
    assert_eq!(
        sim.handle().request_count() - before,
        1,
        "one request per new issue"
    );
    assert_eq!(issue.id, issue_client_id(&tenant, &fx.eng.id, &finding));
    assert_eq!(issue.priority, 2.0);

    let found = c
        .issues_by_attachment_url("https://findings.example/F-1")
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, issue.id);
    assert!(found[0]
        .attachments
        .nodes
        .iter()
        .any(|a| a.url == "https://findings.example/F-1"));
    let listed = c.team_issues(&fx.eng.id, Default::default()).await.unwrap();
    assert!(listed.iter().any(|i| i.id == issue.id));
    assert_eq!(c.issue(&issue.id).await.unwrap().unwrap().id, issue.id);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_create_whose_answer_is_lost_is_found_by_its_url_not_duplicated() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let fx = sim.handle().seed_standard();
    let c = LinearClient::new(
        &settings(&sim.base_url()),
        &Credential::api_key(fx.keys.full.clone()).unwrap(),
    )
    .unwrap();
    let tenant = TenantId::new("acme").unwrap();
    let finding = FindingId::new("F-2").unwrap();
    sim.handle().inject(FaultRule::graphql(
        "IssueCreateWithAttachment",
        1,
        Fault::DropConnection { after_apply: true },
    ));
    let e = c
        .create_issue_with_attachment(&tenant, &finding, &new_issue(&fx.eng.id, "F-2"))
        .await
        .unwrap_err();
    assert!(e.may_have_applied(), "{e:?}");
    let found = c
        .issues_by_attachment_url("https://findings.example/F-2")
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "the create happened once and is found");
    assert_eq!(found[0].id, issue_client_id(&tenant, &fx.eng.id, &finding));
    assert_eq!(sim.handle().issues(&fx.eng.id).len(), 1);

    // Sent again anyway (a caller that did not reconcile): the client id collides.
    let again = c
        .create_issue_with_attachment(&tenant, &finding, &new_issue(&fx.eng.id, "F-2"))
        .await;
    assert!(
        again.is_err(),
        "the same client id cannot make a second issue"
    );
    assert_eq!(sim.handle().issues(&fx.eng.id).len(), 1, "still one issue");
    sim.shutdown().await;
}
