//! Secrets at rest: encryption, binding, key handling and the absence of the token in clear.

mod common;

use std::fs;

use common::{open, open_with_key, random_token};
use webriskops_domain::CredentialRef;
use webriskops_ports::{PortError, SecretStore};
use webriskops_store_sqlite::{MasterKey, SqliteStore, DB_FILE_NAME};

const BINDING: &str = "acme/trello_cloud/5e9f8f8f8f8f8f8f8f8f8f8f";

fn reference() -> CredentialRef {
    CredentialRef("acme/trello_cloud/token".into())
}

fn assert_undecryptable(err: &PortError) {
    assert!(matches!(err, PortError::Conflict { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("cannot be decrypted: wrong master key or tampered data"),
        "{msg}"
    );
    assert!(msg.contains("WEBRISKOPS_MASTER_KEY"), "{msg}");
}

/// A fresh store with a master key and one random token saved under `reference()`.
async fn store_holding_a_token() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_key(dir.path(), &MasterKey::generate());
    store
        .put_token(&reference(), BINDING, &random_token())
        .await
        .unwrap();
    (dir, store)
}

#[tokio::test]
async fn tokens_round_trip_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let store = open_with_key(dir.path(), &key);
    assert_eq!(store.get_token(&reference(), BINDING).await.unwrap(), None);

    let token = random_token();
    store
        .put_token(&reference(), BINDING, &token)
        .await
        .unwrap();
    assert_eq!(
        store.get_token(&reference(), BINDING).await.unwrap(),
        Some(token.clone())
    );

    let replacement = random_token();
    store
        .put_token(&reference(), BINDING, &replacement)
        .await
        .unwrap();
    assert_eq!(
        store.get_token(&reference(), BINDING).await.unwrap(),
        Some(replacement)
    );

    store.delete_token(&reference()).await.unwrap();
    assert_eq!(store.get_token(&reference(), BINDING).await.unwrap(), None);
}

#[tokio::test]
async fn a_wrong_master_key_is_an_error_not_a_missing_token() {
    let dir = tempfile::tempdir().unwrap();
    let token = random_token();
    {
        let store = open_with_key(dir.path(), &MasterKey::generate());
        store
            .put_token(&reference(), BINDING, &token)
            .await
            .unwrap();
    }
    let store = open_with_key(dir.path(), &MasterKey::generate());
    let err = store.get_token(&reference(), BINDING).await.unwrap_err();
    assert_undecryptable(&err);
    assert!(!err.to_string().contains(token.expose()));
}

#[tokio::test]
async fn tampered_ciphertext_is_refused() {
    let (dir, store) = store_holding_a_token().await;

    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE_NAME)).unwrap();
    let mut ct: Vec<u8> = conn
        .query_row("SELECT ciphertext FROM secrets", [], |r| r.get(0))
        .unwrap();
    ct[0] ^= 0x01;
    conn.execute("UPDATE secrets SET ciphertext = ?1", [ct])
        .unwrap();
    drop(conn);

    assert_undecryptable(&store.get_token(&reference(), BINDING).await.unwrap_err());
}

#[tokio::test]
async fn a_secret_moved_to_another_reference_or_binding_does_not_open() {
    let (dir, store) = store_holding_a_token().await;

    // Asked for under another binding: refused, naming both.
    let other_board = "acme/trello_cloud/5e9f8f8f8f8f8f8f8f8f8f00";
    let err = store
        .get_token(&reference(), other_board)
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::Conflict { .. }), "{err:?}");
    assert!(err.to_string().contains("run setup again"), "{err}");

    // The row rewritten to claim another binding, or copied to another reference.
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE_NAME)).unwrap();
    conn.execute(
        "INSERT INTO secrets (reference, nonce, ciphertext, binding, created_at)
         SELECT 'globex/trello_cloud/token', nonce, ciphertext, binding, created_at FROM secrets",
        [],
    )
    .unwrap();
    conn.execute(
        "UPDATE secrets SET binding = ?1 WHERE reference = ?2",
        [other_board, reference().0.as_str()],
    )
    .unwrap();
    drop(conn);
    assert_undecryptable(
        &store
            .get_token(&reference(), other_board)
            .await
            .unwrap_err(),
    );
    let moved = CredentialRef("globex/trello_cloud/token".into());
    assert_undecryptable(&store.get_token(&moved, BINDING).await.unwrap_err());
}

#[tokio::test]
async fn secrets_need_a_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let err = store
        .put_token(&reference(), BINDING, &random_token())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("WEBRISKOPS_MASTER_KEY"), "{err}");
}

#[tokio::test]
async fn the_token_never_reaches_the_database_files_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_key(dir.path(), &MasterKey::generate());
    let token = random_token();
    store
        .put_token(&reference(), BINDING, &token)
        .await
        .unwrap();
    assert!(!format!("{store:?}").contains(token.expose()));

    let needle = token.expose().as_bytes();
    let contains = |bytes: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    let wal = dir.path().join(format!("{DB_FILE_NAME}-wal"));
    let wal_bytes = fs::read(&wal).unwrap();
    assert!(
        !wal_bytes.is_empty(),
        "the write should sit in the WAL while the store is open"
    );
    assert!(!contains(&wal_bytes));
    assert!(!contains(&fs::read(dir.path().join(DB_FILE_NAME)).unwrap()));

    drop(store); // checkpoints the WAL into the main file
    assert!(!contains(&fs::read(dir.path().join(DB_FILE_NAME)).unwrap()));
}

#[tokio::test]
async fn replace_swaps_the_sealed_secret_in_one_step_and_only_for_the_same_binding() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let store = open_with_key(dir.path(), &key);
    let (old, new) = (random_token(), random_token());

    // Nothing stored: nothing to replace, and nothing is stored by trying.
    let missing = store.replace_token(&reference(), BINDING, &new).await;
    assert!(
        matches!(missing, Err(PortError::NotFound { .. })),
        "{missing:?}"
    );
    assert_eq!(store.get_token(&reference(), BINDING).await.unwrap(), None);

    store.put_token(&reference(), BINDING, &old).await.unwrap();
    // Another binding: refused, and the old secret stays.
    let other = store
        .replace_token(&reference(), "acme/trello_cloud/other", &new)
        .await
        .unwrap_err();
    assert!(matches!(other, PortError::Conflict { .. }), "{other:?}");
    assert_eq!(
        store.get_token(&reference(), BINDING).await.unwrap(),
        Some(old.clone())
    );

    store
        .replace_token(&reference(), BINDING, &new)
        .await
        .unwrap();
    assert_eq!(
        store.get_token(&reference(), BINDING).await.unwrap(),
        Some(new.clone())
    );
    // Durable and still bound: a reopened store reads the new secret, not the old.
    drop(store);
    let reopened = open_with_key(dir.path(), &key);
    assert_eq!(
        reopened.get_token(&reference(), BINDING).await.unwrap(),
        Some(new.clone())
    );
    assert!(reopened
        .get_token(&reference(), "acme/trello_cloud/other")
        .await
        .is_err());
    // The old secret's clear text is nowhere in the database file.
    let db = fs::read(dir.path().join(DB_FILE_NAME)).unwrap();
    let hay = String::from_utf8_lossy(&db);
    assert!(!hay.contains(old.expose()) && !hay.contains(new.expose()));
}
