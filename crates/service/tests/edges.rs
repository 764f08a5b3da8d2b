//! Edge cases of the service layer with mocked ports (mockall): failures at the exact
//! moment they matter, and the order of side effects.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Utc;
use mockall::mock;
use mockall::predicate::always;
use webriskops_domain::{
    BlockedCode, CredentialRef, ItemId, ProviderKey, ProviderRecord, Readiness, ReadyStates,
    TenantId, Token,
};
use webriskops_fake::MemoryStore;
use webriskops_ports::{
    Capabilities, CheckItem, Checklist, ItemChanges, ItemPage, Label, ListItemsOptions, NewItem,
    NewLabel, NewStepTemplate, PortError, PortResult, ProviderStore, RemoteItem, SecretStore,
    StepTemplate, Tracker, TrackerIntrospection, WorkItems,
};
use webriskops_service::{
    export, revoke, save_provider, ExportOptions, ExportPorts, ExportTarget, ServiceError, Silent,
};

mock! {
    #[derive(Debug)]
    pub Items {}
    #[async_trait]
    impl Tracker for Items {
        fn capabilities(&self) -> Capabilities;
    }
    #[async_trait]
    impl WorkItems for Items {
        async fn list_items(&self, opts: &ListItemsOptions) -> PortResult<ItemPage>;
        async fn create_item(&self, item: &NewItem) -> PortResult<RemoteItem>;
        async fn update_item(&self, id: &ItemId, changes: &ItemChanges) -> PortResult<RemoteItem>;
        async fn create_checklist(&self, item: &ItemId, name: &str) -> PortResult<Checklist>;
        async fn add_check_item(&self, checklist_id: &str, name: &str, position: u32) -> PortResult<CheckItem>;
        async fn create_label(&self, label: &NewLabel) -> PortResult<Label>;
        async fn create_step_template(&self, template: &NewStepTemplate) -> PortResult<StepTemplate>;
        async fn delete_step_template(&self, id: &str) -> PortResult<()>;
        async fn create_item_copying(&self, item: &NewItem, template_id: &str) -> PortResult<RemoteItem>;
    }
}

mock! {
    #[derive(Debug)]
    pub Records {}
    #[async_trait]
    impl ProviderStore for Records {
        async fn load(&self, tenant: &TenantId, provider: ProviderKey) -> PortResult<Option<ProviderRecord>>;
        async fn save(&self, record: &ProviderRecord) -> PortResult<()>;
        async fn delete(&self, tenant: &TenantId, provider: ProviderKey) -> PortResult<()>;
    }
}

mock! {
    #[derive(Debug)]
    pub Secrets {}
    #[async_trait]
    impl SecretStore for Secrets {
        async fn put_token(&self, reference: &CredentialRef, binding: &str, token: &Token) -> PortResult<()>;
        async fn get_token(&self, reference: &CredentialRef, binding: &str) -> PortResult<Option<Token>>;
        async fn delete_token(&self, reference: &CredentialRef) -> PortResult<()>;
        async fn replace_token(&self, reference: &CredentialRef, binding: &str, token: &Token) -> PortResult<()>;
    }
}

const CAPS: Capabilities = Capabilities {
    tracker: "mock",
    list_items: true,
    labels: false,
    create_labels: false,
    checklists: false,
    members: false,
    native_priority: false,
    archive: true,
    move_items: true,
    revoke: true,
    max_page_size: 1000,
    max_title_chars: 16_384,
    max_body_chars: 16_384,
    max_step_chars: 16_384,
    max_assignees: u32::MAX,
    copies_step_lists: false,
};

fn remote(n: &NewItem, id: &str) -> RemoteItem {
    RemoteItem {
        id: ItemId::new(id).unwrap(),
        // As an adapter reads it: the finding the create carried.
        finding_id: Some(n.finding_id.clone()),
        url: None,
        container_id: "board".into(),
        destination_id: n.destination_id.clone(),
        category: webriskops_domain::StateCategory::Open,
        state_name: "To Do".into(),
        title: n.title.clone(),
        body: n.body.clone(),
        archived: false,
        label_ids: vec![],
        member_ids: vec![],
        due: n.due,
        created_secs: 1,
        last_activity: None,
        checklists: None,
        priority: None,
    }
}

fn setup(items: MockItems) -> (ExportPorts, ProviderRecord, ExportTarget, MemoryStore) {
    let store = MemoryStore::new();
    let ports = ExportPorts {
        items: Arc::new(items),
        introspection: None,
        ledger: Arc::new(store.clone()),
        journal: Arc::new(store.clone()),
    };
    let mut record = ProviderRecord::new_trello(TenantId::new("acme").unwrap());
    record.board_id = Some("board".into());
    record.list_id = Some("list".into());
    let target = ExportTarget::from_record(&record).unwrap();
    (ports, record, target, store)
}

