//! The tests' PostgreSQL: [`test_database`] gives each test a fresh, empty database of
//! its own and drops it afterwards.
//!
//! The server is `DATABASE_URL` when set (any server whose user may `CREATE DATABASE`;
//! `cargo xtask test` sets it to the one throwaway cluster it starts for the whole run).
//! Without it, the first test of the process starts a throwaway [`Cluster`] under
//! `target/pg-test/` with the local `initdb`/`pg_ctl`, shared by the process's tests and
//! stopped and removed when the last of them is done.

pub mod cluster;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};

pub use cluster::{find_bin_dir, Cluster};

/// The variable naming the server the tests use.
pub const DATABASE_URL: &str = "DATABASE_URL";

/// A database of one test; dropped (with its connections) when this is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    /// `postgres://…/<name>`: connect the store under test here.
    pub url: String,
    /// The database's name.
    pub name: String,
    admin_url: String,
    _cluster: Option<Arc<Cluster>>,
}

static CLUSTER: Mutex<Weak<Cluster>> = Mutex::new(Weak::new());
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The process's throwaway cluster, started on first use.
fn shared_cluster() -> Result<Arc<Cluster>, String> {
    let mut slot = CLUSTER.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = slot.upgrade() {
        return Ok(c);
    }
    let cluster = Arc::new(Cluster::start(&pg_test_dir()?)?);
    *slot = Arc::downgrade(&cluster);
    Ok(cluster)
}

/// A cluster of the calling test alone, which it may stop and start (the shared one, and
/// a `DATABASE_URL` server, must not be), with a fresh database on it. Started with the
/// local `initdb`/`pg_ctl` whether `DATABASE_URL` is set or not.
///
/// # Errors
/// No `initdb`/`pg_ctl` here (the message says how to install them): a test should then
/// say it skips, and why.
pub async fn private_database() -> Result<(Arc<Cluster>, TestDatabase), String> {
    if find_bin_dir().is_none() {
        return Err(
            "a private PostgreSQL cluster needs initdb and pg_ctl, found neither on the PATH \
             nor in /usr/lib/postgresql/*/bin (Debian: `apt-get install -y postgresql`)"
                .to_owned(),
        );
    }
    let cluster = tokio::task::spawn_blocking(|| -> Result<Arc<Cluster>, String> {
        Ok(Arc::new(Cluster::start(&pg_test_dir()?)?))
    })
    .await
    .map_err(|e| e.to_string())??;
    let db = database_on(cluster.url(), Some(cluster.clone())).await;
    Ok((cluster, db))
}

/// `target/pg-test`: where throwaway clusters live.
fn pg_test_dir() -> Result<std::path::PathBuf, String> {
    // target/<profile>/deps/<test binary> → target/pg-test
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let target = exe
        .ancestors()
        .nth(3)
        .map(|t| t.to_owned())
        .unwrap_or_else(std::env::temp_dir);
    Ok(target.join("pg-test"))
}

/// `url` with its database replaced by `name` (the query string kept).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let head = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{head}/{name}?{q}"),
        None => format!("{head}/{name}"),
    }
}

async fn admin(url: &str) -> Result<tokio_postgres::Client, String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("cannot connect to the tests' PostgreSQL: {e}"))?;
    tokio::spawn(connection);
    Ok(client)
}

/// A fresh database for one test.
///
/// # Panics
/// When no server can be had: the message says how to provide one.
pub async fn test_database() -> TestDatabase {
    let (admin_url, cluster) = match std::env::var(DATABASE_URL).ok().filter(|u| !u.is_empty()) {
        Some(url) => (url, None),
        None => {
            let cluster = tokio::task::spawn_blocking(shared_cluster)
                .await
                .expect("the cluster's start did not panic")
                .unwrap_or_else(|e| panic!("no PostgreSQL for the tests: {e}"));
            (cluster.url(), Some(cluster))
        }
    };
    database_on(admin_url, cluster).await
}

async fn database_on(admin_url: String, cluster: Option<Arc<Cluster>>) -> TestDatabase {
    let name = format!(
        "wro_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let client = admin(&admin_url).await.unwrap_or_else(|e| {
        panic!("{e} (set {DATABASE_URL}, or unset it for a throwaway cluster)")
    });
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
    TestDatabase {
        url: with_database(&admin_url, &name),
        name,
        admin_url,
        _cluster: cluster,
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime: drop the database from a thread of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let client = admin(&url).await.ok()?;
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("note: the test database {} was left behind", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_of_a_url_is_replaced_and_its_query_kept() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "x"), "postgres://h:1/x");
    }

    #[test]
    fn a_cluster_left_by_a_killed_run_is_stopped_and_removed_by_the_next_start() {
        let parent = std::env::temp_dir().join(format!("wro-pg-abandoned-{}", std::process::id()));
        let first = Cluster::start(&parent).unwrap();
        let left = first.dir().to_owned();
        // As if its process had been killed: forget the cluster, and rename its folder to
        // a process id that is not running (pid_max is at most 2^22 on Linux).
        std::mem::forget(first);
        let orphan = parent.join("pg-4194305-1");
        std::fs::rename(&left, &orphan).unwrap();
        let second = Cluster::start(&parent).unwrap();
        assert!(
            !orphan.exists(),
            "the abandoned cluster's folder is removed"
        );
        drop(second);
        let _ = std::fs::remove_dir_all(&parent);
    }

    #[tokio::test]
    async fn a_private_cluster_stops_and_starts_again_on_its_port_with_its_data() {
        let (cluster, db) = match private_database().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("skipped: {e}");
                return;
            }
        };
        let client = admin(&db.url).await.unwrap();
        client
            .batch_execute("CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)")
            .await
            .unwrap();
        let c = cluster.clone();
        tokio::task::spawn_blocking(move || c.stop())
            .await
            .unwrap()
            .unwrap();
        assert!(admin(&db.url).await.is_err(), "the server is down");
        assert!(
            client.simple_query("SELECT 1").await.is_err(),
            "its connections are cut"
        );
        let c = cluster.clone();
        tokio::task::spawn_blocking(move || c.resume())
            .await
            .unwrap()
            .unwrap();
        let again = admin(&db.url).await.unwrap();
        let n: i32 = again
            .query_one("SELECT n FROM kept", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 7, "the data directory is the same");
    }

    #[tokio::test]
    async fn a_test_database_is_empty_usable_and_dropped_afterwards() {
        let db = test_database().await;
        let client = admin(&db.url).await.unwrap();
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0);
        drop(client);
        let (admin_url, name) = (db.admin_url.clone(), db.name.clone());
        let _cluster_stays = db._cluster.clone();
        drop(db);
        let client = admin(&admin_url).await.unwrap();
        let left: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_database WHERE datname = $1",
                &[&name],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(left, 0, "the database is dropped");
    }
}
