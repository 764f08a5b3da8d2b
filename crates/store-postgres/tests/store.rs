//! What only the PostgreSQL store has to prove: migrations applied once by replicas
//! starting together, schemas of another build refused with the fix, secrets never in
//! clear and refused when tampered, one tenant's event cursors visible in order while
//! replicas append, and a store that outlives its connections.

use std::sync::Arc;

use chrono::Utc;
use tokio_postgres::{Client, NoTls};
use webriskops_domain::{CredentialRef, TenantId, Token};
use webriskops_pg_testing::test_database;
use webriskops_ports::{EventLog, PortError, ProviderStore, SecretStore};
use webriskops_sealing::MasterKey;
use webriskops_store_postgres::{
    migrate, migration_versions, PgOptions, PgStore, PgStoreError, SCHEMA_VERSION,
};

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

fn with_key(key: &MasterKey) -> PgOptions {
    PgOptions {
        master_key: Some(key.clone()),
        ..PgOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_starting_together_apply_each_migration_once() {
    let db = test_database().await;
    let runs = (0..6).map(|_| {
        let url = db.url.clone();
        tokio::spawn(async move { migrate(&url).await.unwrap() })
    });
    let mut applied: Vec<i32> = Vec::new();
    for run in runs {
        let migrated = run.await.unwrap();
        assert_eq!(migrated.version, SCHEMA_VERSION);
        applied.extend(migrated.applied);
    }
    applied.sort_unstable();
    assert_eq!(
        applied,
        migration_versions(),
        "each migration applied by exactly one replica"
    );
    let client = connect(&db.url).await;
    let recorded: Vec<i32> = client
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(recorded, migration_versions());
    assert!(
        migrate(&db.url).await.unwrap().applied.is_empty(),
        "nothing left to apply"
    );
    PgStore::open(&db.url, PgOptions::default()).await.unwrap();
}

#[tokio::test]
async fn a_newer_schema_is_refused_with_the_fix_and_an_older_one_names_migrate() {
    let db = test_database().await;
    let behind = PgStore::open(
        &db.url,
        PgOptions {
            migrate: false,
            ..PgOptions::default()
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(behind, PgStoreError::SchemaTooOld { found: 0, .. }),
        "{behind:?}"
    );
    assert!(
        behind.to_string().contains("webriskops migrate"),
        "{behind}"
    );

    migrate(&db.url).await.unwrap();
    let client = connect(&db.url).await;
    client
        .execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, 'from the future')",
            &[&(SCHEMA_VERSION + 1)],
        )
        .await
        .unwrap();
    for opts in [
        PgOptions::default(),
        PgOptions {
            migrate: false,
            ..PgOptions::default()
        },
    ] {
        let err = PgStore::open(&db.url, opts).await.unwrap_err();
        assert!(matches!(err, PgStoreError::SchemaTooNew { .. }), "{err:?}");
        assert!(err.to_string().contains("upgrade webriskops"), "{err}");
    }
    let err = migrate(&db.url).await.unwrap_err();
    assert!(matches!(err, PgStoreError::SchemaTooNew { .. }), "{err:?}");
}

#[tokio::test]
async fn connection_errors_name_the_server_but_never_the_password() {
    // Port 1 on loopback: nothing listens there.
    let url = "postgres://app:s3cret-pw@127.0.0.1:1/webriskops";
    let err = PgStore::open(url, PgOptions::default()).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("127.0.0.1:1/webriskops"), "{text}");
    assert!(!text.contains("s3cret-pw"), "{text}");
    let err = PgStore::open("postgres://app:s3cret-pw@[bad", PgOptions::default())
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("s3cret-pw"), "{err}");
}

fn reference() -> CredentialRef {
    CredentialRef("acme/provider/token".into())
}

fn token() -> Token {
    Token::new(format!("tok{}", "5a".repeat(30))).unwrap()
}

