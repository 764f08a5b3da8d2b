//! Provider records, the export ledger, the run journal and how opening fails.

mod common;

use std::fs;

use common::{entry, open, scope, tenant};
use webriskops_domain::{FindingId, ProviderKey, ProviderRecord, TargetState, TrackerStatus};
use webriskops_ports::{
    ExportLedger, IntentOutcome, PortError, ProviderStore, RunJournal, RunKind,
};
use webriskops_store_sqlite::{
    SqliteStore, StoreError, StoreOptions, DB_FILE_NAME, SCHEMA_VERSION,
};

#[tokio::test]
async fn provider_records_round_trip_replace_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let acme = tenant("acme");
    assert_eq!(
        store.load(&acme, ProviderKey::TrelloCloud).await.unwrap(),
        None
    );

    let mut rec = ProviderRecord::new_trello(acme.clone());
    store.save(&rec).await.unwrap();
    assert_eq!(
        store.load(&acme, ProviderKey::TrelloCloud).await.unwrap(),
        Some(rec.clone())
    );

    rec.board_id = Some("5e9f8f8f8f8f8f8f8f8f8f8f".into());
    rec.revoke_path_confirmed = true;
    store.save(&rec).await.unwrap();
    assert_eq!(
        store.load(&acme, ProviderKey::TrelloCloud).await.unwrap(),
        Some(rec.clone())
    );
    assert_eq!(
        store
            .load(&tenant("other"), ProviderKey::TrelloCloud)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.load(&acme, ProviderKey::LinearCloud).await.unwrap(),
        None
    );

    store.delete(&acme, ProviderKey::TrelloCloud).await.unwrap();
    assert_eq!(
        store.load(&acme, ProviderKey::TrelloCloud).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn ledger_round_trips_and_put_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let s = scope("acme", "board1");
    let mut e = entry(1);
    assert_eq!(store.get(&s, &e.finding_id).await.unwrap(), None);
    store.put(&s, &e).await.unwrap();
    assert_eq!(store.get(&s, &e.finding_id).await.unwrap(), Some(e.clone()));

    e.target = TargetState::Archived;
    e.observed = TrackerStatus::Deleted;
    e.item_url = None;
    e.fingerprint = "changed".into();
    store.put(&s, &e).await.unwrap();
    assert_eq!(store.all(&s).await.unwrap(), vec![e]);
}

#[tokio::test]
async fn ledger_scopes_are_isolated_and_clear_counts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = scope("acme", "board1");
    let other_board = scope("acme", "board2");
    let other_tenant = scope("globex", "board1");
    let mut linear = scope("acme", "board1");
    linear.provider = ProviderKey::LinearCloud;

    store
        .put_many(&a, &[entry(1), entry(2), entry(3)])
        .await
        .unwrap();
    store.put(&other_board, &entry(1)).await.unwrap();
    store.put(&other_tenant, &entry(2)).await.unwrap();
    store.put(&linear, &entry(3)).await.unwrap();

    assert_eq!(store.all(&a).await.unwrap().len(), 3);
    let board2 = store.all(&other_board).await.unwrap();
    assert_eq!(board2.len(), 1);
    assert_eq!(board2[0].finding_id, entry(1).finding_id);
    assert_eq!(
        store
            .get(&other_tenant, &entry(1).finding_id)
            .await
            .unwrap(),
        None
    );

    assert_eq!(store.clear(&a).await.unwrap(), 3);
    assert!(store.all(&a).await.unwrap().is_empty());
    assert_eq!(store.clear(&a).await.unwrap(), 0);
    assert_eq!(store.all(&other_board).await.unwrap().len(), 1);
    assert_eq!(store.all(&other_tenant).await.unwrap().len(), 1);
    assert_eq!(store.all(&linear).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_hundred_thousand_entries_written_in_batches_read_back_intact() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let s = scope("acme", "board1");
    let entries: Vec<_> = (0..100_000).map(entry).collect();
    for batch in entries.chunks(1_000) {
        store.put_many(&s, batch).await.unwrap();
    }
    let read = store.all(&s).await.unwrap();
    assert_eq!(read.len(), entries.len());
    // `all` orders by finding id, and the ids are zero-padded in write order.
    assert_eq!(read, entries);
}

