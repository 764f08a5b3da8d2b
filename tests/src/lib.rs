//! A harness for end-to-end tests of the export: a simulator seeded with the standard
//! Trello world, the real Trello adapter pointed at it, and the real SQLite store in a
//! temporary data directory. The tests live in `tests/`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use trello_sim::{Fixture, SimConfig, SimHandle, SimServer};
use webriskops_domain::{extract_marker, ApiKey, Finding, ProviderRecord, TenantId, Token};
pub use webriskops_findings_file::FileSource;
use webriskops_service::{
    export, sync, ExportOptions, ExportPorts, ExportSummary, ExportTarget, Silent, SyncSummary,
};
use webriskops_store_sqlite::{SqliteStore, StoreOptions};
use webriskops_trello::{RateLimits, TrelloAdapter, TrelloConfig};

/// Writes `findings` to `path` as JSON Lines and opens it with the binary's reader.
pub fn write_findings(path: &Path, findings: &[Finding]) -> FileSource {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create findings file"));
    for x in findings {
        serde_json::to_writer(&mut f, &finding_json(x)).expect("write finding");
        f.write_all(b"\n").expect("write newline");
    }
    f.flush().expect("flush findings file");
    drop(f);
    FileSource::open_path(path).expect("findings file opens")
}

/// A finding as the contract writes it (dates as strings, absent fields left out).
pub fn finding_json(f: &Finding) -> serde_json::Value {
    let mut v = serde_json::to_value(f).expect("finding serialises");
    if let Some(obj) = v.as_object_mut() {
        obj.retain(|_, x| !x.is_null() && x.as_array().is_none_or(|a| !a.is_empty()));
    }
    v
}

/// The simulator, its fixture and a data directory.
pub struct World {
    pub server: SimServer,
    pub sim: SimHandle,
    pub fixture: Fixture,
    pub dir: tempfile::TempDir,
    pub window: Duration,
}

impl World {
    /// A simulator with `latency` and Trello's budgets in a `window` (scaled time).
    pub async fn start(latency: Duration, window: Duration) -> World {
        let server = SimServer::start(SimConfig {
            port: 0,
            latency,
            window,
            token_limit: 100,
            key_limit: 300,
            members_limit: 100,
            ..SimConfig::default()
        })
        .await
        .expect("simulator starts");
        let sim = server.handle();
        let fixture = sim.seed_standard();
        World {
            server,
            sim,
            fixture,
            dir: tempfile::tempdir().expect("temp dir"),
            window,
        }
    }

    /// The Trello adapter for `token`, with an HTTP timeout.
    pub fn adapter(&self, token: &str, timeout: Duration) -> Arc<TrelloAdapter> {
        let mut config = TrelloConfig::new(
            ApiKey::new(&self.fixture.api_key).unwrap(),
            Token::new(token).unwrap(),
        )
        .with_api_root(&self.server.base_url())
        .expect("loopback api root");
        config.limits = RateLimits::scaled(self.window);
        config.timeout = timeout;
        Arc::new(TrelloAdapter::new(config).expect("adapter"))
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Opens the store (one at a time: the store holds the data directory's lock).
    pub fn store(&self) -> SqliteStore {
        SqliteStore::open(&self.data_dir(), StoreOptions::default()).expect("store opens")
    }

    pub fn record(&self) -> ProviderRecord {
        let mut r = ProviderRecord::new_trello(TenantId::new("acme").unwrap());
        r.board_id = Some(self.fixture.board_id.clone());
        r.list_id = Some(self.fixture.list_id.clone());
        r.done_list_id = Some(self.fixture.done_list_id.clone());
        r.workspace_id = Some(self.fixture.org_id.clone());
        r.revoke_path_confirmed = true;
        r
    }

    pub fn target(&self) -> ExportTarget {
        ExportTarget::from_record(&self.record()).unwrap()
    }

    /// Exports `source` with the full token, through a fresh adapter and store.
    pub async fn export(&self, source: &FileSource) -> (ExportSummary, Arc<TrelloAdapter>) {
        self.export_with(
            source,
            &self.fixture.tokens.full,
            Duration::from_secs(10),
            ExportOptions::default(),
        )
        .await
    }

    pub async fn export_with(
        &self,
        source: &FileSource,
        token: &str,
        timeout: Duration,
        opts: ExportOptions,
    ) -> (ExportSummary, Arc<TrelloAdapter>) {
        let adapter = self.adapter(token, timeout);
        let store = self.store();
        let ports = ExportPorts {
            items: adapter.clone(),
            introspection: Some(adapter.clone()),
            ledger: Arc::new(store.clone()),
            journal: Arc::new(store),
        };
        let mut summary = export(
            &ports,
            &self.record(),
            &self.target(),
            source,
            &opts,
            &Silent,
        )
        .await
        .expect("export runs");
        summary.requests.rate_limited = adapter.stats().rate_limited_429s;
        (summary, adapter)
    }

    /// Syncs and returns the events.
    pub async fn sync(&self) -> (SyncSummary, Vec<webriskops_domain::StatusEvent>) {
        let adapter = self.adapter(&self.fixture.tokens.full, Duration::from_secs(10));
        let store = self.store();
        let mut events = Vec::new();
        let s = sync(
            adapter.as_ref(),
            &store,
            &self.record(),
            &self.target(),
            chrono::Utc::now(),
            &mut |e| {
                events.push(e.clone());
                Ok(())
            },
        )
        .await
        .expect("sync runs");
        (s, events)
    }

    /// Cards on the fixture board per finding id (all, archived included).
    pub fn cards_per_finding(
        &self,
    ) -> std::collections::BTreeMap<String, Vec<trello_sim::SimCard>> {
        let mut m: std::collections::BTreeMap<String, Vec<trello_sim::SimCard>> =
            Default::default();
        for c in self.sim.cards(&self.fixture.board_id) {
            if let Some(f) = extract_marker(&c.desc) {
                m.entry(f.to_string()).or_default().push(c);
            }
        }
        m
    }

    /// Requests that wrote (not GET) in the simulator's log.
    pub fn writes_logged(&self) -> usize {
        self.sim
            .request_log()
            .iter()
            .filter(|r| r.method != "GET")
            .count()
    }
}

/// `n` open findings `prefix-0000…` with `steps` remediation steps each.
pub fn findings(prefix: &str, n: usize, steps: usize) -> Vec<Finding> {
    (0..n)
        .map(|i| {
            let mut f = Finding::minimal(
                webriskops_domain::FindingId::new(format!("{prefix}-{i:05}")).unwrap(),
                format!("Finding {i} of {prefix}"),
                webriskops_domain::Severity::ALL[i % 5],
            );
            f.component = Some(["storefront", "platform"][i % 2].into());
            f.remediation_steps = (1..=steps).map(|s| format!("step {s}")).collect();
            f
        })
        .collect()
}
