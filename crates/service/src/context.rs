//! What every use case is given: the tenant's local state as ports and, when the front end
//! found credentials, the tracker; plus the plain-data words the use cases share.
//!
//! A front end (the CLI today, the HTTP server later) composes these once per request:
//! it chooses the adapters and resolves credentials, and the use case does the rest.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use webriskops_domain::provider::Vocabulary;
use webriskops_domain::{ProviderKey, ProviderRecord, TenantId};
use webriskops_ports::{
    ExportLedger, ProviderStore, RunJournal, SecretStore, TrackerIntrospection, TrackerWebhooks,
    WorkItems,
};

use crate::export::RequestCounts;

/// A tracker adapter as the use cases see it: its items and its introspection (request
/// statistics come from the items port, [`WorkItems::request_stats`]).
#[derive(Clone, Debug)]
pub struct Tracker {
    pub items: Arc<dyn WorkItems>,
    pub introspection: Arc<dyn TrackerIntrospection>,
    /// Webhook registration, when the adapter offers it.
    pub webhooks: Option<Arc<dyn TrackerWebhooks>>,
}

impl Tracker {
    /// One adapter serving both ports, without request statistics.
    pub fn new<T: WorkItems + TrackerIntrospection>(adapter: Arc<T>) -> Self {
        Self {
            items: adapter.clone(),
            introspection: adapter,
            webhooks: None,
        }
    }

    /// The same tracker, registering webhooks through `webhooks`.
    #[must_use]
    pub fn with_webhooks(mut self, webhooks: Arc<dyn TrackerWebhooks>) -> Self {
        self.webhooks = Some(webhooks);
        self
    }

    /// The adapter's request counts, when it reports them. A use case that reports
    /// requests takes them from here: the adapter sees every request, the readiness
    /// check's included, and every answer refused for the rate limit.
    pub fn request_counts(&self) -> Option<RequestCounts> {
        self.items.request_stats().map(|s| RequestCounts {
            reads: s.reads,
            writes: s.writes,
            rate_limited: s.rate_limited,
            rate_limited_key: s.rate_limited_key,
        })
    }
}

/// The ports a use case runs against.
#[derive(Clone, Debug)]
pub struct ServicePorts {
    pub records: Arc<dyn ProviderStore>,
    pub secrets: Arc<dyn SecretStore>,
    pub ledger: Arc<dyn ExportLedger>,
    pub journal: Arc<dyn RunJournal>,
    /// The tracker for the credentials the front end found; `None` when it found none
    /// (readiness then reads `PROVIDER_AUTH_REQUIRED`).
    pub tracker: Option<Tracker>,
}

impl ServicePorts {
    /// Every local port from one store, and no tracker yet.
    pub fn from_store<S>(store: Arc<S>) -> Self
    where
        S: ProviderStore + SecretStore + ExportLedger + RunJournal,
    {
        Self {
            records: store.clone(),
            secrets: store.clone(),
            ledger: store.clone(),
            journal: store,
            tracker: None,
        }
    }

    /// The same ports with `tracker`.
    #[must_use]
    pub fn with_tracker(mut self, tracker: Option<Tracker>) -> Self {
        self.tracker = tracker;
        self
    }

    /// The tenant's record for `provider`, saved or draft.
    ///
    /// # Errors
    /// Store failures.
    pub(crate) async fn record(
        &self,
        who: &Tenancy,
    ) -> Result<Option<ProviderRecord>, crate::ServiceError> {
        Ok(self.records.load(&who.tenant, who.provider).await?)
    }
}

/// Whose integration a use case works on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tenancy {
    pub tenant: TenantId,
    pub provider: ProviderKey,
}

impl Tenancy {
    /// A record for this tenant and provider with nothing chosen yet.
    ///
    /// The domain has one constructor, whose defaults (cloud, scopes read and write, API
    /// key and token, nothing confirmed) are the first state of every setup path; the
    /// provider key is set to this tenancy's.
    pub fn blank_record(&self) -> ProviderRecord {
        ProviderRecord::new(self.tenant.clone(), self.provider)
    }

    /// The words of this tenancy's tracker, for every text a use case writes.
    pub fn vocabulary(&self) -> Vocabulary {
        self.provider.vocabulary()
    }
}

/// What is stored for a tenant: a saved record, a draft (the choices of a blocked setup,
/// never a token), or nothing. Written `saved`, `draft` and `none` in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordState {
    Saved,
    Draft,
    None,
}

impl RecordState {
    /// The state of `record` (`None` when there is no record).
    pub fn of(record: Option<&ProviderRecord>) -> Self {
        match record {
            None => RecordState::None,
            Some(r) if r.is_draft() => RecordState::Draft,
            Some(_) => RecordState::Saved,
        }
    }

    /// `saved`, `draft` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordState::Saved => "saved",
            RecordState::Draft => "draft",
            RecordState::None => "none",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenancy_speaks_its_providers_words_and_starts_its_record() {
        let t = Tenancy {
            tenant: TenantId::new("acme").unwrap(),
            provider: ProviderKey::TrelloCloud,
        };
        assert_eq!(t.vocabulary(), ProviderKey::TrelloCloud.vocabulary());
        assert_eq!(t.blank_record().provider_key, ProviderKey::TrelloCloud);
        let l = Tenancy {
            provider: ProviderKey::LinearCloud,
            ..t
        };
        assert_eq!(l.vocabulary(), ProviderKey::LinearCloud.vocabulary());
        assert_eq!(l.blank_record().provider_key, ProviderKey::LinearCloud);
    }

    #[test]
    fn record_states_are_named_as_the_json_names_them() {
        let t = Tenancy {
            tenant: TenantId::new("acme").unwrap(),
            provider: ProviderKey::TrelloCloud,
        };
        let saved = t.blank_record();
        let draft = saved.clone().into_draft(vec![]);
        assert_eq!(RecordState::of(None).as_str(), "none");
        assert_eq!(RecordState::of(Some(&saved)).as_str(), "saved");
        assert_eq!(RecordState::of(Some(&draft)).as_str(), "draft");
        assert_eq!(
            serde_json::to_string(&RecordState::Draft).unwrap(),
            "\"draft\""
        );
    }
}
