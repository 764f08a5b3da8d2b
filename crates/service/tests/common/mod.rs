//! Shared test scaffolding: a findings source in memory, the sample findings, a fake world.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use webriskops_domain::{
    read_document, Finding, FindingError, FindingId, ProviderRecord, Severity, TenantId,
};
use webriskops_fake::{FakeTracker, FakeWorld, MemoryStore};
use webriskops_ports::{FindingSource, FindingStream, PortResult};
use webriskops_service::{ExportPorts, ExportTarget};

/// Findings held in memory; replaceable between runs.
#[derive(Debug, Clone, Default)]
pub struct VecSource(pub Arc<Mutex<Vec<Result<Finding, FindingError>>>>);

impl VecSource {
    pub fn new(findings: Vec<Finding>) -> Self {
        Self(Arc::new(Mutex::new(findings.into_iter().map(Ok).collect())))
    }
    pub fn set(&self, findings: Vec<Finding>) {
        *self.0.lock().unwrap() = findings.into_iter().map(Ok).collect();
    }
    pub fn edit(&self, id: &str, f: impl FnOnce(&mut Finding)) {
        let mut all = self.0.lock().unwrap();
        let item = all
            .iter_mut()
            .filter_map(|r| r.as_mut().ok())
            .find(|x| x.id.as_str() == id)
            .expect("finding exists");
        f(item);
    }
}

impl FindingSource for VecSource {
    fn open(&self) -> PortResult<FindingStream> {
        Ok(Box::new(self.0.lock().unwrap().clone().into_iter()))
    }
    fn describe(&self) -> String {
        "memory".into()
    }
}

pub fn sample() -> Vec<Finding> {
    let text = include_str!("../../../app/assets/sample-findings.json");
    let mut out = Vec::new();
    read_document(text.as_bytes(), |r| {
        out.push(r.expect("sample findings are valid"))
    })
    .unwrap();
    out
}

pub fn finding(id: &str, title: &str) -> Finding {
    let mut f = Finding::minimal(FindingId::new(id).unwrap(), title, Severity::High);
    f.remediation_steps = vec!["step one".into(), "step two".into()];
    f
}

pub struct Env {
    pub world: FakeWorld,
    pub store: MemoryStore,
    pub ports: ExportPorts,
    pub record: ProviderRecord,
    pub target: ExportTarget,
}

pub fn env() -> Env {
    let world = FakeTracker::standard();
    let store = MemoryStore::new();
    let ports = ExportPorts {
        items: Arc::new(world.tracker.clone()),
        introspection: Some(Arc::new(world.tracker.clone())),
        ledger: Arc::new(store.clone()),
        journal: Arc::new(store.clone()),
    };
    let mut record = ProviderRecord::new_trello(TenantId::new("acme").unwrap());
    record.board_id = Some(world.board_id.clone());
    record.list_id = Some(world.list_id.clone());
    record.done_list_id = Some(world.done_list_id.clone());
    let target = ExportTarget::from_record(&record).unwrap();
    Env {
        world,
        store,
        ports,
        record,
        target,
    }
}
