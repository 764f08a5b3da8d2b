//! The export's guarantees for Linear, over real HTTP against linear-sim, with the real
//! Linear adapter, service and SQLite store: what `guarantees.rs` proves for Trello.

use std::sync::Arc;

use linear_sim::{Fault, FaultRule, Fixture, SimConfig, SimHandle, SimServer};
use webriskops_domain::{
    Finding, FindingId, ProviderKey, ProviderRecord, Severity, StatusEvent, TenantId,
};
use webriskops_e2e::{write_findings, FileSource};
use webriskops_linear::{
    Credential, FindingUrl, LinearAdapter, LinearAdapterOptions, LinearSettings, RateLimits,
    RetryPolicy,
};
use webriskops_service::{
    export, sync, ExportOptions, ExportPorts, ExportSummary, ExportTarget, Silent,
};
use webriskops_store_sqlite::{SqliteStore, StoreOptions};

const FINDING_URL: &str = "https://risk.example.com/findings/{id}";

struct World {
    server: SimServer,
    sim: SimHandle,
    fx: Fixture,
    dir: tempfile::TempDir,
}

impl World {
    /// linear-sim with Linear's budgets in a period scaled from one hour to 36 s (the
    /// adapter's buckets scaled alike), so a RATELIMITED answer costs a short wait.
    async fn start() -> World {
        let server = SimServer::start(SimConfig {
            period: std::time::Duration::from_secs(36),
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let sim = server.handle();
        let fx = sim.seed_standard();
        World {
            server,
            sim,
            fx,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn adapter(&self) -> Arc<LinearAdapter> {
        let settings = LinearSettings {
            api_url: self.server.base_url(),
            retry: RetryPolicy {
                initial_backoff_ms: 5,
                max_backoff_ms: 40,
                ..RetryPolicy::default()
            },
            limits: RateLimits {
                period_ms: 36_000,
                ..RateLimits::default()
            },
            ..LinearSettings::default()
        };
        let options = LinearAdapterOptions {
            finding_url: FindingUrl::new(FINDING_URL).unwrap(),
            ..LinearAdapterOptions::default()
        };
        Arc::new(
            LinearAdapter::new(
                &settings,
                Credential::api_key(self.fx.keys.full.clone()).unwrap(),
                TenantId::new("acme").unwrap(),
                options,
            )
            .unwrap(),
        )
    }

    fn store(&self) -> SqliteStore {
        SqliteStore::open(&self.dir.path().join("data"), StoreOptions::default()).unwrap()
    }

    fn record(&self) -> ProviderRecord {
        let mut r = ProviderRecord::new_trello(TenantId::new("acme").unwrap());
        r.provider_key = ProviderKey::LinearCloud;
        r.board_id = Some(self.fx.eng.id.clone());
        r.list_id = Some(self.fx.eng.todo.clone());
        r.done_list_id = Some(self.fx.eng.done.clone());
        r.workspace_id = Some(self.fx.organization_id.clone());
        r.revoke_path_confirmed = true;
        r
    }

    async fn export(&self, source: &FileSource) -> ExportSummary {
        let adapter = self.adapter();
        let store = self.store();
        let ports = ExportPorts {
            items: adapter.clone(),
            introspection: Some(adapter),
            ledger: Arc::new(store.clone()),
            journal: Arc::new(store),
        };
        let record = self.record();
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

    async fn sync(&self) -> Vec<StatusEvent> {
        let adapter = self.adapter();
        let store = self.store();
        let record = self.record();
        let mut events = Vec::new();
        sync(
            adapter.as_ref(),
            &store,
            &record,
            &ExportTarget::from_record(&record).unwrap(),
            chrono::Utc::now(),
            &mut |e| {
                events.push(e.clone());
                Ok(())
            },
        )
        .await
        .expect("sync runs");
        events
    }

    fn findings(&self, n: usize) -> FileSource {
        let findings: Vec<Finding> = (0..n)
            .map(|i| {
                let mut f = Finding::minimal(
                    FindingId::new(format!("lin-{i:03}")).unwrap(),
                    format!("Linear finding {i}"),
                    Severity::High,
                );
                f.remediation_steps = vec!["Patch the server".into(), "Rotate the keys".into()];
                f
            })
            .collect();
        write_findings(&self.dir.path().join("findings.jsonl"), &findings)
    }

    /// Issues of the ENG team per finding, from their attachments (archived included).
    fn issues_per_finding(&self) -> std::collections::BTreeMap<String, usize> {
        let prefix = FINDING_URL.trim_end_matches("{id}");
        let mut m = std::collections::BTreeMap::new();
        for issue in self.sim.issues(&self.fx.eng.id) {
            for a in &issue.attachments {
                if let Some(id) = a.url.strip_prefix(prefix) {
                    *m.entry(id.to_owned()).or_insert(0) += 1;
                }
            }
        }
        m
    }

    /// Mutations Linear received (issue and attachment writes).
    fn mutations(&self) -> usize {
        self.sim
            .request_log()
            .iter()
            .filter(|r| {
                r.root_fields.iter().any(|f| {
                    f.starts_with("issueCreate")
                        || f.starts_with("issueUpdate")
                        || f.starts_with("issueArchive")
                        || f.starts_with("attachment") && !f.starts_with("attachmentsForURL")
                        || f.starts_with("issueLabelCreate")
                })
            })
            .count()
    }
}

fn one_each(w: &World, n: usize) {
    let per = w.issues_per_finding();
    assert_eq!(per.len(), n, "every finding has an issue: {per:?}");
    assert!(per.values().all(|c| *c == 1), "duplicates: {per:?}");
}

#[tokio::test]
async fn an_export_makes_one_issue_per_finding_with_its_steps_and_a_rerun_writes_nothing() {
    let w = World::start().await;
    let source = w.findings(8);
    let s = w.export(&source).await;
    assert_eq!(s.created, 8, "{s:#?}");
    assert!(s.failed.is_empty(), "{s:#?}");
    one_each(&w, 8);
    let issue = &w.sim.issues(&w.fx.eng.id)[0];
    let body = issue.description.as_deref().unwrap_or_default();
    assert!(
        body.contains("Patch the server") && body.contains("Rotate the keys"),
        "the steps travel in the description: {body}"
    );
    assert_eq!(issue.priority, 2, "high severity is Linear's High");

    w.sim.clear_request_log();
    let again = w.export(&source).await;
    assert_eq!((again.created, again.updated), (0, 0), "{again:#?}");
    assert_eq!(w.mutations(), 0, "an unchanged re-export sends no mutation");
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_found_not_duplicated() {
    let w = World::start().await;
    let source = w.findings(5);
    w.sim.inject(FaultRule::graphql(
        "issueCreate",
        2,
        Fault::DropConnection { after_apply: true },
    ));
    let first = w.export(&source).await;
    assert!(w.sim.pending_faults().is_empty(), "both answers were lost");
    assert!(
        first.created + first.failed.len() as u64 >= 5,
        "every finding was tried: {first:#?}"
    );
    let second = w.export(&source).await;
    assert!(second.failed.is_empty(), "{second:#?}");
    one_each(&w, 5);
}

#[tokio::test]
async fn a_lost_database_adopts_every_issue_by_its_url() {
    let w = World::start().await;
    let source = w.findings(6);
    w.export(&source).await;
    std::fs::remove_dir_all(w.dir.path().join("data")).unwrap();
    let after = w.export(&source).await;
    assert_eq!(after.created, 0, "nothing created again: {after:#?}");
    one_each(&w, 6);
    w.sim.clear_request_log();
    w.export(&source).await;
    assert_eq!(
        w.mutations(),
        0,
        "the ledger is rebuilt: the next run writes nothing"
    );
}

#[tokio::test]
async fn a_ratelimited_and_5xx_storm_still_gives_one_issue_per_finding() {
    let w = World::start().await;
    let source = w.findings(6);
    w.sim
        .inject(FaultRule::graphql("issueCreate", 3, Fault::RateLimited));
    w.sim
        .inject(FaultRule::graphql("issueCreate", 2, Fault::Status(502)));
    w.sim
        .inject(FaultRule::graphql("issues", 2, Fault::Status(503)));
    let first = w.export(&source).await;
    assert!(
        w.sim.pending_faults().is_empty(),
        "every injected fault was met: {:?}",
        w.sim.pending_faults()
    );
    let second = w.export(&source).await;
    assert!(second.failed.is_empty(), "{first:#?}\n{second:#?}");
    one_each(&w, 6);
}

#[tokio::test]
async fn a_persons_cancel_is_reported_once_and_their_edits_are_kept() {
    let w = World::start().await;
    let source = w.findings(3);
    w.export(&source).await;
    assert!(w.sync().await.is_empty(), "nothing changed yet");
    let issues = w.sim.issues(&w.fx.eng.id);
    let canceled = &issues[0];
    w.sim.person_move_issue(&canceled.id, &w.fx.eng.canceled);
    let label = w.fx.eng.labels.values().next().unwrap().clone();
    w.sim.person_add_label(&issues[1].id, &label);

    let events = w.sync().await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(e["tracker"], "linear");
    assert_eq!(e["tracker_status"], "canceled");
    assert!(w.sync().await.is_empty(), "each change is reported once");

    w.sim.clear_request_log();
    w.export(&source).await;
    assert_eq!(
        w.mutations(),
        0,
        "a person's cancel and label are not fought"
    );
    let now = w.sim.issue(&canceled.id).unwrap();
    assert_eq!(now.state_type, "canceled");
    assert!(w
        .sim
        .issue(&issues[1].id)
        .unwrap()
        .label_ids
        .contains(&label));
}
