//! Each use case end to end through `ServicePorts`, against the fake tracker and the
//! in-memory store: what a front end gets back, and what ends up stored and journaled.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::Utc;
use common::{finding, sample, VecSource};
use webriskops_domain::{
    BlockedCode, CredentialRef, ItemId, ProviderKey, ProviderRecord, StatusEvent, TenantId, Token,
    TrackerStatus,
};
use webriskops_fake::{FakeTracker, FakeWorld, Fault, MemoryStore};
use webriskops_portable::{
    FallbackCause as BundleCause, PortableBundle, PortableExport, PortableOptions, RecordSummary,
};
use webriskops_ports::{
    EventChange, EventLog, FindingSource, FindingStream, ItemChanges, PortError, PortResult,
    ProviderStore, RunJournal, RunKind, SecretStore, WorkItems,
};
use webriskops_service::revoke::run as revoke_run;
use webriskops_service::setup::apply_choices;
use webriskops_service::status::gather;
use webriskops_service::sync::run as sync_run;
use webriskops_service::{
    apply_and_check, run_export, secret_binding, CompanionSecret, ExportDestination, ExportOutcome,
    ExportRequest, ExportResult, ExportVerdict, FallbackCause, FallbackPolicy, FallbackTrigger,
    PortableSpec, PortableWriter, RecordState, RevokeReport, RevokeRequest, ServiceError,
    ServicePorts, SetupChoices, SetupCredentials, SetupRequest, Silent, StatusRequest, SyncOutcome,
    SyncRequest, Tenancy, Tracker,
};
use webriskops_store_sqlite::{SqliteStore, StoreOptions};

/// The real bundle writer, as the app composes it.
struct Bundle {
    opened: AtomicUsize,
}

impl Bundle {
    fn new() -> Self {
        Self {
            opened: AtomicUsize::new(0),
        }
    }
}

impl PortableWriter for Bundle {
    fn open(&self, spec: &PortableSpec) -> Result<Arc<dyn WorkItems>, ServiceError> {
        self.opened.fetch_add(1, Ordering::SeqCst);
        let fallback = match &spec.cause {
            FallbackCause::Requested => BundleCause::Requested,
            FallbackCause::Blocked(r) => BundleCause::Blocked(r.clone()),
        };
        let bundle = PortableExport::new(PortableOptions {
            out_dir: spec.out_dir.clone(),
            source_checksum: spec.source_checksum.clone(),
            record_summary: Some(RecordSummary::from(&spec.record)),
            fallback,
            created_at: spec.created_at,
            ..PortableOptions::default()
        })
        .map_err(|e| ServiceError::Input(format!("cannot write the portable bundle: {e}")))?;
        Ok(Arc::new(bundle))
    }
}

/// Findings with the checksum a findings file has (the bundle records it).
#[derive(Debug)]
struct Checksummed(VecSource);