#[tokio::test]
async fn put_many_is_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let s = scope("acme", "board1");
    store.put(&s, &entry(0)).await.unwrap();
    // A batch whose last row breaks a constraint leaves nothing of the batch behind.
    let mut bad = entry(2);
    bad.fingerprint = String::new();
    let batch = vec![entry(1), bad];
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE_NAME)).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER refuse_empty BEFORE INSERT ON ledger WHEN NEW.fingerprint = ''
         BEGIN SELECT RAISE(ABORT, 'empty fingerprint'); END;",
    )
    .unwrap();
    drop(conn);
    assert!(store.put_many(&s, &batch).await.is_err());
    let ids: Vec<_> = store
        .all(&s)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.finding_id)
        .collect();
    assert_eq!(ids, vec![entry(0).finding_id]);
}

#[tokio::test]
async fn intents_without_outcome_survive_reopening_and_are_settled_once() {
    let dir = tempfile::tempdir().unwrap();
    let acme = tenant("acme");
    let f1 = FindingId::new("wro-1").unwrap();
    let f2 = FindingId::new("wro-2").unwrap();
    let (run, pending) = {
        let store = open(dir.path());
        let run = store
            .start_run(&acme, ProviderKey::TrelloCloud, RunKind::Export)
            .await
            .unwrap();
        let done = store.record_intent(run, &f1, "create").await.unwrap();
        let pending = store.record_intent(run, &f2, "update").await.unwrap();
        store
            .record_outcome(
                done,
                &IntentOutcome::Done {
                    item_id: Some("card1".into()),
                },
            )
            .await
            .unwrap();
        (run, pending)
        // Dropped here without an outcome for `pending` and without finishing the run.
    };

    let store = open(dir.path());
    let unfinished = store.unfinished(&acme).await.unwrap();
    assert_eq!(unfinished.len(), 1);
    assert_eq!(unfinished[0].id, pending);
    assert_eq!(unfinished[0].run, run);
    assert_eq!(unfinished[0].finding_id, f2);
    assert_eq!(unfinished[0].action, "update");
    assert!(store
        .unfinished(&tenant("globex"))
        .await
        .unwrap()
        .is_empty());

    let next = store
        .start_run(&acme, ProviderKey::TrelloCloud, RunKind::Export)
        .await
        .unwrap();
    assert_eq!(store.settle_unfinished(&acme, next).await.unwrap(), 1);
    assert!(store.unfinished(&acme).await.unwrap().is_empty());
    assert_eq!(store.settle_unfinished(&acme, next).await.unwrap(), 0);
}

#[tokio::test]
async fn failed_outcomes_are_not_unfinished() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let acme = tenant("acme");
    let run = store
        .start_run(&acme, ProviderKey::TrelloCloud, RunKind::Sync)
        .await
        .unwrap();
    let id = store
        .record_intent(run, &FindingId::new("wro-1").unwrap(), "close")
        .await
        .unwrap();
    store
        .record_outcome(
            id,
            &IntentOutcome::Failed {
                error: "rate limited".into(),
            },
        )
        .await
        .unwrap();
    assert!(store.unfinished(&acme).await.unwrap().is_empty());
}

