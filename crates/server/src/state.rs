//! What every handler shares.

use std::sync::Arc;

use webriskops_domain::Token;
use webriskops_service::{CompanionSecret, Tenancy, Tracker};

use crate::error::ApiError;
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

impl AppState {
    /// The ports of setup over several requests, for the service's use cases.
    pub fn setup_ports(&self) -> webriskops_service::integration::SetupPorts {
        webriskops_service::integration::SetupPorts {
            local: self.composer.local_ports(),
            accounts: self.composer.accounts(),
            webhooks: self.composer.webhooks(),
        }
    }
}

/// The composer turns credentials into trackers for the service's use cases; its errors
/// keep their status and fix.
#[async_trait::async_trait]
impl webriskops_service::integration::TrackerSource for AppState {
    type Error = ApiError;

    async fn tracker(
        &self,
        who: &Tenancy,
        token: Option<&Token>,
    ) -> Result<Option<Tracker>, ApiError> {
        Ok(self.composer.tracker(who, token).await?)
    }

    fn companions(&self, who: &Tenancy) -> Result<Vec<CompanionSecret>, ApiError> {
        Ok(self.composer.companions(who)?)
    }
}