impl FindingSource for Checksummed {
    fn open(&self) -> PortResult<FindingStream> {
        self.0.open()
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn checksum(&self) -> Option<String> {
        Some("ab".repeat(32))
    }
}

fn tenancy() -> Tenancy {
    Tenancy {
        tenant: TenantId::new("acme").unwrap(),
        provider: ProviderKey::TrelloCloud,
    }
}

/// A fake world, a store, and the record a finished setup would have saved.
struct World {
    fake: FakeWorld,
    store: Arc<MemoryStore>,
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> Self {
        Self {
            fake: FakeTracker::standard(),
            store: Arc::new(MemoryStore::new()),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn complete_record(&self) -> ProviderRecord {
        let mut r = tenancy().blank_record();
        r.board_id = Some(self.fake.board_id.clone());
        r.list_id = Some(self.fake.list_id.clone());
        r.done_list_id = Some(self.fake.done_list_id.clone());
        r.revoke_path_confirmed = true;
        r.credential = Some(CredentialRef::for_provider(&r.tenant, r.provider_key));
        r
    }

    async fn save(&self, record: &ProviderRecord) {
        self.store.save(record).await.unwrap();
    }

    fn tracker(&self) -> Tracker {
        Tracker::new(Arc::new(self.fake.tracker.clone()))
    }

    fn ports(&self, tracker: Option<Tracker>) -> ServicePorts {
        ServicePorts::from_store(self.store.clone()).with_tracker(tracker)
    }

    fn bundle_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("bundle")
    }

    fn export_request(&self, fallback: FallbackPolicy) -> ExportRequest {
        ExportRequest {
            tenancy: tenancy(),
            fallback,
            out_dir: self.bundle_dir(),
            dry_run: false,
            concurrency: 4,
        }
    }

    async fn export(
        &self,
        tracker: Option<Tracker>,
        bundle: &Bundle,
        source: &VecSource,
        fallback: FallbackPolicy,
    ) -> ExportOutcome {
        run_export(
            &self.ports(tracker),
            bundle,
            &Checksummed(source.clone()),
            &self.export_request(fallback),
            &Silent,
            Utc::now(),
        )
        .await
        .unwrap()
    }
}

fn codes(outcome: &ExportOutcome) -> Vec<BlockedCode> {
    match &outcome.result {
        ExportResult::Blocked { readiness } => readiness.codes(),
        ExportResult::Exported { .. } => outcome
            .fallback()
            .map(|c| c.reasons().iter().map(|b| b.code).collect())
            .unwrap_or_default(),
    }
}

// ---------------------------------------------------------------- export

#[tokio::test]
async fn a_ready_export_goes_to_the_tracker_and_reports_the_trackers_own_request_counts() {
    let w = World::new();
    w.save(&w.complete_record()).await;
    // The adapter's view of requests (here: every call the fake received, and none
    // refused) replaces the service's own count, which misses the readiness check.
    let tracker = w.tracker();
    let bundle = Bundle::new();
    let source = VecSource::new(sample());
    let outcome = w
        .export(Some(tracker), &bundle, &source, FallbackPolicy::Auto)
        .await;
    assert_eq!(outcome.verdict(), ExportVerdict::Complete);
    assert_eq!(outcome.record_state, RecordState::Saved);
    let ExportResult::Exported {
        summary,
        destination,
    } = &outcome.result
    else {
        panic!("a ready setup exports: {outcome:?}");
    };
    assert_eq!(*destination, ExportDestination::Tracker);
    assert!(summary.created > 0);
    assert_eq!(
        w.fake.tracker.items(&w.fake.board_id).len() as u64,
        summary.created
    );
    let writes = w.fake.tracker.write_count() as u64;
    assert_eq!(
        summary.requests.reads,
        w.fake.tracker.calls().len() as u64 - writes,
        "every call that did not write, the readiness check's included"
    );
    assert_eq!(summary.requests.writes, writes);
    assert_eq!(bundle.opened.load(Ordering::SeqCst), 0, "no bundle opened");
    let run = w
        .store
        .last_run(&tenancy().tenant, tenancy().provider, RunKind::Export)
        .await
        .unwrap()
        .expect("the export is journaled");
    assert!(run.finished_at.is_some());
}

#[tokio::test]
async fn fallback_always_writes_the_bundle_without_asking_the_tracker() {
    let w = World::new();
    w.save(&w.complete_record()).await;
    let bundle = Bundle::new();
    let source = VecSource::new(sample());
    let outcome = w
        .export(Some(w.tracker()), &bundle, &source, FallbackPolicy::Always)
        .await;
    assert!(
        w.fake.tracker.calls().is_empty(),
        "the tracker was asked: {:?}",
        w.fake.tracker.calls()
    );
    assert_eq!(outcome.fallback(), Some(&FallbackCause::Requested));
    // A requested bundle is an export like any other, not a blocked one.
    assert_eq!(outcome.verdict(), ExportVerdict::Complete);
    let loaded = PortableBundle::load(w.bundle_dir()).unwrap();
    assert_eq!(
        loaded.cards.len() as u64,
        outcome.summary().unwrap().created
    );
    assert!(!loaded.cards.is_empty());
    assert_eq!(
        loaded.manifest.fallback,
        Some(webriskops_portable::FallbackTrigger::Requested)
    );
    assert_eq!(
        loaded.manifest.provider.unwrap().board_id,
        Some(w.fake.board_id.clone())
    );
}

#[tokio::test]
async fn fallback_auto_writes_the_bundle_for_a_draft_whose_setup_is_blocked_and_says_why() {
    let w = World::new();
    // A blocked setup kept its choices as a draft, without any credential.
    let draft = w
        .complete_record()
        .into_draft(vec![BlockedCode::ProviderAuthRequired]);
    w.save(&draft).await;
    let bundle = Bundle::new();
    let source = VecSource::new(sample());
    let outcome = w.export(None, &bundle, &source, FallbackPolicy::Auto).await;
    assert_eq!(outcome.record_state, RecordState::Draft);
    assert_eq!(codes(&outcome), [BlockedCode::ProviderAuthRequired]);
    assert_eq!(
        outcome.fallback().map(FallbackCause::trigger),
        Some(FallbackTrigger::Blocked)
    );
    // A safety net, not a success: scheduled runs must notice.
    assert_eq!(outcome.verdict(), ExportVerdict::Blocked);
    let loaded = PortableBundle::load(w.bundle_dir()).unwrap();
    assert_eq!(
        loaded.cards.len() as u64,
        outcome.summary().unwrap().created
    );
    assert!(!loaded.cards.is_empty());
    assert_eq!(
        loaded.manifest.fallback_reasons[0].code,
        BlockedCode::ProviderAuthRequired
    );
    assert!(loaded
        .cards
        .iter()
        .all(|c| c.destination_id == w.fake.list_id));
    // The bundle's identities never reach the tracker's ledger.
    assert_eq!(w.store.ledger_writes(), 0);
}

#[tokio::test]
async fn fallback_never_stops_a_blocked_export_and_writes_nothing_anywhere() {
    let w = World::new();
    w.save(&w.complete_record()).await;
    w.fake.tracker.invalidate_token();
    let bundle = Bundle::new();
    let source = VecSource::new(sample());
    let outcome = w
        .export(Some(w.tracker()), &bundle, &source, FallbackPolicy::Never)
        .await;
    assert!(matches!(outcome.result, ExportResult::Blocked { .. }));
    assert_eq!(codes(&outcome), [BlockedCode::ProviderAuthRequired]);
    assert_eq!(outcome.verdict(), ExportVerdict::Blocked);
    assert_eq!(outcome.summary(), None);
    assert_eq!(bundle.opened.load(Ordering::SeqCst), 0);
    assert!(!w.bundle_dir().exists());
    assert_eq!(w.fake.tracker.write_count(), 0);
}

#[tokio::test]
async fn fallback_auto_stops_when_the_revoke_path_was_never_confirmed() {
    let w = World::new();
    let mut record = w.complete_record();
    record.revoke_path_confirmed = false;
    w.save(&record).await;
    let bundle = Bundle::new();
    let source = VecSource::new(sample());
    let outcome = w
        .export(Some(w.tracker()), &bundle, &source, FallbackPolicy::Auto)
        .await;
    assert!(matches!(outcome.result, ExportResult::Blocked { .. }));
    assert_eq!(codes(&outcome), [BlockedCode::RevokePathUnconfirmed]);
    assert_eq!(bundle.opened.load(Ordering::SeqCst), 0);
    assert_eq!(w.fake.tracker.write_count(), 0);
}

#[tokio::test]
async fn without_any_record_the_export_checks_a_blank_one() {
    let w = World::new();
    let bundle = Bundle::new();
    let source = VecSource::new(sample());
    let outcome = w
        .export(Some(w.tracker()), &bundle, &source, FallbackPolicy::Auto)
        .await;
    assert_eq!(outcome.record_state, RecordState::None);
    assert_eq!(outcome.record, tenancy().blank_record());
    assert!(codes(&outcome).contains(&BlockedCode::DestinationBoardRequired));
    assert_eq!(outcome.verdict(), ExportVerdict::Blocked);
}

#[tokio::test]
async fn invalid_findings_make_a_partial_export() {
    let w = World::new();
    w.save(&w.complete_record()).await;
    let source = VecSource::new(vec![finding("wro-a", "A")]);
    source
        .0
        .lock()
        .unwrap()
        .push(Err(webriskops_domain::FindingError {
            position: webriskops_domain::Position::Document,
            id: Some("wro-b".into()),
            field: Some("title".into()),
            reason: "is empty".into(),
        }));
    let outcome = w
        .export(
            Some(w.tracker()),
            &Bundle::new(),
            &source,
            FallbackPolicy::Auto,
        )
        .await;
    assert_eq!(outcome.verdict(), ExportVerdict::Partial);
    assert_eq!(outcome.summary().unwrap().created, 1);
}

#[tokio::test]
async fn an_unwritable_bundle_is_an_error_that_says_so() {
    let w = World::new();
    std::fs::write(
        w.bundle_dir(),
        b"a file where the bundle directory should go",
    )
    .unwrap();
    let err = run_export(
        &w.ports(None),
        &Bundle::new(),
        &Checksummed(VecSource::new(sample())),
        &w.export_request(FallbackPolicy::Always),
        &Silent,
        Utc::now(),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot write the portable bundle"),
        "{err}"
    );
}

#[test]
fn the_export_outcome_is_plain_json_both_ways() {
    let outcome = ExportOutcome {
        record_state: RecordState::Draft,
        record: tenancy().blank_record(),
        result: ExportResult::Exported {
            summary: Box::default(),
            destination: ExportDestination::Portable {
                out_dir: "bundle".into(),
                cause: FallbackCause::Blocked(vec![webriskops_domain::BlockedState {
                    code: BlockedCode::ProviderScopeUnavailable,
                    field: "scopes".into(),
                    fix: "authorize read,write".into(),
                }]),
            },
        },
    };
    let json = serde_json::to_value(&outcome).unwrap();
    assert_eq!(json["record_state"], "draft");
    assert_eq!(json["result"], "exported");
    assert_eq!(json["destination"]["kind"], "portable");
    assert_eq!(json["destination"]["cause"]["trigger"], "blocked");
    assert_eq!(
        json["destination"]["cause"]["reasons"][0]["code"],
        "PROVIDER_SCOPE_UNAVAILABLE"
    );
    let back: ExportOutcome = serde_json::from_value(json).unwrap();
    assert_eq!(back, outcome);
    let req: ExportRequest = serde_json::from_value(serde_json::json!({
        "tenant": "acme", "provider": "trello_cloud", "out_dir": "b", "concurrency": 2
    }))
    .unwrap();
    assert_eq!(req.fallback, FallbackPolicy::Auto);
    assert_eq!(req.tenancy, tenancy());
}

// ---------------------------------------------------------------- setup

fn credentials() -> SetupCredentials {
    SetupCredentials {
        token: Token::new("tok-secret-0001").unwrap(),
        companions: vec![CompanionSecret {
            reference: CredentialRef("acme/trello_cloud/api_key".into()),
            secret: Token::new("key-secret-0002").unwrap(),
        }],
    }
}

fn choose_all(w: &World) -> SetupChoices {
    SetupChoices {
        board_id: Some(w.fake.board_id.clone()),
        list_id: Some(w.fake.list_id.clone()),
        done_list_id: Some(w.fake.done_list_id.clone()),
        confirm_revoke_path: true,
        ..SetupChoices::default()
    }
}

#[tokio::test]
async fn a_ready_setup_with_save_stores_the_record_then_the_token_and_its_companions() {
    let w = World::new();
    let req = SetupRequest {
        tenancy: tenancy(),
        choices: choose_all(&w),
        api_root: Some("https://api.trello.com/1".into()),
        save: true,
        credentials: Some(credentials()),
    };
    let outcome = apply_and_check(&w.ports(Some(w.tracker())), req, Utc::now())
        .await
        .unwrap();
    assert!(outcome.is_ready(), "{:?}", outcome.readiness);
    assert!(outcome.saved);
    assert_eq!(outcome.record_state, RecordState::Saved);
    // The workspace is learnt from the chosen board.
    assert_eq!(outcome.record.workspace_id, Some(w.fake.org_id.clone()));
    let stored = w
        .store
        .load(&tenancy().tenant, ProviderKey::TrelloCloud)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, outcome.record);
    assert_eq!(stored.api_root.as_deref(), Some("https://api.trello.com/1"));
    let binding = secret_binding(&stored);
    let token = w
        .store
        .get_token(stored.credential.as_ref().unwrap(), &binding)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(token.expose(), "tok-secret-0001");
    let key = w
        .store
        .get_token(&CredentialRef("acme/trello_cloud/api_key".into()), &binding)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(key.expose(), "key-secret-0002");
}

#[tokio::test]
async fn a_ready_setup_without_save_stores_nothing_and_lists_nothing_it_need_not() {
    let w = World::new();
    let req = SetupRequest {
        tenancy: tenancy(),
        choices: choose_all(&w),
        api_root: None,
        save: false,
        credentials: Some(credentials()),
    };
    let outcome = apply_and_check(&w.ports(Some(w.tracker())), req, Utc::now())
        .await
        .unwrap();
    assert!(outcome.is_ready());
    assert!(!outcome.saved && !outcome.draft_kept);
    assert_eq!(outcome.record_state, RecordState::None);
    assert_eq!(
        w.store
            .load(&tenancy().tenant, ProviderKey::TrelloCloud)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_blocked_setup_with_save_keeps_a_draft_and_no_secret() {
    let w = World::new();
    let mut choices = choose_all(&w);
    choices.confirm_revoke_path = false;
    let req = SetupRequest {
        tenancy: tenancy(),
        choices,
        api_root: None,
        save: true,
        credentials: Some(credentials()),
    };
    let outcome = apply_and_check(&w.ports(Some(w.tracker())), req, Utc::now())
        .await
        .unwrap();
    assert!(!outcome.is_ready());
    assert!(outcome.draft_kept && !outcome.saved);
    assert_eq!(outcome.record_state, RecordState::Draft);
    assert_eq!(
        outcome.record.draft.as_ref().unwrap().blocked_by,
        [BlockedCode::RevokePathUnconfirmed]
    );
    let reference = CredentialRef::for_provider(&tenancy().tenant, ProviderKey::TrelloCloud);
    for r in [reference, CredentialRef("acme/trello_cloud/api_key".into())] {
        assert_eq!(
            w.store
                .get_token(&r, &secret_binding(&outcome.record))
                .await
                .unwrap(),
            None
        );
    }
}

#[tokio::test]
async fn a_blocked_re_run_keeps_the_saved_record_and_its_token() {
    let w = World::new();
    let saved = w.complete_record();
    w.save(&saved).await;
    let req = SetupRequest {
        tenancy: tenancy(),
        choices: SetupChoices {
            list_id: Some("not-a-list-of-this-board".into()),
            ..SetupChoices::default()
        },
        api_root: None,
        save: true,
        credentials: Some(credentials()),
    };
    let outcome = apply_and_check(&w.ports(Some(w.tracker())), req, Utc::now())
        .await
        .unwrap();
    assert!(!outcome.is_ready());
    assert!(outcome.saved_record_kept && !outcome.draft_kept);
    assert_eq!(outcome.record_state, RecordState::Saved);
    assert_eq!(
        w.store
            .load(&tenancy().tenant, ProviderKey::TrelloCloud)
            .await
            .unwrap(),
        Some(saved)
    );
}

#[tokio::test]
async fn without_credentials_setup_lists_nothing_and_reads_auth_required() {
    let w = World::new();
    let req = SetupRequest {
        tenancy: tenancy(),
        choices: SetupChoices::default(),
        api_root: None,
        save: false,
        credentials: None,
    };
    let outcome = apply_and_check(&w.ports(None), req, Utc::now())
        .await
        .unwrap();
    assert!(outcome.readiness.has(BlockedCode::ProviderAuthRequired));
    assert!(outcome.containers.is_empty() && outcome.token.is_none());
    assert!(w.fake.tracker.calls().is_empty());
}

#[tokio::test]
async fn with_credentials_and_no_board_setup_lists_the_boards_to_choose_from() {
    let w = World::new();
    let req = SetupRequest {
        tenancy: tenancy(),
        choices: SetupChoices::default(),
        api_root: None,
        save: false,
        credentials: None,
    };
    let outcome = apply_and_check(&w.ports(Some(w.tracker())), req, Utc::now())
        .await
        .unwrap();
    assert!(outcome.readiness.has(BlockedCode::DestinationBoardRequired));
    assert!(outcome.containers.iter().any(|c| c.id == w.fake.board_id));
    assert!(outcome.token.is_some());
}

#[test]
fn choices_keep_what_is_unset_clear_what_is_blank_and_forget_a_stale_workspace() {
    let mut r = tenancy().blank_record();
    r.board_id = Some("b1".into());
    r.list_id = Some("l1".into());
    r.workspace_id = Some("w1".into());
    let kept = apply_choices(r.clone(), &SetupChoices::default());
    assert_eq!(kept, r);
    let same_board = apply_choices(
        r.clone(),
        &SetupChoices {
            board_id: Some(" b1 ".into()),
            ..SetupChoices::default()
        },
    );
    assert_eq!(same_board.workspace_id.as_deref(), Some("w1"));
    let moved = apply_choices(
        r.clone(),
        &SetupChoices {
            board_id: Some("b2".into()),
            list_id: Some("  ".into()),
            ..SetupChoices::default()
        },
    );
    assert_eq!(moved.board_id.as_deref(), Some("b2"));
    assert_eq!(moved.list_id, None, "a blank id clears the choice");
    assert_eq!(
        moved.workspace_id, None,
        "the old board's workspace is forgotten"
    );
    let moved_with_ws = apply_choices(
        r,
        &SetupChoices {
            board_id: Some("b2".into()),
            workspace_id: Some("w2".into()),
            confirm_revoke_path: true,
            ..SetupChoices::default()
        },
    );
    assert_eq!(moved_with_ws.workspace_id.as_deref(), Some("w2"));
    assert!(moved_with_ws.revoke_path_confirmed);
}

#[test]
fn setup_requests_never_carry_secrets_in_json() {
    let req = SetupRequest {
        tenancy: tenancy(),
        choices: SetupChoices::default(),
        api_root: None,
        save: true,
        credentials: Some(credentials()),
    };
    let json = serde_json::to_string(&req).unwrap();
    assert!(!json.contains("tok-secret-0001") && !json.contains("key-secret-0002"));
    let debug = format!("{req:?}");
    assert!(!debug.contains("tok-secret-0001") && !debug.contains("key-secret-0002"));
    let back: SetupRequest = serde_json::from_str(&json).unwrap();
    assert!(back.save && back.credentials.is_none());
}

// ---------------------------------------------------------------- sync

fn sync_request() -> SyncRequest {
    SyncRequest {
        tenancy: tenancy(),
        credential_hint: Some("set THE_TOKEN".into()),
    }
}

async fn sync_collect(
    ports: &ServicePorts,
) -> (Result<SyncOutcome, ServiceError>, Vec<StatusEvent>) {
    let mut events = Vec::new();
    let mut emit = |e: &StatusEvent| -> Result<(), ServiceError> {
        events.push(e.clone());
        Ok(())
    };
    let outcome = sync_run(ports, &sync_request(), Utc::now(), &mut emit).await;
    (outcome, events)
}

#[tokio::test]
async fn sync_without_a_record_or_a_token_is_blocked_and_journals_nothing() {
    let w = World::new();
    let (outcome, _) = sync_collect(&w.ports(Some(w.tracker()))).await;
    let SyncOutcome::Blocked(state) = outcome.unwrap() else {
        panic!("no record: blocked");
    };
    assert_eq!(state.code, BlockedCode::DestinationBoardRequired);
    assert_eq!(
        state.fix,
        "no Trello provider record: run `webriskops setup trello` first"
    );
    w.save(&w.complete_record()).await;
    let (outcome, _) = sync_collect(&w.ports(None)).await;
    let SyncOutcome::Blocked(state) = outcome.unwrap() else {
        panic!("no token: blocked");
    };
    assert_eq!(state.code, BlockedCode::ProviderAuthRequired);
    assert_eq!(state.field, "token");
    assert!(state.fix.ends_with("(or set THE_TOKEN)"), "{}", state.fix);
    assert_eq!(
        w.store
            .last_run(&tenancy().tenant, tenancy().provider, RunKind::Sync)
            .await
            .unwrap(),
        None
    );
    assert!(w.fake.tracker.calls().is_empty());
}

#[tokio::test]
async fn sync_emits_a_persons_change_once_and_journals_its_counts() {
    let w = World::new();
    w.save(&w.complete_record()).await;
    let source = VecSource::new(vec![finding("wro-s1", "One"), finding("wro-s2", "Two")]);
    w.export(
        Some(w.tracker()),
        &Bundle::new(),
        &source,
        FallbackPolicy::Never,
    )
    .await;
    let card: ItemId = w.fake.tracker.items(&w.fake.board_id)[0].id.clone();
    w.fake.tracker.person_update(
        &card,
        &ItemChanges {
            destination_id: Some(w.fake.done_list_id.clone()),
            ..ItemChanges::default()
        },
    );
    let ports = w.ports(Some(w.tracker()));
    let (outcome, events) = sync_collect(&ports).await;
    let SyncOutcome::Synced(summary) = outcome.unwrap() else {
        panic!("a complete record syncs");
    };
    assert_eq!((summary.checked, summary.events), (2, 1));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].tracker_status, TrackerStatus::Done);
    let run = w
        .store
        .last_run(&tenancy().tenant, tenancy().provider, RunKind::Sync)
        .await
        .unwrap()
        .unwrap();
    let journaled: serde_json::Value =
        serde_json::from_str(run.summary_json.as_deref().unwrap()).unwrap();
    assert_eq!(journaled["events"], 1);
    assert_eq!(journaled["checked"], 2);
    let (again, events) = sync_collect(&ports).await;
    assert!(matches!(again.unwrap(), SyncOutcome::Synced(s) if s.events == 0));
    assert!(events.is_empty(), "each change is emitted once");
}

/// Syncs with every event appended to `log` as the server does, before the ledger records
/// it; with `stop_after`, the run stops (as a process that dies would) once that many
/// events are appended, leaving the ledger as it was. Answers what each append answered.
async fn sync_into_log(
    ports: &ServicePorts,
    log: &SqliteStore,
    stop_after: Option<usize>,
) -> (Result<SyncOutcome, ServiceError>, Vec<Option<i64>>) {
    let tenant = tenancy().tenant;
    let handle = tokio::runtime::Handle::current();
    let mut appended = Vec::new();
    let mut emit = |e: &StatusEvent| -> Result<(), ServiceError> {
        if stop_after.is_some_and(|n| appended.len() >= n) {
            return Err(ServiceError::Input("the process stopped".into()));
        }
        let json = serde_json::to_string(e).unwrap();
        let cursor = tokio::task::block_in_place(|| {
            handle.block_on(log.append_event(&tenant, &EventChange::of(e), &json, Utc::now()))
        })?;
        appended.push(cursor);
        Ok(())
    };
    let outcome = sync_run(ports, &sync_request(), Utc::now(), &mut emit).await;
    (outcome, appended)
}

/// Each status event once: a sync stopped after appending an event but before the ledger
/// recorded it emits that change again on the next run, and the event log skips it; real
/// changes of the same finding later, back and forth, are all kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_stopped_after_appending_an_event_does_not_deliver_it_twice() {
    let w = World::new();
    let log_dir = tempfile::tempdir().unwrap();
    let log = SqliteStore::open(log_dir.path(), StoreOptions::default()).unwrap();
    w.save(&w.complete_record()).await;
    let source = VecSource::new(vec![finding("wro-r1", "One"), finding("wro-r2", "Two")]);
    w.export(
        Some(w.tracker()),
        &Bundle::new(),
        &source,
        FallbackPolicy::Never,
    )
    .await;
    let move_to = |card: &ItemId, list: &str| {
        w.fake.tracker.person_update(
            card,
            &ItemChanges {
                destination_id: Some(list.to_owned()),
                ..ItemChanges::default()
            },
        );
    };
    let cards: Vec<ItemId> = w
        .fake
        .tracker
        .items(&w.fake.board_id)
        .iter()
        .map(|c| c.id.clone())
        .collect();
    for c in &cards {
        move_to(c, &w.fake.done_list_id);
    }
    let ports = w.ports(Some(w.tracker()));
    // The first event is appended, then the run stops: the ledger still says open.
    let (outcome, appended) = sync_into_log(&ports, &log, Some(1)).await;
    assert!(outcome.is_err());
    assert_eq!(appended, [Some(1)]);
    // The next sync emits that change again, and the other: only the other is appended.
    let (outcome, appended) = sync_into_log(&ports, &log, None).await;
    assert!(matches!(outcome.unwrap(), SyncOutcome::Synced(s) if s.events == 2));
    assert_eq!(appended.iter().flatten().copied().collect::<Vec<_>>(), [2]);
    assert_eq!(appended.len(), 2, "the repeat was emitted and skipped");
    // Then real changes of the first card: back to open, and done again.
    move_to(&cards[0], &w.fake.list_id);
    let (_, back) = sync_into_log(&ports, &log, None).await;
    move_to(&cards[0], &w.fake.done_list_id);
    let (_, again) = sync_into_log(&ports, &log, None).await;
    assert_eq!((back, again), (vec![Some(3)], vec![Some(4)]));
    // What a consumer reads: each change once, in order, the second open → done kept.
    let read: Vec<(i64, StatusEvent)> = log
        .events_after(&tenancy().tenant, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.cursor, serde_json::from_str(&e.event_json).unwrap()))
        .collect();
    let first = read[0].1.finding_id.clone();
    let seen: Vec<(i64, bool, TrackerStatus, TrackerStatus)> = read
        .iter()
        .map(|(c, e)| (*c, e.finding_id == first, e.previous, e.tracker_status))
        .collect();
    use TrackerStatus::{Done, Open};
    assert_eq!(
        seen,
        [
            (1, true, Open, Done),
            (2, false, Open, Done),
            (3, true, Done, Open),
            (4, true, Open, Done),
        ],
        "{read:#?}"
    );
}