#[tokio::test]
async fn journal_refuses_unknown_runs_and_intents() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let f = FindingId::new("wro-1").unwrap();
    let err = store
        .record_intent(webriskops_ports::RunId(42), &f, "create")
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::NotFound { .. }), "{err:?}");
    let err = store
        .record_outcome(7, &IntentOutcome::Done { item_id: None })
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::NotFound { .. }), "{err:?}");
    let err = store
        .finish_run(webriskops_ports::RunId(42), "{}")
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn last_run_is_the_latest_of_its_kind_and_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let acme = tenant("acme");
    assert_eq!(
        store
            .last_run(&acme, ProviderKey::TrelloCloud, RunKind::Export)
            .await
            .unwrap(),
        None
    );

    let first = store
        .start_run(&acme, ProviderKey::TrelloCloud, RunKind::Export)
        .await
        .unwrap();
    store.finish_run(first, r#"{"created":1}"#).await.unwrap();
    let second = store
        .start_run(&acme, ProviderKey::TrelloCloud, RunKind::Export)
        .await
        .unwrap();
    let sync = store
        .start_run(&acme, ProviderKey::TrelloCloud, RunKind::Sync)
        .await
        .unwrap();
    store.finish_run(sync, r#"{"events":0}"#).await.unwrap();
    store
        .start_run(&tenant("globex"), ProviderKey::TrelloCloud, RunKind::Export)
        .await
        .unwrap();

    let last = store
        .last_run(&acme, ProviderKey::TrelloCloud, RunKind::Export)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.id, second);
    assert_eq!(last.kind, RunKind::Export);
    assert_eq!(last.finished_at, None);
    assert_eq!(last.summary_json, None);

    let last_sync = store
        .last_run(&acme, ProviderKey::TrelloCloud, RunKind::Sync)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last_sync.id, sync);
    assert_eq!(last_sync.summary_json.as_deref(), Some(r#"{"events":0}"#));
    assert!(last_sync.finished_at.unwrap() >= last_sync.started_at);
    assert_eq!(
        store
            .last_run(&acme, ProviderKey::TrelloCloud, RunKind::Revoke)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let s = scope("acme", "board1");
    {
        let store = open(dir.path());
        store.put_many(&s, &[entry(1), entry(2)]).await.unwrap();
    }
    let store = open(dir.path());
    assert_eq!(store.all(&s).await.unwrap().len(), 2);
}

#[test]
fn garbage_database_is_reported_as_corrupt_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(DB_FILE_NAME);
    let garbage: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(&db, garbage).unwrap();
    let err = SqliteStore::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&db.display().to_string()), "{msg}");
    assert!(msg.contains("move it aside"), "{msg}");
    assert!(msg.contains("rebuilt"), "{msg}");
    let port: PortError = err.into();
    assert!(matches!(port, PortError::Conflict { .. }), "{port:?}");
}

#[test]
fn a_newer_schema_is_refused_with_upgrade_advice() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path(), StoreOptions::default()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE_NAME)).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 5)
        .unwrap();
    drop(conn);

    let err = SqliteStore::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::SchemaTooNew { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "database schema version {} is newer than this webriskops understands ({}); upgrade webriskops",
            SCHEMA_VERSION + 5,
            SCHEMA_VERSION
        )
    );
}

#[test]
fn migrations_are_recorded_in_user_version_and_not_reapplied() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path(), StoreOptions::default()).unwrap());
    drop(SqliteStore::open(dir.path(), StoreOptions::default()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE_NAME)).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'ledger'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1);
}

