//! A throwaway PostgreSQL cluster: the local `initdb` and `pg_ctl`, a data directory and
//! a unix socket directory under a folder the caller names (under `target/`), a free port
//! on 127.0.0.1, trust authentication for the `postgres` role, no fsync. Stopped and
//! removed when dropped.
//!
//! Standard library only: `cargo xtask test` compiles this same file (`#[path]`) to start
//! one cluster for the whole run, and the tests' support crate starts one when run alone.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// A running cluster; dropping it stops the server and removes its directory.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// The user (uid, gid) the server runs as when this process is root (PostgreSQL
    /// refuses to run as root).
    run_as: Option<(u32, u32)>,
}

/// Where `initdb` and `pg_ctl` are: the `PATH`, else the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian keeps them there, off the `PATH`).
pub fn find_bin_dir() -> Option<PathBuf> {
    let has_both = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(d) = std::env::split_paths(&path).find(|d| has_both(d)) {
            return Some(d);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, d)| has_both(d))
        .collect();
    versions.sort();
    versions.pop().map(|(_, d)| d)
}

impl Cluster {
    /// Creates and starts a cluster in a new folder under `parent`.
    ///
    /// # Errors
    /// No `initdb`/`pg_ctl` (with how to install them), or a step that failed (with its
    /// output and the server's log).
    pub fn start(parent: &Path) -> Result<Cluster, String> {
        let bin = find_bin_dir().ok_or(
            "PostgreSQL's initdb and pg_ctl were found neither on the PATH nor in \
             /usr/lib/postgresql/*/bin: install PostgreSQL (Debian: `apt-get install -y \
             postgresql`) or set DATABASE_URL to a server the tests may create databases on",
        )?;
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        remove_abandoned(parent, &bin);
        let dir = parent.join(format!("pg-{}-{stamp}", std::process::id()));
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let run_as = unprivileged_user()?;
        let mut cluster = Cluster {
            dir,
            bin,
            port: 0,
            run_as,
        };
        #[cfg(unix)]
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(&cluster.dir, Some(uid), Some(gid))
                .map_err(|e| format!("cannot hand {} to uid {uid}: {e}", cluster.dir.display()))?;
        }
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "--auth=trust".as_ref(),
                "--encoding=UTF8".as_ref(),
                "--no-locale".as_ref(),
                "--no-sync".as_ref(),
            ],
        )?;
        cluster.port = free_port()?;
        cluster.resume()?;
        Ok(cluster)
    }

    /// Stops the server the way an operator's restart does (`pg_ctl stop -m fast`: open
    /// connections are cut, transactions rolled back), keeping its data directory and
    /// port; [`Cluster::resume`] starts it again.
    ///
    /// # Errors
    /// `pg_ctl` failed (with its output and the server's log).
    pub fn stop(&self) -> Result<(), String> {
        let data = self.data_dir();
        self.run(
            "pg_ctl stop",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        )
    }

    /// Starts the server (again) on the same data directory and port, and waits until it
    /// accepts connections.
    ///
    /// # Errors
    /// `pg_ctl` failed (with its output and the server's log).
    pub fn resume(&self) -> Result<(), String> {
        let data = self.data_dir();
        let options = format!(
            "-p {} -h 127.0.0.1 -k {} -F -c full_page_writes=off -c synchronous_commit=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log");
        self.run(
            "pg_ctl start",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "120".as_ref(),
                "start".as_ref(),
            ],
        )
    }

    /// [`Cluster::stop`], then [`Cluster::resume`].
    ///
    /// # Errors
    /// Either step failed.
    pub fn restart(&self) -> Result<(), String> {
        self.stop()?;
        self.resume()
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`: the maintenance database, on which
    /// tests create their own.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The folder holding the data directory, the socket and the log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn run(&self, step: &str, args: &[&std::ffi::OsStr]) -> Result<(), String> {
        let program = if step == "initdb" { "initdb" } else { "pg_ctl" };
        let mut cmd = Command::new(self.bin.join(program));
        cmd.args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .env("LC_ALL", "C");
        #[cfg(unix)]
        if let Some((uid, gid)) = self.run_as {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(gid);
        }
        let out = cmd.output().map_err(|e| {
            format!(
                "{step}: cannot start {}: {e}",
                self.bin.join(program).display()
            )
        })?;
        if out.status.success() {
            return Ok(());
        }
        let log = fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        Err(format!(
            "{step} failed ({}):\n{}{}\n{log}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.port != 0 {
            let data = self.data_dir();
            let _ = self.run(
                "pg_ctl stop",
                &[
                    "-D".as_ref(),
                    data.as_os_str(),
                    "-m".as_ref(),
                    "immediate".as_ref(),
                    "-w".as_ref(),
                    "stop".as_ref(),
                ],
            );
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Stops and removes the clusters under `parent` whose process is gone (a test run that
/// was killed never dropped its cluster). Linux only: a process is alive while
/// `/proc/<pid>` exists; elsewhere nothing is removed.
fn remove_abandoned(parent: &Path, bin: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("pg-"))
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let dir = entry.path();
        let abandoned = Cluster {
            dir: dir.clone(),
            bin: bin.to_owned(),
            // Non-zero: Drop stops the server (if it still runs) before removing the folder.
            port: u16::from(dir.join("data/postmaster.pid").exists()),
            run_as: unprivileged_user().ok().flatten(),
        };
        drop(abandoned);
    }
}

/// A port nobody listens on now (the kernel's pick; the server takes it right after).
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))
}

/// As root: the `postgres` user's (else `nobody`'s) uid and gid from `/etc/passwd`, to
/// run the server as; otherwise `None` (the server runs as this user).
fn unprivileged_user() -> Result<Option<(u32, u32)>, String> {
    let me = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| format!("cannot run `id -u`: {e}"))?;
    if String::from_utf8_lossy(&me.stdout).trim() != "0" {
        return Ok(None);
    }
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let user = |name: &str| {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
        })
    };
    user("postgres")
        .or_else(|| user("nobody"))
        .map(Some)
        .ok_or_else(|| {
            "running as root, and neither a postgres nor a nobody user exists to run the \
             server as (PostgreSQL refuses root); create one or set DATABASE_URL"
                .to_owned()
        })
}
