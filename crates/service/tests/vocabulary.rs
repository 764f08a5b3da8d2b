//! Every text a use case writes names the record's tracker in its own words: a Linear
//! tenant reads "team", "workflow state", "API key" and `webriskops setup linear`, never
//! Trello's words (ADR 0005 §10). Trello's words are asserted in `use_cases.rs`.

mod common;

use std::sync::Arc;

use chrono::Utc;
use common::{env, finding, VecSource};
use webriskops_domain::{BlockedCode, CredentialRef, ProviderKey, StatusEvent, TenantId};
use webriskops_fake::{Fault, MemoryStore};
use webriskops_ports::{PortError, ProviderStore};
use webriskops_service::revoke::run as revoke_run;
use webriskops_service::sync::run as sync_run;
use webriskops_service::{
    export, ExportOptions, RevokeReport, RevokeRequest, ServiceError, ServicePorts, Silent,
    SyncOutcome, SyncRequest, Tenancy,
};

fn linear() -> Tenancy {
    Tenancy {
        tenant: TenantId::new("acme").unwrap(),
        provider: ProviderKey::LinearCloud,
    }
}

/// Words no text for a Linear tenant may use.
fn assert_no_trello_words(text: &str) {
    let lower = text.to_lowercase();
    for word in ["trello", "board", "list", "card", "token"] {
        assert!(!lower.contains(word), "{word:?} in a Linear text: {text}");
    }
}

async fn sync_blocked(ports: &ServicePorts) -> webriskops_domain::BlockedState {
    let req = SyncRequest {
        tenancy: linear(),
        credential_hint: None,
    };
    let mut emit = |_: &StatusEvent| -> Result<(), ServiceError> { Ok(()) };
    match sync_run(ports, &req, Utc::now(), &mut emit).await.unwrap() {
        SyncOutcome::Blocked(state) => state,
        SyncOutcome::Synced(_) => panic!("expected a blocked sync"),
    }
}

#[tokio::test]
async fn sync_fixes_for_a_linear_record_speak_linear() {
    let store = Arc::new(MemoryStore::new());
    let ports = ServicePorts::from_store(store.clone());
    let state = sync_blocked(&ports).await;
    assert_eq!(
        state.fix,
        "no Linear provider record: run `webriskops setup linear` first"
    );

    // A record that names no destination yet.
    store.save(&linear().blank_record()).await.unwrap();
    let state = sync_blocked(&ports).await;
    assert_eq!(state.code, BlockedCode::DestinationListRequired);
    assert_eq!(
        state.fix,
        "the record names no team and workflow state: run `webriskops setup linear` again"
    );
    assert_no_trello_words(&state.fix);

    // A complete record, and no credential found.
    let mut record = linear().blank_record();
    record.board_id = Some("team-1".into());
    record.list_id = Some("state-1".into());
    store.save(&record).await.unwrap();
    let state = sync_blocked(&ports).await;
    assert_eq!(state.code, BlockedCode::ProviderAuthRequired);
    assert_eq!(
        state.fix,
        "no API key: reconnect Linear with `webriskops setup linear`"
    );
}

#[tokio::test]
async fn the_revoke_fix_for_a_linear_record_asks_for_a_new_api_key() {
    let store = Arc::new(MemoryStore::new());
    let mut record = linear().blank_record();
    record.credential = Some(CredentialRef::for_provider(
        &record.tenant,
        record.provider_key,
    ));
    store.save(&record).await.unwrap();
    let ports = ServicePorts::from_store(store);
    let report = revoke_run(&ports, &RevokeRequest { tenancy: linear() })
        .await
        .unwrap();
    let RevokeReport::Revoked { blocked, .. } = report else {
        panic!("a record is revoked");
    };
    assert_eq!(
        blocked.fix,
        "reconnect Linear: run `webriskops setup linear` with a new API key"
    );
}