#[tokio::test]
async fn secrets_are_never_in_clear_and_tampered_or_moved_rows_are_refused() {
    let db = test_database().await;
    let key = MasterKey::generate();
    let store = PgStore::open(&db.url, with_key(&key)).await.unwrap();
    store
        .put_token(&reference(), "acme/b", &token())
        .await
        .unwrap();
    assert!(!format!("{store:?}").contains(&key.to_base64()));

    let client = connect(&db.url).await;
    let row = client
        .query_one(
            "SELECT position(convert_to($1, 'UTF8') in ciphertext) > 0, key_id, key_origin
             FROM secrets",
            &[&token().expose()],
        )
        .await
        .unwrap();
    assert!(!row.get::<_, bool>(0), "the token is not stored in clear");
    assert_eq!(row.get::<_, String>(1), key.id());
    assert_eq!(row.get::<_, String>(2), "given");

    // Copied to another reference: the AEAD binding refuses it.
    client
        .execute(
            "INSERT INTO secrets (reference, nonce, ciphertext, binding, created_at, key_id, key_origin)
             SELECT 'globex/provider/token', nonce, ciphertext, binding, created_at, key_id, key_origin
             FROM secrets",
            &[],
        )
        .await
        .unwrap();
    let moved = CredentialRef("globex/provider/token".into());
    let err = store.get_token(&moved, "acme/b").await.unwrap_err();
    assert!(err.to_string().contains("cannot be decrypted"), "{err}");

    client
        .execute(
            "UPDATE secrets SET ciphertext = set_byte(ciphertext, 0, get_byte(ciphertext, 0) # 1)
             WHERE reference = $1",
            &[&reference().0],
        )
        .await
        .unwrap();
    let err = store.get_token(&reference(), "acme/b").await.unwrap_err();
    assert!(matches!(err, PortError::Conflict { .. }), "{err:?}");
    assert!(err.to_string().contains("cannot be decrypted"), "{err}");
    assert!(!err.to_string().contains(token().expose()));

    // Without a key: an error naming the key that sealed them, never a new key.
    let keyless = PgStore::open(&db.url, PgOptions::default()).await.unwrap();
    let err = keyless.put_token(&moved, "x", &token()).await.unwrap_err();
    assert!(err.to_string().contains(&key.id()), "{err}");
    let err = keyless.get_token(&reference(), "acme/b").await.unwrap_err();
    assert!(err.to_string().contains("WEBRISKOPS_MASTER_KEY"), "{err}");
}

/// Replicas append to one tenant's log while a reader follows it by cursor: the reader,
/// reading only after the last cursor it saw, still gets every event exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_following_the_cursor_misses_no_event_while_replicas_append() {
    let db = test_database().await;
    let mut replicas = Vec::new();
    for _ in 0..4 {
        replicas.push(Arc::new(
            PgStore::open(&db.url, PgOptions::default()).await.unwrap(),
        ));
    }
    let tenant = TenantId::new("acme").unwrap();
    let per_replica = 50;
    let writers: Vec<_> = replicas
        .iter()
        .enumerate()
        .map(|(r, store)| {
            let (store, tenant) = (Arc::clone(store), tenant.clone());
            tokio::spawn(async move {
                for n in 0..per_replica {
                    let change = webriskops_ports::EventChange {
                        finding_id: format!("f-{r}-{n}"),
                        item_id: format!("card-{r}-{n}"),
                        previous: webriskops_domain::TrackerStatus::Open,
                        status: webriskops_domain::TrackerStatus::Done,
                    };
                    let json = format!(r#"{{"r":{r},"n":{n}}}"#);
                    store
                        .append_event(&tenant, &change, &json, Utc::now())
                        .await
                        .unwrap()
                        .expect("each event its own finding's first");
                }
            })
        })
        .collect();
    let reader = Arc::clone(&replicas[0]);
    let mut seen = Vec::new();
    let mut cursor = 0;
    let mut read_after = |batch: Vec<webriskops_ports::LoggedEvent>, cursor: &mut i64| {
        for e in batch {
            assert!(e.cursor > *cursor);
            *cursor = e.cursor;
            seen.push(e.event_json);
        }
    };
    // Follow the log while the replicas write, then read what is left once.
    while !writers.iter().all(|w| w.is_finished()) {
        let batch = reader.events_after(&tenant, cursor, 7).await.unwrap();
        read_after(batch, &mut cursor);
        tokio::task::yield_now().await;
    }
    let rest = reader.events_after(&tenant, cursor, 10_000).await.unwrap();
    read_after(rest, &mut cursor);
    for w in writers {
        w.await.unwrap();
    }
    let total = replicas.len() * per_replica;
    let read = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), read, "no event read twice");
    assert_eq!(
        read, total,
        "every event read: none appeared behind the cursor"
    );
}

/// The server drops every connection of the store (as a restart does): the store gets new
/// ones by itself, without being reopened.
#[tokio::test]
async fn the_store_reconnects_after_its_connections_are_cut() {
    let db = test_database().await;
    let store = PgStore::open(&db.url, PgOptions::default()).await.unwrap();
    let acme = TenantId::new("acme").unwrap();
    let provider = webriskops_domain::ProviderKey::ALL[0];
    assert_eq!(store.load(&acme, provider).await.unwrap(), None);

    let admin = connect(&db.url).await;
    let cut: i64 = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(cut >= 1, "the store's connections were cut");
    // A call may see its connection die under it; the ones after it work again.
    let mut failures = 0;
    loop {
        match store.load(&acme, provider).await {
            Ok(found) => {
                assert_eq!(found, None);
                break;
            }
            Err(e) => {
                failures += 1;
                assert!(failures <= 8, "the store did not recover: {e}");
            }
        }
    }
}