fn ten_findings() -> common::VecSource {
    common::VecSource::new(
        (0..10)
            .map(|i| common::finding(&format!("wro-{i}"), "t"))
            .collect(),
    )
}

#[tokio::test]
async fn token_expiring_mid_run_stops_writes_and_reports_auth_required() {
    let mut items = MockItems::new();
    items.expect_capabilities().return_const(CAPS);
    items
        .expect_list_items()
        .returning(|_| Ok(ItemPage::default()));
    let sent = Arc::new(AtomicUsize::new(0));
    let s2 = sent.clone();
    items.expect_create_item().returning(move |n| {
        let k = s2.fetch_add(1, Ordering::SeqCst);
        if k < 3 {
            Ok(remote(n, &format!("c{k}")))
        } else {
            Err(PortError::Unauthenticated {
                context: Default::default(),
                message: "expired token".into(),
            })
        }
    });
    let (ports, record, target, _) = setup(items);
    let opts = ExportOptions {
        concurrency: 1,
        ..Default::default()
    };
    let s = export(&ports, &record, &target, &ten_findings(), &opts, &Silent)
        .await
        .unwrap();
    assert_eq!(s.created, 3);
    assert_eq!(s.failed_count, 7);
    assert_eq!(
        sent.load(Ordering::SeqCst),
        4,
        "after the refusal no further create is sent"
    );
    assert_eq!(s.blocked[0].code, BlockedCode::ProviderAuthRequired);
    assert!(
        s.failed
            .iter()
            .filter(|f| f.error.starts_with("not attempted"))
            .count()
            == 6
    );
}

#[tokio::test]
async fn scope_lost_mid_run_reports_scope_unavailable() {
    let mut items = MockItems::new();
    items.expect_capabilities().return_const(CAPS);
    items
        .expect_list_items()
        .returning(|_| Ok(ItemPage::default()));
    items.expect_create_item().returning(|_| {
        Err(PortError::PermissionDenied {
            context: Default::default(),
            message: "unauthorized permission requested".into(),
        })
    });
    let (ports, record, target, _) = setup(items);
    let s = export(
        &ports,
        &record,
        &target,
        &ten_findings(),
        &ExportOptions {
            concurrency: 1,
            ..Default::default()
        },
        &Silent,
    )
    .await
    .unwrap();
    assert_eq!(s.created, 0);
    assert_eq!(s.blocked[0].code, BlockedCode::ProviderScopeUnavailable);
}