#[tokio::test]
async fn credentials_refused_during_sync_end_the_run_as_blocked() {
    let w = World::new();
    w.save(&w.complete_record()).await;
    w.fake.tracker.inject(Fault {
        method: Some("list_items"),
        times: 1,
        error: PortError::Unauthenticated {
            context: Default::default(),
            message: "invalid token".into(),
        },
        apply_first: false,
    });
    let (outcome, events) = sync_collect(&w.ports(Some(w.tracker()))).await;
    let SyncOutcome::Blocked(state) = outcome.unwrap() else {
        panic!("refused credentials block the sync");
    };
    assert!(events.is_empty());
    assert_eq!(state.code, BlockedCode::ProviderAuthRequired);
    assert!(
        state
            .fix
            .ends_with("reconnect Trello with `webriskops setup trello`"),
        "{}",
        state.fix
    );
    let run = w
        .store
        .last_run(&tenancy().tenant, tenancy().provider, RunKind::Sync)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        run.summary_json.as_deref(),
        Some(r#"{"blocked":"PROVIDER_AUTH_REQUIRED"}"#)
    );
}

#[tokio::test]
async fn an_unavailable_tracker_during_sync_is_an_error_for_the_front_end() {
    let w = World::new();
    w.save(&w.complete_record()).await;
    w.fake.tracker.inject(Fault {
        method: Some("list_items"),
        times: 1,
        error: PortError::Unavailable {
            context: Default::default(),
            message: "503".into(),
        },
        apply_first: false,
    });
    let (outcome, _) = sync_collect(&w.ports(Some(w.tracker()))).await;
    assert!(matches!(
        outcome,
        Err(ServiceError::Port(PortError::Unavailable { .. }))
    ));
}