/// Replicas adding the same e-mail at once, for two tenants: no call fails, one person
/// results, and only one tenant's calls are answered `true`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_adding_one_e_mail_at_once_leave_one_person() {
    use webriskops_domain::Role;
    use webriskops_ports::Accounts;
    let db = test_database().await;
    let first = PgStore::open(&db.url, PgOptions::default()).await.unwrap();
    let (acme, globex) = (
        TenantId::new("acme").unwrap(),
        TenantId::new("globex").unwrap(),
    );
    first.add_tenant(&acme, Utc::now()).await.unwrap();
    first.add_tenant(&globex, Utc::now()).await.unwrap();
    let rounds = 8;
    let start = Arc::new(tokio::sync::Barrier::new(rounds));
    let mut calls = Vec::new();
    for round in 0..rounds {
        let store = PgStore::open(&db.url, PgOptions::default()).await.unwrap();
        // A connection ready before the start, so that the calls meet at the database.
        store.tenant_exists(&acme).await.unwrap();
        let tenant = if round % 2 == 0 {
            acme.clone()
        } else {
            globex.clone()
        };
        let start = Arc::clone(&start);
        calls.push(tokio::spawn(async move {
            start.wait().await;
            let ok = store
                .put_user(&tenant, "Sam@Example.com", Role::Admin, "hash", Utc::now())
                .await
                .unwrap();
            (tenant, ok)
        }));
    }
    let mut winners = Vec::new();
    for call in calls {
        let (tenant, ok) = call.await.unwrap();
        if ok {
            winners.push(tenant);
        }
    }
    let owner = first
        .user_by_email("sam@example.com")
        .await
        .unwrap()
        .unwrap()
        .tenant;
    assert!(!winners.is_empty());
    assert!(
        winners.iter().all(|t| *t == owner),
        "only the owner's calls succeed: {winners:?}"
    );
    let client = connect(&db.url).await;
    let n: i64 = client
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

#[tokio::test]
async fn a_failed_statement_says_what_the_server_said() {
    let db = test_database().await;
    let store = PgStore::open(&db.url, PgOptions::default()).await.unwrap();
    use webriskops_ports::RunJournal;
    // A run of another tenant's journal that does not exist: a typed NotFound.
    let err = store
        .record_intent(
            webriskops_ports::RunId(42),
            &webriskops_domain::FindingId::new("f-1").unwrap(),
            "create",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::NotFound { .. }), "{err:?}");
    // Any other refusal carries the server's code and message.
    let client = connect(&db.url).await;
    client.batch_execute("DROP TABLE ledger").await.unwrap();
    let err = webriskops_ports::ExportLedger::all(
        &store,
        &webriskops_ports::LedgerScope {
            tenant: TenantId::new("acme").unwrap(),
            provider: webriskops_domain::ProviderKey::ALL[0],
            container_id: "c".into(),
        },
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("42P01") && text.contains("ledger"), "{text}");
}

/// What `/readyz` asks: an open store answers with this build's schema version, and once a
/// newer build has migrated the database it says so (the replica is then not ready).
#[tokio::test]
async fn check_schema_tells_a_live_store_its_database_moved_on() {
    let db = test_database().await;
    let store = PgStore::open(&db.url, PgOptions::default()).await.unwrap();
    assert_eq!(store.check_schema().await.unwrap(), SCHEMA_VERSION);
    let client = connect(&db.url).await;
    client
        .execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, 'from the future')",
            &[&(SCHEMA_VERSION + 1)],
        )
        .await
        .unwrap();
    let err = store.check_schema().await.unwrap_err();
    assert!(matches!(err, PgStoreError::SchemaTooNew { .. }), "{err:?}");
}

/// Migration 10 fills in the changes of the events stored before it from their JSON, so
/// that a sync stopped before the upgrade, whose change is appended again after it, is
/// still recognised as a repeat; a real change after it is appended.
#[tokio::test]
async fn events_stored_before_the_repeat_check_are_compared_too() {
    use webriskops_domain::TrackerStatus::{Done, Open};
    use webriskops_ports::EventChange;
    let db = test_database().await;
    drop(PgStore::open(&db.url, PgOptions::default()).await.unwrap());
    // The log as migration 9 left it, with a status event as the server writes it.
    let client = connect(&db.url).await;
    client
        .batch_execute(
            r#"DROP INDEX status_events_by_finding;
               ALTER TABLE status_events DROP COLUMN finding_id, DROP COLUMN item_id,
                   DROP COLUMN previous, DROP COLUMN status;
               DELETE FROM schema_migrations WHERE version = 10;
               INSERT INTO status_events (tenant, seq, event_json, created_at) VALUES
                   ('acme', 1, '{"finding_id":"f-1","tracker":"trello","item_id":"card-1","item_url":null,"tracker_status":"done","previous":"open","observed_at":"2026-01-01T00:00:00Z"}', now()),
                   ('acme', 2, '{"not":"an event"}', now());"#,
        )
        .await
        .unwrap();

    let store = PgStore::open(&db.url, PgOptions::default()).await.unwrap();
    let acme = TenantId::new("acme").unwrap();
    let closed = EventChange {
        finding_id: "f-1".into(),
        item_id: "card-1".into(),
        previous: Open,
        status: Done,
    };
    assert_eq!(
        store
            .append_event(&acme, &closed, "{}", Utc::now())
            .await
            .unwrap(),
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
            .append_event(&acme, &reopened, "{}", Utc::now())
            .await
            .unwrap(),
        Some(3)
    );
}