#[tokio::test]
async fn export_fixes_for_a_linear_record_speak_linear() {
    // Credentials refused while listing: nothing is written, the fix names Linear's setup.
    let e = env();
    let mut record = e.record.clone();
    record.provider_key = ProviderKey::LinearCloud;
    e.world.tracker.inject(Fault {
        method: Some("list_items"),
        times: 1,
        error: PortError::Unauthenticated {
            context: Default::default(),
            message: "invalid key".into(),
        },
        apply_first: false,
    });
    let source = VecSource::new(vec![finding("wro-v1", "One")]);
    let opts = ExportOptions::default();
    let s = export(&e.ports, &record, &e.target, &source, &opts, &Silent)
        .await
        .unwrap();
    assert_eq!(s.blocked[0].code, BlockedCode::ProviderAuthRequired);
    assert!(
        s.blocked[0]
            .fix
            .ends_with("; run `webriskops setup linear` again"),
        "{}",
        s.blocked[0].fix
    );
    assert_no_trello_words(&s.blocked[0].fix);

    // Credentials refused midway: the fix reconnects Linear and names its API key.
    let e = env();
    e.world.tracker.inject(Fault {
        method: Some("create_item"),
        times: 1,
        error: PortError::Unauthenticated {
            context: Default::default(),
            message: "expired".into(),
        },
        apply_first: false,
    });
    let s = export(&e.ports, &record, &e.target, &source, &opts, &Silent)
        .await
        .unwrap();
    assert_eq!(s.blocked[0].code, BlockedCode::ProviderAuthRequired);
    assert_eq!(
        s.blocked[0].fix,
        "reconnect Linear (the API key expired or was revoked during the export), then run the export again"
    );

    // Permission lost midway: the fix names the API key and the portable fallback,
    // not a flag of one front end.
    let e = env();
    e.world.tracker.inject(Fault {
        method: Some("create_item"),
        times: 1,
        error: PortError::PermissionDenied {
            context: Default::default(),
            message: "forbidden".into(),
        },
        apply_first: false,
    });
    let s = export(&e.ports, &record, &e.target, &source, &opts, &Silent)
        .await
        .unwrap();
    assert_eq!(s.blocked[0].code, BlockedCode::ProviderScopeUnavailable);
    assert!(
        s.blocked[0].fix.starts_with(
            "the API key lost access during the export: adjust the API key's permissions"
        ),
        "{}",
        s.blocked[0].fix
    );
    assert!(
        !s.blocked[0].fix.contains("--fallback"),
        "{}",
        s.blocked[0].fix
    );
}

#[tokio::test]
async fn a_trello_record_keeps_trellos_words_in_the_export_fixes() {
    let e = env();
    e.world.tracker.inject(Fault {
        method: Some("create_item"),
        times: 1,
        error: PortError::Unauthenticated {
            context: Default::default(),
            message: "expired".into(),
        },
        apply_first: false,
    });
    let source = VecSource::new(vec![finding("wro-v1", "One")]);
    let s = export(
        &e.ports,
        &e.record,
        &e.target,
        &source,
        &ExportOptions::default(),
        &Silent,
    )
    .await
    .unwrap();
    assert_eq!(
        s.blocked[0].fix,
        "reconnect Trello (the token expired or was revoked during the export), then run the export again"
    );
}

/// The phases a use case announced.
#[derive(Default)]
struct Phases(std::sync::Mutex<Vec<String>>);

impl webriskops_service::Progress for Phases {
    fn phase(&self, name: &str, _total: Option<u64>) {
        self.0.lock().unwrap().push(name.to_owned());
    }
}

#[tokio::test]
async fn the_listing_phase_names_the_trackers_items() {
    let source = VecSource::new(vec![finding("wro-v1", "One")]);
    let opts = ExportOptions::default();
    for (provider, phase) in [
        (ProviderKey::TrelloCloud, "listing cards"),
        (ProviderKey::LinearCloud, "listing issues"),
    ] {
        let e = env();
        let mut record = e.record.clone();
        record.provider_key = provider;
        let phases = Phases::default();
        export(&e.ports, &record, &e.target, &source, &opts, &phases)
            .await
            .unwrap();
        let seen = phases.0.lock().unwrap().clone();
        assert!(seen.iter().any(|p| p == phase), "{provider}: {seen:?}");
    }
}
