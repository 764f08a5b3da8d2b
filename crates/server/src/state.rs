//! What every handler shares.

use std::sync::Arc;

use crate::jobs::JobRunner;
use crate::metrics::Metrics;
use crate::{Composer, ServerConfig};

/// The server's shared state: its configuration, the composer, the running jobs and the
/// metrics. Cheap to clone. Nothing a request starts and another finishes is kept here:
/// sessions, the sign-in throttle and authorizations in progress live in the store, so
/// that any replica can serve the next request.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<ServerConfig>,
    pub composer: Arc<dyn Composer>,
    pub jobs: JobRunner,
    /// This process's counters for `/metrics`.
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub fn new(config: ServerConfig, composer: Arc<dyn Composer>) -> Self {
        Self {
            config: Arc::new(config),
            composer,
            jobs: JobRunner::default(),
            metrics: Arc::default(),
        }
    }
}
