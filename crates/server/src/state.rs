//! What every handler shares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use webriskops_domain::{ProviderKey, TenantId};

use crate::auth::LoginThrottle;
use crate::jobs::JobRunner;
use crate::metrics::Metrics;
use crate::{Composer, ServerConfig};

/// The server's shared state: its configuration, the composer, the running jobs, the
/// login throttle and the metrics. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<ServerConfig>,
    pub composer: Arc<dyn Composer>,
    pub jobs: JobRunner,
    pub throttle: Arc<LoginThrottle>,
    /// This process's counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Authorizations in progress, by the value the callback echoes; each is used once
    /// and lives ten minutes.
    pub authorizing: Arc<Mutex<HashMap<String, Pending>>>,
}

/// An authorization in progress, for one tenant's tracker.
#[derive(Debug, Clone)]
pub struct Pending {
    pub tenant: TenantId,
    pub provider: ProviderKey,
    pub start: crate::AuthorizeStart,
    pub since: Instant,
}

impl AppState {
    pub fn new(config: ServerConfig, composer: Arc<dyn Composer>) -> Self {
        Self {
            config: Arc::new(config),
            composer,
            jobs: JobRunner::default(),
            throttle: Arc::new(LoginThrottle::default()),
            metrics: Arc::default(),
            authorizing: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}
