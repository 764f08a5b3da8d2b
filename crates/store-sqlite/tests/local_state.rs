//! Local state on disk: private files and directory, and a master key that is never made
//! up in place of the one that sealed the stored secrets.

#![cfg(unix)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::random_token;
use webriskops_domain::CredentialRef;
use webriskops_ports::SecretStore;
use webriskops_store_sqlite::{
    MasterKey, SqliteStore, StoreError, StoreOptions, DB_FILE_NAME, KEY_FILE_NAME, LOCK_FILE_NAME,
    MASTER_KEY_ENV,
};

const BINDING: &str = "acme/trello_cloud@https://api.trello.com/1";

fn reference() -> CredentialRef {
    CredentialRef("acme/trello_cloud/token".into())
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn with_key_file() -> StoreOptions {
    StoreOptions {
        key_file: true,
        ..StoreOptions::default()
    }
}

fn with_env_key(key: &MasterKey) -> StoreOptions {
    StoreOptions {
        master_key: Some(MasterKey::from_env_value(&key.to_base64()).unwrap()),
        key_file: true,
        ..StoreOptions::default()
    }
}

#[tokio::test]
async fn every_state_file_is_private_to_the_user() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("state");
    let store = SqliteStore::open(&dir, with_key_file()).unwrap();
    store
        .put_token(&reference(), BINDING, &random_token())
        .await
        .unwrap();
    for name in [
        DB_FILE_NAME.to_owned(),
        format!("{DB_FILE_NAME}-wal"),
        format!("{DB_FILE_NAME}-shm"),
        LOCK_FILE_NAME.to_owned(),
        KEY_FILE_NAME.to_owned(),
    ] {
        let path = dir.join(&name);
        assert!(path.exists(), "{name} should exist while the store is open");
        assert_eq!(mode(&path), 0o600, "{name}");
    }
    assert_eq!(mode(&dir), 0o700);
}

#[test]
fn state_files_left_open_by_an_earlier_version_are_made_private() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path(), StoreOptions::default()).unwrap());
    for name in [DB_FILE_NAME, LOCK_FILE_NAME] {
        fs::set_permissions(dir.path().join(name), fs::Permissions::from_mode(0o666)).unwrap();
    }
    fs::write(dir.path().join(format!("{DB_FILE_NAME}-wal")), b"").unwrap();
    fs::set_permissions(
        dir.path().join(format!("{DB_FILE_NAME}-wal")),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let _store = SqliteStore::open(dir.path(), StoreOptions::default()).unwrap();
    for name in [
        DB_FILE_NAME.to_owned(),
        LOCK_FILE_NAME.to_owned(),
        format!("{DB_FILE_NAME}-wal"),
    ] {
        assert_eq!(mode(&dir.path().join(&name)), 0o600, "{name}");
    }
}

#[test]
fn a_data_directory_others_can_write_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    for loose in [0o777, 0o770, 0o702] {
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(loose)).unwrap();
        let err = SqliteStore::open(dir.path(), StoreOptions::default()).unwrap_err();
        assert!(
            matches!(err, StoreError::DataDirPermissions { .. }),
            "{loose:o}: {err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("chmod 700 {}", dir.path().display())),
            "{msg}"
        );
        assert!(
            !dir.path().join(DB_FILE_NAME).exists(),
            "nothing is created in a directory that is refused"
        );
    }
    // Readable by others is only warned about.
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    assert!(SqliteStore::open(dir.path(), StoreOptions::default()).is_ok());
}

#[tokio::test]
async fn the_key_file_is_created_only_when_the_first_secret_is_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join(KEY_FILE_NAME);
    {
        let store = SqliteStore::open(dir.path(), with_key_file()).unwrap();
        assert_eq!(store.get_token(&reference(), BINDING).await.unwrap(), None);
        assert!(!key_file.exists(), "reading needs no key");
        store
            .put_token(&reference(), BINDING, &random_token())
            .await
            .unwrap();
        assert_eq!(mode(&key_file), 0o600);
    }
    // The next process loads it and opens the token.
    let store = SqliteStore::open(dir.path(), with_key_file()).unwrap();
    assert!(store
        .get_token(&reference(), BINDING)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn without_the_env_key_that_sealed_a_secret_no_key_file_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let token = random_token();
    {
        let store = SqliteStore::open(dir.path(), with_env_key(&key)).unwrap();
        store
            .put_token(&reference(), BINDING, &token)
            .await
            .unwrap();
    }
    let key_file = dir.path().join(KEY_FILE_NAME);
    assert!(!key_file.exists(), "an env key never leaves a key file");

    // The variable is missing now: reading and writing both say which key to provide.
    let store = SqliteStore::open(dir.path(), with_key_file()).unwrap();
    let err = store.get_token(&reference(), BINDING).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(MASTER_KEY_ENV), "{msg}");
    assert!(msg.contains(&key.id()), "{msg}");
    let err = store
        .put_token(
            &CredentialRef("acme/trello_cloud/api_key".into()),
            BINDING,
            &token,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains(MASTER_KEY_ENV), "{err}");
    assert!(!err.to_string().contains(token.expose()));
    assert!(!key_file.exists(), "no key was made up");
    drop(store);

    // With the variable back, the token opens.
    let store = SqliteStore::open(dir.path(), with_env_key(&key)).unwrap();
    assert_eq!(
        store.get_token(&reference(), BINDING).await.unwrap(),
        Some(token)
    );
}

#[tokio::test]
async fn another_key_is_named_with_both_key_ids() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path(), with_key_file()).unwrap();
        store
            .put_token(&reference(), BINDING, &random_token())
            .await
            .unwrap();
    }
    let file_key = MasterKey::load_or_create(&dir.path().join(KEY_FILE_NAME)).unwrap();
    let other = MasterKey::generate();
    let store = SqliteStore::open(dir.path(), with_env_key(&other)).unwrap();
    let msg = store
        .get_token(&reference(), BINDING)
        .await
        .unwrap_err()
        .to_string();
    assert!(msg.contains(&file_key.id()), "{msg}");
    assert!(msg.contains(&other.id()), "{msg}");
    assert!(msg.contains(KEY_FILE_NAME), "{msg}");
    assert!(msg.contains(&format!("unset {MASTER_KEY_ENV}")), "{msg}");
}

#[tokio::test]
async fn secrets_sealed_before_key_ids_were_recorded_still_open() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let token = random_token();
    {
        let store = common::open_with_key(dir.path(), &key);
        store
            .put_token(&reference(), BINDING, &token)
            .await
            .unwrap();
    }
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE_NAME)).unwrap();
    conn.execute("UPDATE secrets SET key_id = NULL, key_origin = NULL", [])
        .unwrap();
    drop(conn);
    let store = common::open_with_key(dir.path(), &key);
    assert_eq!(
        store.get_token(&reference(), BINDING).await.unwrap(),
        Some(token)
    );
    drop(store);
    // Without any key, such a row still stops a new key from being made up.
    let store = SqliteStore::open(dir.path(), with_key_file()).unwrap();
    let msg = store
        .get_token(&reference(), BINDING)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(MASTER_KEY_ENV) && msg.contains(KEY_FILE_NAME),
        "{msg}"
    );
    assert!(!dir.path().join(KEY_FILE_NAME).exists());
}
