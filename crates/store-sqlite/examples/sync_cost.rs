//! Measures what `synchronous=FULL` costs against `NORMAL` in WAL mode on this disk.
//!
//! Run: `cargo run -p webriskops-store-sqlite --release --example sync_cost [dir]`.
//! Prints the time per single-row commit (one journal intent) and per 1,000-row batch
//! (one ledger `put_many`) for both settings.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};

const SINGLE_COMMITS: u32 = 300;
const BATCHES: u32 = 20;

fn measure(dir: &Path, synchronous: &str) -> rusqlite::Result<(Duration, Duration)> {
    let path = dir.join(format!("sync-cost-{synchronous}.db"));
    let _ = std::fs::remove_file(&path);
    let mut conn = Connection::open(&path)?;
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.execute_batch(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, finding TEXT NOT NULL, body TEXT NOT NULL)",
    )?;

    let start = Instant::now();
    for i in 0..SINGLE_COMMITS {
        conn.execute(
            "INSERT INTO t (finding, body) VALUES (?1, ?2)",
            params![format!("wro-{i}"), "update"],
        )?;
    }
    let single = start.elapsed() / SINGLE_COMMITS;

    let start = Instant::now();
    for b in 0..BATCHES {
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached("INSERT INTO t (finding, body) VALUES (?1, ?2)")?;
            for i in 0..1_000 {
                stmt.execute(params![format!("wro-{b}-{i}"), "x".repeat(120)])?;
            }
        }
        tx.commit()?;
    }
    let batch = start.elapsed() / BATCHES;
    drop(conn);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Ok((single, batch))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    for mode in ["FULL", "NORMAL"] {
        let (single, batch) = measure(&dir, mode)?;
        println!(
            "synchronous={mode:<6}  one-row commit {single:>10.2?}  1,000-row batch {batch:>10.2?}"
        );
    }
    Ok(())
}