/// Migration 9 numbers events per tenant; events already stored keep their cursors (a
/// consumer's cursor stays valid) and the tenant's next event follows its highest.
#[tokio::test]
async fn events_stored_before_per_tenant_numbering_keep_their_cursors() {
    use webriskops_ports::EventLog;
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path(), StoreOptions::default()).unwrap());
    // The log as migration 8 left it: one row id shared by every tenant (and the later
    // migrations undone, to be applied again).
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE_NAME)).unwrap();
    conn.execute_batch(
        "DROP INDEX status_events_by_finding;
         ALTER TABLE status_events DROP COLUMN finding_id;
         ALTER TABLE status_events DROP COLUMN item_id;
         ALTER TABLE status_events DROP COLUMN previous;
         ALTER TABLE status_events DROP COLUMN status;
         DROP INDEX runs_by_tenant_provider_kind;
         ALTER TABLE runs DROP COLUMN provider_key;
         DROP INDEX status_events_by_tenant_seq;
         ALTER TABLE status_events DROP COLUMN seq;
         CREATE INDEX status_events_by_tenant ON status_events (tenant, cursor);
         INSERT INTO status_events (tenant, event_json, created_at) VALUES
             ('acme', '{\"n\":1}', '2026-01-01T00:00:00Z'),
             ('globex', '{}', '2026-01-01T00:00:00Z'),
             ('acme', '{\"n\":2}', '2026-01-01T00:00:00Z');
         PRAGMA user_version = 8;",
    )
    .unwrap();
    drop(conn);

    let store = open(dir.path());
    let acme = tenant("acme");
    let cursors = |events: Vec<webriskops_ports::LoggedEvent>| {
        events.into_iter().map(|e| e.cursor).collect::<Vec<_>>()
    };
    assert_eq!(
        cursors(store.events_after(&acme, 0, 10).await.unwrap()),
        [1, 3]
    );
    let next = store
        .append_event(&acme, &change("f-3"), r#"{"n":3}"#, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(next, Some(4), "after the tenant's highest");
    assert_eq!(
        cursors(store.events_after(&acme, 1, 10).await.unwrap()),
        [3, 4]
    );
    let globex = tenant("globex");
    assert_eq!(
        store
            .append_event(&globex, &change("f-1"), "{}", chrono::Utc::now())
            .await
            .unwrap(),
        Some(3)
    );
}

/// A change of its own finding.
fn change(finding: &str) -> webriskops_ports::EventChange {
    webriskops_ports::EventChange {
        finding_id: finding.to_owned(),
        item_id: format!("card-{finding}"),
        previous: webriskops_domain::TrackerStatus::Open,
        status: webriskops_domain::TrackerStatus::Done,
    }
}

/// Migration 11 fills in the changes of the events stored before it from their JSON, so
/// that a sync stopped before the upgrade, whose change is appended again after it, is
/// still recognised as a repeat; a real change after it is appended.
#[tokio::test]
async fn events_stored_before_the_repeat_check_are_compared_too() {
    use webriskops_domain::TrackerStatus::{Done, Open};
    use webriskops_ports::{EventChange, EventLog};
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path(), StoreOptions::default()).unwrap());
    // The log as migration 10 left it, with a status event as the server writes it.
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE_NAME)).unwrap();
    conn.execute_batch(
        "DROP INDEX status_events_by_finding;
         ALTER TABLE status_events DROP COLUMN finding_id;
         ALTER TABLE status_events DROP COLUMN item_id;
         ALTER TABLE status_events DROP COLUMN previous;
         ALTER TABLE status_events DROP COLUMN status;
         INSERT INTO status_events (tenant, seq, event_json, created_at) VALUES
             ('acme', 1, '{\"finding_id\":\"f-1\",\"tracker\":\"trello\",\"item_id\":\"card-1\",\"item_url\":null,\"tracker_status\":\"done\",\"previous\":\"open\",\"observed_at\":\"2026-01-01T00:00:00Z\"}', '2026-01-01T00:00:00Z'),
             ('acme', 2, '{\"not\":\"an event\"}', '2026-01-01T00:00:00Z');
         PRAGMA user_version = 10;",
    )
    .unwrap();
    drop(conn);

    let store = open(dir.path());
    let acme = tenant("acme");
    let closed = EventChange {
        finding_id: "f-1".into(),
        item_id: "card-1".into(),
        previous: Open,
        status: Done,
    };
    let now = chrono::Utc::now();
    assert_eq!(
        store.append_event(&acme, &closed, "{}", now).await.unwrap(),
        None,
        "the change of the event stored before is a repeat"
    );
    let reopened = EventChange {
        previous: Done,
        status: Open,
        ..closed.clone()
    };
    assert_eq!(
        store
            .append_event(&acme, &reopened, "{}", now)
            .await
            .unwrap(),
        Some(3)
    );
}