// ---------------------------------------------------------------- revoke

#[tokio::test]
async fn revoke_without_a_record_sends_and_journals_nothing() {
    let w = World::new();
    let report = revoke_run(
        &w.ports(Some(w.tracker())),
        &RevokeRequest { tenancy: tenancy() },
    )
    .await
    .unwrap();
    assert_eq!(report, RevokeReport::NothingToRevoke);
    assert!(w.fake.tracker.calls().is_empty());
    assert_eq!(
        w.store
            .last_run(&tenancy().tenant, tenancy().provider, RunKind::Revoke)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn revoke_revokes_deletes_journals_and_leaves_the_record_blocked() {
    let w = World::new();
    let record = w.complete_record();
    w.save(&record).await;
    let reference = record.credential.clone().unwrap();
    w.store
        .put_token(
            &reference,
            &secret_binding(&record),
            &Token::new("tok-secret-0001").unwrap(),
        )
        .await
        .unwrap();
    let ports = w.ports(Some(w.tracker()));
    let report = revoke_run(&ports, &RevokeRequest { tenancy: tenancy() })
        .await
        .unwrap();
    let RevokeReport::Revoked { outcome, blocked } = report else {
        panic!("a record is revoked");
    };
    assert!(outcome.revoked_at_tracker && outcome.deleted_locally);
    assert_eq!(blocked.code, BlockedCode::ProviderAuthRequired);
    assert_eq!(
        blocked.fix,
        "reconnect Trello: run `webriskops setup trello` with a new token"
    );
    assert_eq!(
        w.store
            .get_token(&reference, &secret_binding(&record))
            .await
            .unwrap(),
        None
    );
    let run = w
        .store
        .last_run(&tenancy().tenant, tenancy().provider, RunKind::Revoke)
        .await
        .unwrap()
        .unwrap();
    let journaled: serde_json::Value =
        serde_json::from_str(run.summary_json.as_deref().unwrap()).unwrap();
    assert_eq!(journaled["revoked_at_tracker"], true);
    // Status now reads the record as needing credentials again.
    let status = gather(
        &w.ports(None),
        &StatusRequest { tenancy: tenancy() },
        Utc::now(),
    )
    .await
    .unwrap();
    assert!(status.readiness.has(BlockedCode::ProviderAuthRequired));
    assert_eq!(status.record.unwrap().credential, None);
    assert!(status.last_revoke.is_some());
}

#[tokio::test]
async fn a_tracker_failure_stops_revoke_before_anything_local_changes() {
    let w = World::new();
    let record = w.complete_record();
    w.save(&record).await;
    let reference = record.credential.clone().unwrap();
    w.store
        .put_token(
            &reference,
            &secret_binding(&record),
            &Token::new("tok-secret-0001").unwrap(),
        )
        .await
        .unwrap();
    w.fake.tracker.inject(Fault {
        method: Some("revoke_token"),
        times: 1,
        error: PortError::Unavailable {
            context: Default::default(),
            message: "503".into(),
        },
        apply_first: false,
    });
    let err = revoke_run(
        &w.ports(Some(w.tracker())),
        &RevokeRequest { tenancy: tenancy() },
    )
    .await
    .unwrap_err();
    assert!(matches!(
        err,
        ServiceError::Port(PortError::Unavailable { .. })
    ));
    assert!(w
        .store
        .get_token(&reference, &secret_binding(&record))
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        w.store
            .load(&tenancy().tenant, ProviderKey::TrelloCloud)
            .await
            .unwrap(),
        Some(record)
    );
}

// ---------------------------------------------------------------- status

#[tokio::test]
async fn status_gathers_the_record_live_readiness_and_the_last_runs() {
    let w = World::new();
    let empty = gather(
        &w.ports(None),
        &StatusRequest { tenancy: tenancy() },
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(empty.record_state, RecordState::None);
    assert_eq!(empty.checked, tenancy().blank_record());
    assert!(empty.last_export.is_none() && empty.last_sync.is_none());

    w.save(&w.complete_record()).await;
    let source = VecSource::new(vec![finding("wro-st", "Status")]);
    w.export(
        Some(w.tracker()),
        &Bundle::new(),
        &source,
        FallbackPolicy::Never,
    )
    .await;
    let report = gather(
        &w.ports(Some(w.tracker())),
        &StatusRequest { tenancy: tenancy() },
        Utc::now(),
    )
    .await
    .unwrap();
    assert!(report.is_ready(), "{:?}", report.readiness);
    assert_eq!(report.record_state, RecordState::Saved);
    let export = report.last_export.expect("the export is journaled");
    assert_eq!(export.summary.unwrap()["created"], 1);
    assert!(report.last_sync.is_none());

    // The tenant's other tracker, never connected, has run nothing: its last export is
    // not the one made with this tracker.
    let other = Tenancy {
        tenant: tenancy().tenant,
        provider: *ProviderKey::ALL
            .iter()
            .find(|p| **p != tenancy().provider)
            .expect("a second provider"),
    };
    let theirs = gather(
        &w.ports(None),
        &StatusRequest { tenancy: other },
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(theirs.record_state, RecordState::None);
    assert!(
        theirs.last_export.is_none() && theirs.last_sync.is_none(),
        "{theirs:?}"
    );
}