#[tokio::test]
async fn create_whose_answer_was_lost_is_found_by_its_marker() {
    let mut items = MockItems::new();
    items.expect_capabilities().return_const(CAPS);
    let created: Arc<Mutex<Vec<RemoteItem>>> = Arc::default();
    let c1 = created.clone();
    items.expect_list_items().returning(move |_| {
        Ok(ItemPage {
            items: c1.lock().unwrap().clone(),
            next_cursor: None,
            step_templates: vec![],
        })
    });
    let c2 = created.clone();
    items.expect_create_item().times(1).returning(move |n| {
        c2.lock().unwrap().push(remote(n, "c-late"));
        Err(PortError::OutcomeUnknown {
            context: Default::default(),
            message: "operation timed out".into(),
        })
    });
    let (ports, record, target, store) = setup(items);
    let source = common::VecSource::new(vec![common::finding("wro-late", "late")]);
    let s = export(
        &ports,
        &record,
        &target,
        &source,
        &ExportOptions::default(),
        &Silent,
    )
    .await
    .unwrap();
    assert_eq!((s.created, s.failed_count), (1, 0));
    let scope = webriskops_ports::LedgerScope {
        tenant: record.tenant.clone(),
        provider: record.provider_key,
        container_id: "board".into(),
    };
    let entry = webriskops_ports::ExportLedger::get(
        &store,
        &scope,
        &webriskops_domain::FindingId::new("wro-late").unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(entry.item_id.as_str(), "c-late");
}

/// What an adapter reads for an item of `card` in `destination`: the finding it carries
/// (not from the body), the body as the tracker renders it, and the state's category.
fn read_by_adapter(
    card: &webriskops_domain::CardExport,
    id: &str,
    body: &str,
    category: webriskops_domain::StateCategory,
) -> RemoteItem {
    RemoteItem {
        id: ItemId::new(id).unwrap(),
        finding_id: Some(card.finding_id.clone()),
        url: None,
        container_id: "board".into(),
        destination_id: "done".into(),
        category,
        state_name: "Canceled".into(),
        title: card.title.clone(),
        body: body.into(),
        archived: false,
        label_ids: vec![],
        member_ids: vec![],
        due: card.due,
        created_secs: 1,
        last_activity: None,
        checklists: None,
        priority: None,
    }
}

#[tokio::test]
async fn identity_and_state_are_what_the_adapter_reads_never_the_body() {
    use webriskops_domain::StateCategory;
    let mut items = MockItems::new();
    items.expect_capabilities().return_const(CAPS);
    let finding = common::finding("wro-rendered", "rendered");
    let card = webriskops_domain::CardExport::from_finding(&finding, true);
    // A tracker that keeps identity outside the text, and re-renders the text.
    let rendered = "Rendered by the tracker; no marker in here";
    let listed = read_by_adapter(&card, "c-adapter", rendered, StateCategory::Canceled);
    items.expect_list_items().returning(move |opts| {
        assert_eq!(
            opts.done_destination.as_deref(),
            Some("done"),
            "reads are told the record's done destination"
        );
        Ok(ItemPage {
            items: vec![listed.clone()],
            next_cursor: None,
            step_templates: vec![],
        })
    });
    items.expect_create_item().never();
    // Without a ledger the adopted item is compared with the plan, and its text differs.
    let written = read_by_adapter(&card, "c-adapter", &card.body, StateCategory::Canceled);
    items
        .expect_update_item()
        .times(1)
        .returning(move |_, _| Ok(written.clone()));
    let (ports, mut record, _, _) = setup(items);
    record.done_list_id = Some("done".into());
    let target = ExportTarget::from_record(&record).unwrap();
    let s = export(
        &ports,
        &record,
        &target,
        &common::VecSource::new(vec![finding]),
        &ExportOptions::default(),
        &Silent,
    )
    .await
    .unwrap();
    assert_eq!(
        (s.created, s.reopened, s.updated),
        (0, 0, 1),
        "the item the adapter read as the finding's is adopted, and its cancel not fought"
    );
}

#[tokio::test]
async fn partial_failures_are_listed_and_the_journal_keeps_no_loose_ends() {
    let mut items = MockItems::new();
    items.expect_capabilities().return_const(CAPS);
    items
        .expect_list_items()
        .returning(|_| Ok(ItemPage::default()));
    let n = Arc::new(AtomicUsize::new(0));
    items.expect_create_item().returning(move |item| {
        let k = n.fetch_add(1, Ordering::SeqCst);
        if k % 2 == 0 {
            Ok(remote(item, &format!("c{k}")))
        } else {
            Err(PortError::InvalidInput {
                context: Default::default(),
                message: "invalid value for idList".into(),
            })
        }
    });
    let (ports, record, target, store) = setup(items);
    let s = export(
        &ports,
        &record,
        &target,
        &ten_findings(),
        &ExportOptions {
            concurrency: 1,
            ..Default::default()
        },
        &Silent,
    )
    .await
    .unwrap();
    assert_eq!((s.created, s.failed_count), (5, 5));
    assert!(
        s.blocked.is_empty(),
        "invalid input is per finding, not a blocked setup"
    );
    assert!(s.failed.iter().all(|f| f.kind == "invalid_input"));
    assert!(
        webriskops_ports::RunJournal::unfinished(&store, &record.tenant)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn listing_failure_before_any_write_is_an_error_and_writes_nothing() {
    let mut items = MockItems::new();
    items.expect_capabilities().return_const(CAPS);
    items.expect_list_items().returning(|_| {
        Err(PortError::Unavailable {
            context: Default::default(),
            message: "503".into(),
        })
    });
    items.expect_create_item().never();
    let (ports, record, target, _) = setup(items);
    let err = export(
        &ports,
        &record,
        &target,
        &ten_findings(),
        &ExportOptions::default(),
        &Silent,
    )
    .await
    .unwrap_err();
    assert!(matches!(
        err,
        ServiceError::Port(PortError::Unavailable { .. })
    ));
}

fn ready() -> Readiness {
    Readiness {
        ready: ReadyStates {
            cloud_target: true,
            board: true,
            list: true,
            scope: true,
            revoke_path: true,
        },
        blocked: vec![],
        notes: vec![],
    }
}

fn token() -> Token {
    Token::new(format!("ATTA{}", "0".repeat(64))).unwrap()
}

#[tokio::test]
async fn save_refuses_while_blocked_and_touches_nothing() {
    let mut records = MockRecords::new();
    records.expect_save().never();
    let mut secrets = MockSecrets::new();
    secrets.expect_put_token().never();
    let mut blocked = ready();
    blocked.ready.revoke_path = false;
    blocked.blocked.push(webriskops_domain::BlockedState {
        code: BlockedCode::RevokePathUnconfirmed,
        field: "revoke_path".into(),
        fix: "confirm".into(),
    });
    let record = ProviderRecord::new_trello(TenantId::new("acme").unwrap());
    let err = save_provider(&records, &secrets, record, &token(), &blocked)
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Blocked(_)));
    assert!(err.to_string().contains("REVOKE_PATH_UNCONFIRMED"));
}

#[tokio::test]
async fn save_writes_the_record_before_the_token() {
    let order: Arc<Mutex<Vec<&'static str>>> = Arc::default();
    let mut records = MockRecords::new();
    let o1 = order.clone();
    records.expect_save().times(1).returning(move |r| {
        assert!(r.credential.is_some(), "the record names its credential");
        o1.lock().unwrap().push("record");
        Ok(())
    });
    let mut secrets = MockSecrets::new();
    let o2 = order.clone();
    secrets
        .expect_put_token()
        .with(
            always(),
            mockall::predicate::eq("acme/trello_cloud"),
            always(),
        )
        .times(1)
        .returning(move |_, _, _| {
            o2.lock().unwrap().push("token");
            Ok(())
        });
    let record = ProviderRecord::new_trello(TenantId::new("acme").unwrap());
    save_provider(&records, &secrets, record, &token(), &ready())
        .await
        .unwrap();
    assert_eq!(*order.lock().unwrap(), ["record", "token"]);
}

#[tokio::test]
async fn failed_record_save_never_stores_the_token() {
    let mut records = MockRecords::new();
    records.expect_save().returning(|_| {
        Err(PortError::Conflict {
            context: Default::default(),
            message: "locked".into(),
        })
    });
    let mut secrets = MockSecrets::new();
    secrets.expect_put_token().never();
    let record = ProviderRecord::new_trello(TenantId::new("acme").unwrap());
    assert!(
        save_provider(&records, &secrets, record, &token(), &ready())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn revoke_revokes_remotely_then_deletes_locally() {
    let world = webriskops_fake::FakeTracker::standard();
    let store = MemoryStore::new();
    let mut record = ProviderRecord::new_trello(TenantId::new("acme").unwrap());
    record.credential = Some(CredentialRef::for_provider(
        &record.tenant,
        record.provider_key,
    ));
    store
        .put_token(
            record.credential.as_ref().unwrap(),
            "acme/trello_cloud",
            &token(),
        )
        .await
        .unwrap();
    let out = revoke(
        Some(&world.tracker as &dyn TrackerIntrospection),
        &store,
        &store,
        record.clone(),
    )
    .await
    .unwrap();
    assert!(out.revoked_at_tracker && out.deleted_locally);
    let saved = store
        .load(&record.tenant, record.provider_key)
        .await
        .unwrap()
        .unwrap();
    assert!(saved.credential.is_none());
    assert!(store
        .get_token(record.credential.as_ref().unwrap(), "acme/trello_cloud")
        .await
        .unwrap()
        .is_none());
    // The readiness of the saved record now asks for authentication.
    let check = webriskops_service::check_readiness(None, &saved, Utc::now())
        .await
        .unwrap();
    assert!(check.readiness.has(BlockedCode::ProviderAuthRequired));
}

#[tokio::test]
async fn revoke_failure_at_the_tracker_keeps_the_local_token() {
    let world = webriskops_fake::FakeTracker::standard();
    world.tracker.inject(webriskops_fake::Fault {
        method: Some("revoke_token"),
        times: 1,
        error: PortError::Unavailable {
            context: Default::default(),
            message: "503".into(),
        },
        apply_first: false,
    });
    let store = MemoryStore::new();
    let mut record = ProviderRecord::new_trello(TenantId::new("acme").unwrap());
    record.credential = Some(CredentialRef::for_provider(
        &record.tenant,
        record.provider_key,
    ));
    store
        .put_token(
            record.credential.as_ref().unwrap(),
            "acme/trello_cloud",
            &token(),
        )
        .await
        .unwrap();
    assert!(revoke(
        Some(&world.tracker as &dyn TrackerIntrospection),
        &store,
        &store,
        record.clone()
    )
    .await
    .is_err());
    assert!(store
        .get_token(record.credential.as_ref().unwrap(), "acme/trello_cloud")
        .await
        .unwrap()
        .is_some());
}

/// A template a person deleted after the listing (ADR 0006 §7): the copy is refused as
/// `NotFound` (the Trello adapter's reading of `invalid value for idCardSource`) and
/// created nothing, so that card is created plainly with its steps, and the group's other
/// cards do not ask for the template again in this run.
#[tokio::test]
async fn a_template_refused_as_a_source_falls_back_once_to_steps_one_by_one() {
    let mut items = MockItems::new();
    items.expect_capabilities().return_const(Capabilities {
        checklists: true,
        copies_step_lists: true,
        ..CAPS
    });
    items
        .expect_list_items()
        .returning(|_| Ok(ItemPage::default()));
    items.expect_create_step_template().times(1).returning(|t| {
        // The finding's steps, and its priority routed to the checklist (no labels).
        assert_eq!(t.steps[..2], ["step one", "step two"]);
        Ok(StepTemplate {
            id: "tpl".into(),
            key: t.key.clone(),
            destination_id: t.destination_id.clone(),
            hidden: true,
            checklists: vec![],
        })
    });
    items
        .expect_create_item_copying()
        .times(1)
        .returning(|_, template| {
            assert_eq!(template, "tpl");
            Err(PortError::not_found("template card tpl"))
        });
    let made = Arc::new(AtomicUsize::new(0));
    let m2 = made.clone();
    items.expect_create_item().times(10).returning(move |n| {
        let k = m2.fetch_add(1, Ordering::SeqCst);
        Ok(remote(n, &format!("c{k}")))
    });
    items
        .expect_create_checklist()
        .times(10)
        .returning(|item, name| {
            Ok(Checklist {
                id: format!("cl-{item}"),
                name: name.into(),
                items: vec![],
            })
        });
    items
        .expect_add_check_item()
        .times(30)
        .returning(|_, name, _| {
            Ok(CheckItem {
                id: format!("i-{name}"),
                name: name.into(),
                complete: false,
            })
        });
    let (ports, record, target, _) = setup(items);
    let opts = ExportOptions {
        concurrency: 1,
        ..Default::default()
    };
    let s = export(&ports, &record, &target, &ten_findings(), &opts, &Silent)
        .await
        .unwrap();
    assert_eq!((s.created, s.failed_count), (10, 0), "{:?}", s.failed);
    assert_eq!((s.step_templates.created, s.step_templates.copied), (1, 0));
}

/// A copy refused with `InvalidInput` (a list, label or member the tracker refused, or the
/// source refused in words the adapter does not know) says nothing certain about the
/// template (ADR 0006 §7): that card is created plainly once, failing as a plain create
/// fails when the refusal was its own, and the group's other cards keep copying.
#[tokio::test]
async fn a_copy_refused_for_its_own_card_fails_that_card_only_and_the_group_keeps_copying() {
    let mut items = MockItems::new();
    items.expect_capabilities().return_const(Capabilities {
        checklists: true,
        copies_step_lists: true,
        ..CAPS
    });
    items
        .expect_list_items()
        .returning(|_| Ok(ItemPage::default()));
    items.expect_create_step_template().times(1).returning(|t| {
        Ok(StepTemplate {
            id: "tpl".into(),
            key: t.key.clone(),
            destination_id: t.destination_id.clone(),
            hidden: true,
            checklists: vec![],
        })
    });
    let made = Arc::new(AtomicUsize::new(0));
    let m2 = made.clone();
    items
        .expect_create_item_copying()
        .times(10)
        .returning(move |n, template| {
            assert_eq!(template, "tpl");
            if n.finding_id.as_str() == "wro-0" {
                return Err(PortError::InvalidInput {
                    context: Default::default(),
                    message: "invalid value for idList in list list".into(),
                });
            }
            let k = m2.fetch_add(1, Ordering::SeqCst);
            Ok(remote(n, &format!("c{k}")))
        });
    items.expect_create_item().times(1).returning(|n| {
        assert_eq!(n.finding_id.as_str(), "wro-0", "only the refused copy");
        Err(PortError::InvalidInput {
            context: Default::default(),
            message: "invalid value for idList in list list".into(),
        })
    });
    items.expect_create_checklist().times(0);
    items.expect_add_check_item().times(0);
    let (ports, record, target, _) = setup(items);
    let opts = ExportOptions {
        concurrency: 1,
        ..Default::default()
    };
    let s = export(&ports, &record, &target, &ten_findings(), &opts, &Silent)
        .await
        .unwrap();
    assert_eq!((s.created, s.failed_count), (9, 1), "{:?}", s.failed);
    assert_eq!(s.failed[0].finding_id.as_str(), "wro-0");
    assert_eq!(s.failed[0].kind, "invalid_input");
    assert_eq!((s.step_templates.created, s.step_templates.copied), (1, 9));
}
