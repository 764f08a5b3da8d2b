//! Assignees and routed fields for Linear, over real HTTP against linear-sim with the real
//! Linear adapter, service and SQLite store: an issue has one assignee and no notes, so a
//! non-member assignee is routed into the description, and an assignee a person set is
//! kept.

use std::sync::Arc;

use linear_sim::{Fixture, SimConfig, SimHandle, SimServer};
use webriskops_domain::{Finding, FindingId, ProviderKey, ProviderRecord, Severity, TenantId};
use webriskops_e2e::{write_findings, FileSource};
use webriskops_linear::{
    Credential, FindingUrl, LinearAdapter, LinearAdapterOptions, LinearSettings, RetryPolicy,
};
use webriskops_service::{export, ExportOptions, ExportPorts, ExportSummary, ExportTarget, Silent};
use webriskops_store_sqlite::{SqliteStore, StoreOptions};

struct World {
    server: SimServer,
    sim: SimHandle,
    fx: Fixture,
    dir: tempfile::TempDir,
}

impl World {
    async fn start() -> World {
        let server = SimServer::start(SimConfig::default()).await.unwrap();
        let sim = server.handle();
        let fx = sim.seed_standard();
        World {
            server,
            sim,
            fx,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    async fn export(&self, source: &FileSource) -> ExportSummary {
        let adapter = Arc::new(
            LinearAdapter::new(
                &LinearSettings {
                    api_url: self.server.base_url(),
                    retry: RetryPolicy {
                        initial_backoff_ms: 5,
                        max_backoff_ms: 40,
                        ..RetryPolicy::default()
                    },
                    ..LinearSettings::default()
                },
                Credential::api_key(self.fx.keys.full.clone()).unwrap(),
                TenantId::new("acme").unwrap(),
                LinearAdapterOptions {
                    finding_url: FindingUrl::new("https://risk.example.com/findings/{id}").unwrap(),
                    ..LinearAdapterOptions::default()
                },
            )
            .unwrap(),
        );
        let store =
            SqliteStore::open(&self.dir.path().join("data"), StoreOptions::default()).unwrap();
        let ports = ExportPorts {
            items: adapter.clone(),
            introspection: Some(adapter),
            ledger: Arc::new(store.clone()),
            journal: Arc::new(store),
        };
        let mut record = ProviderRecord::new_trello(TenantId::new("acme").unwrap());
        record.provider_key = ProviderKey::LinearCloud;
        record.board_id = Some(self.fx.eng.id.clone());
        record.list_id = Some(self.fx.eng.todo.clone());
        record.done_list_id = Some(self.fx.eng.done.clone());
        record.workspace_id = Some(self.fx.organization_id.clone());
        record.revoke_path_confirmed = true;
        export(
            &ports,
            &record,
            &ExportTarget::from_record(&record).unwrap(),
            source,
            &ExportOptions::default(),
            &Silent,
        )
        .await
        .expect("export runs")
    }

    fn source(&self, id: &str, assignee: &str) -> FileSource {
        let mut f = Finding::minimal(FindingId::new(id).unwrap(), "Assign me", Severity::High);
        f.assignee = Some(assignee.into());
        f.remediation_steps = vec!["Patch the server".into()];
        write_findings(&self.dir.path().join(format!("{id}.jsonl")), &[f])
    }

    /// Mutations Linear received (issue, label and attachment writes).
    fn mutations(&self) -> usize {
        self.sim
            .request_log()
            .iter()
            .filter(|r| {
                r.root_fields.iter().any(|f| {
                    [
                        "issueCreate",
                        "issueUpdate",
                        "issueArchive",
                        "issueLabelCreate",
                    ]
                    .iter()
                    .any(|m| f.starts_with(m))
                        || f.starts_with("attachment") && !f.starts_with("attachmentsForURL")
                })
            })
            .count()
    }
}

#[tokio::test]
async fn a_non_member_assignee_is_routed_into_the_issue_description() {
    let w = World::start().await;
    let source = w.source("lin-ghost", "ghost@example.com");
    let s = w.export(&source).await;
    assert_eq!(s.created, 1, "{s:#?}");
    assert_eq!(
        s.routed["lin-ghost"]["assignee"],
        "description:Assign to: ghost@example.com (not a member of the team)"
    );
    let issue = w.sim.issues(&w.fx.eng.id).remove(0);
    assert_eq!(issue.assignee_id, None);
    let body = issue.description.unwrap_or_default();
    let line = body
        .find("**Assign to:** ghost@example.com (not a member of the team)")
        .unwrap_or_else(|| panic!("the routed assignee is in the description: {body}"));
    assert!(line < body.find("[webriskops:finding:lin-ghost]").unwrap());

    // The description is the plan: a re-run writes nothing.
    let before = w.mutations();
    let again = w.export(&source).await;
    assert_eq!(again.unchanged, 1, "{again:#?}");
    assert_eq!(w.mutations(), before);
}

#[tokio::test]
async fn the_assignee_a_person_set_in_linear_is_kept() {
    let w = World::start().await;
    let source = w.source("lin-jdoe", "jdoe@acme.test");
    let s = w.export(&source).await;
    assert_eq!(s.created, 1, "{s:#?}");
    let jdoe = w.fx.user("jdoe").unwrap().id.clone();
    let asmith = w.fx.user("asmith").unwrap().id.clone();
    let issue = w.sim.issues(&w.fx.eng.id).remove(0);
    assert_eq!(issue.assignee_id.as_deref(), Some(jdoe.as_str()));

    // A person reassigns the issue in Linear.
    w.sim.person_set_assignee(&issue.id, Some(&asmith));
    let s = w.export(&source).await;
    assert_eq!(
        s.routed["lin-jdoe"]["assignee"],
        "description:Assign to: jdoe@acme.test (already assigned by a person, who is kept)",
        "{s:#?}"
    );
    let issue = w.sim.issue(&issue.id).unwrap();
    assert_eq!(issue.assignee_id.as_deref(), Some(asmith.as_str()));
    assert!(issue
        .description
        .unwrap_or_default()
        .contains("**Assign to:** jdoe@acme.test (already assigned by a person, who is kept)"));

    // Settled: a re-run writes nothing and the person's choice stays.
    let before = w.mutations();
    w.export(&source).await;
    assert_eq!(w.mutations(), before);
    let issue = w.sim.issue(&issue.id).unwrap();
    assert_eq!(issue.assignee_id.as_deref(), Some(asmith.as_str()));
}
