//! Single writer: the data directory lock, within one process and across processes.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use webriskops_ports::PortError;
use webriskops_store_sqlite::{SqliteStore, StoreError, StoreOptions, LOCK_FILE_NAME};

/// When set, `lock_is_exclusive_across_processes` plays the child holding the lock on this directory.
const CHILD_ENV: &str = "WEBRISKOPS_STORE_TEST_LOCK_CHILD";
const CHILD_READY: &str = "child-holds-the-lock";

fn assert_locked(err: StoreError, dir: &std::path::Path) {
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("another webriskops process is using"), "{msg}");
    assert!(msg.contains(&dir.display().to_string()), "{msg}");
    assert!(msg.contains("--data-dir"), "{msg}");
    let port: PortError = err.into();
    assert!(matches!(port, PortError::Conflict { .. }), "{port:?}");
}

#[test]
fn a_second_open_in_the_same_process_is_refused_until_the_first_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let first = common::open(dir.path());
    let clone = first.clone();
    assert_locked(
        SqliteStore::open(dir.path(), StoreOptions::default()).unwrap_err(),
        dir.path(),
    );
    drop(first);
    // A clone keeps the lock alive.
    assert_locked(
        SqliteStore::open(dir.path(), StoreOptions::default()).unwrap_err(),
        dir.path(),
    );
    drop(clone);
    assert!(SqliteStore::open(dir.path(), StoreOptions::default()).is_ok());
    assert!(dir.path().join(LOCK_FILE_NAME).exists());
}

#[test]
fn lock_is_exclusive_across_processes() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        // Child: hold the store until the parent closes our stdin.
        let _store = common::open(std::path::Path::new(&dir));
        // Written to the stream itself (the harness captures `println!`); the harness may
        // have already printed "test <name> ... " on the same line.
        let mut out = std::io::stdout();
        writeln!(out, "{CHILD_READY}").unwrap();
        out.flush().unwrap();
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        return;
    }

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lock_is_exclusive_across_processes",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Keep draining after the signal so the child never writes into a closed pipe.
        let mut ready = false;
        for line in stdout.lines().map_while(Result::ok) {
            if !ready && line.ends_with(CHILD_READY) {
                ready = true;
                let _ = ready_tx.send(true);
            }
        }
        let _ = ready_tx.send(ready);
    });
    // A guard against hanging forever, not a timing assertion.
    let ready = ready_rx.recv_timeout(Duration::from_secs(120));
    if ready != Ok(true) {
        let _ = child.kill();
        panic!("the child did not report holding the lock: {ready:?}");
    }

    assert_locked(
        SqliteStore::open(dir.path(), StoreOptions::default()).unwrap_err(),
        dir.path(),
    );

    drop(child.stdin.take()); // the child reads end of file and exits
    let status = child.wait().unwrap();
    assert!(status.success(), "child failed: {status}");
    assert!(SqliteStore::open(dir.path(), StoreOptions::default()).is_ok());
}
