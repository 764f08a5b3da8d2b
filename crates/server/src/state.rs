//! What every handler shares.

use std::sync::Arc;

use crate::auth::LoginThrottle;
use crate::jobs::JobRunner;
use crate::{Composer, ServerConfig};

/// The server's shared state: its configuration, the composer, the running jobs and the
/// login throttle. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<ServerConfig>,
    pub composer: Arc<dyn Composer>,
    pub jobs: JobRunner,
    pub throttle: Arc<LoginThrottle>,
}

impl AppState {
    pub fn new(config: ServerConfig, composer: Arc<dyn Composer>) -> Self {
        Self {
            config: Arc::new(config),
            composer,
            jobs: JobRunner::default(),
            throttle: Arc::new(LoginThrottle::default()),
        }
    }
}
