//! The use cases a multi-request front end (the server) runs for setup: save then
//! register the webhook, revoke (held token, kept choices, webhook, token), and which
//! tracker an export goes to; with the fake tracker, the memory store and small
//! in-memory accounts and webhook registry that log what was done, in order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use webriskops_domain::{AuthMethod, ProviderKey, Role, TenantId, Token};
use webriskops_fake::{FakeTracker, FakeWorld, MemoryStore};
use webriskops_ports::{
    Accounts, HookRecord, PendingAuthorization, PortError, PortResult, Principal, ProviderStore,
    SecretStore, SignInFailures, TrackerWebhooks, UserRecord, WebhookHealth, WebhookRegistration,
    WebhookRegistry,
};
use webriskops_service::integration::{self, ExportTracker, SaveReport, SetupPorts, TrackerSource};
use webriskops_service::{
    CompanionSecret, RevokeReport, ServiceError, ServicePorts, SetupChoices, Tenancy, Tracker,
};

type Log = Arc<Mutex<Vec<String>>>;

fn note(log: &Log, what: impl Into<String>) {
    log.lock().unwrap().push(what.into());
}

fn tenancy() -> Tenancy {
    Tenancy {
        tenant: TenantId::new("acme").unwrap(),
        provider: ProviderKey::TrelloCloud,
    }
}

type Key = (TenantId, ProviderKey);

/// Held tokens, kept choices and authorizations in memory; what else `Accounts` offers is
/// not used by these use cases.
#[derive(Debug, Default)]
struct MemAccounts {
    held: Mutex<HashMap<Key, DateTime<Utc>>>,
    pending: Mutex<HashMap<Key, String>>,
    log: Log,
}

#[async_trait]
impl Accounts for MemAccounts {
    async fn add_tenant(&self, _: &TenantId, _: DateTime<Utc>) -> PortResult<bool> {
        unreachable!("not used by setup")
    }
    async fn tenant_exists(&self, _: &TenantId) -> PortResult<bool> {
        unreachable!("not used by setup")
    }
    async fn tenants(&self) -> PortResult<Vec<TenantId>> {
        unreachable!("not used by setup")
    }
    async fn put_user(
        &self,
        _: &TenantId,
        _: &str,
        _: Role,
        _: &str,
        _: DateTime<Utc>,
    ) -> PortResult<bool> {
        unreachable!("not used by setup")
    }
    async fn user_by_email(&self, _: &str) -> PortResult<Option<UserRecord>> {
        unreachable!("not used by setup")
    }
    async fn add_api_token(
        &self,
        _: &TenantId,
        _: Role,
        _: &str,
        _: DateTime<Utc>,
    ) -> PortResult<i64> {
        unreachable!("not used by setup")
    }
    async fn api_token(&self, _: &str) -> PortResult<Option<Principal>> {
        unreachable!("not used by setup")
    }
    async fn add_session(&self, _: &str, _: i64, _: DateTime<Utc>) -> PortResult<()> {
        unreachable!("not used by setup")
    }
    async fn session(&self, _: &str, _: DateTime<Utc>) -> PortResult<Option<Principal>> {
        unreachable!("not used by setup")
    }
    async fn end_session(&self, _: &str) -> PortResult<()> {
        unreachable!("not used by setup")
    }
    async fn hold_token_until(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
        expires_at: DateTime<Utc>,
    ) -> PortResult<()> {
        note(&self.log, "hold");
        self.held
            .lock()
            .unwrap()
            .insert((tenant.clone(), provider), expires_at);
        Ok(())
    }
    async fn held_until(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
    ) -> PortResult<Option<DateTime<Utc>>> {
        Ok(self
            .held
            .lock()
            .unwrap()
            .get(&(tenant.clone(), provider))
            .copied())
    }
    async fn release_held(&self, tenant: &TenantId, provider: ProviderKey) -> PortResult<()> {
        note(&self.log, "release held");
        self.held
            .lock()
            .unwrap()
            .remove(&(tenant.clone(), provider));
        Ok(())
    }
    async fn expired_holds(&self, now: DateTime<Utc>) -> PortResult<Vec<(TenantId, ProviderKey)>> {
        Ok(self
            .held
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(k, _)| k.clone())
            .collect())
    }
    async fn put_pending_choices(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
        choices_json: &str,
    ) -> PortResult<()> {
        self.pending
            .lock()
            .unwrap()
            .insert((tenant.clone(), provider), choices_json.to_owned());
        Ok(())
    }
    async fn pending_choices(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
    ) -> PortResult<Option<String>> {
        Ok(self
            .pending
            .lock()
            .unwrap()
            .get(&(tenant.clone(), provider))
            .cloned())
    }
    async fn clear_pending_choices(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
    ) -> PortResult<()> {
        note(&self.log, "clear choices");
        self.pending
            .lock()
            .unwrap()
            .remove(&(tenant.clone(), provider));
        Ok(())
    }
    async fn put_authorization(&self, _: &PendingAuthorization) -> PortResult<()> {
        unreachable!("not used by setup")
    }
    async fn take_authorization(
        &self,
        _: &str,
        _: DateTime<Utc>,
    ) -> PortResult<Option<PendingAuthorization>> {
        unreachable!("not used by setup")
    }
    async fn delete_expired_authorizations(&self, _: DateTime<Utc>) -> PortResult<u64> {
        unreachable!("not used by setup")
    }
    async fn sign_in_failed(
        &self,
        _: &str,
        _: DateTime<Utc>,
        _: TimeDelta,
    ) -> PortResult<SignInFailures> {
        unreachable!("not used by setup")
    }
    async fn sign_in_failures(
        &self,
        _: &str,
        _: DateTime<Utc>,
        _: TimeDelta,
    ) -> PortResult<Option<SignInFailures>> {
        unreachable!("not used by setup")
    }
    async fn forget_sign_in_failures(&self, _: &str) -> PortResult<()> {
        unreachable!("not used by setup")
    }
}

/// Webhook registrations in memory.
#[derive(Debug, Default)]
struct MemRegistry {
    hooks: Mutex<HashMap<Key, HookRecord>>,
    log: Log,
}

#[async_trait]
impl WebhookRegistry for MemRegistry {
    async fn put_hook(&self, hook: &HookRecord) -> PortResult<()> {
        note(&self.log, "keep hook");
        self.hooks
            .lock()
            .unwrap()
            .insert((hook.tenant.clone(), hook.provider), hook.clone());
        Ok(())
    }
    async fn hook(&self, opaque_id: &str) -> PortResult<Option<HookRecord>> {
        Ok(self
            .hooks
            .lock()
            .unwrap()
            .values()
            .find(|h| h.opaque_id == opaque_id)
            .cloned())
    }
    async fn hook_of(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
    ) -> PortResult<Option<HookRecord>> {
        Ok(self
            .hooks
            .lock()
            .unwrap()
            .get(&(tenant.clone(), provider))
            .cloned())
    }
    async fn delete_hook(&self, tenant: &TenantId, provider: ProviderKey) -> PortResult<()> {
        note(&self.log, "forget hook");
        self.hooks
            .lock()
            .unwrap()
            .remove(&(tenant.clone(), provider));
        Ok(())
    }
    async fn record_delivery(&self, _: &str, _: &str, _: DateTime<Utc>) -> PortResult<bool> {
        unreachable!("not used by setup")
    }
    async fn record_rejection(&self, _: &str) -> PortResult<()> {
        unreachable!("not used by setup")
    }
}

/// The tracker's webhooks: each call logged with whether the record was saved by then and
/// how many times the token was revoked by then; `refuse` makes registration fail.
#[derive(Debug)]
struct Hooks {
    fake: FakeTracker,
    store: Arc<MemoryStore>,
    refuse: bool,
    log: Log,
}

#[async_trait]
impl TrackerWebhooks for Hooks {
    async fn register(
        &self,
        scope_id: &str,
        callback_url: &str,
    ) -> PortResult<WebhookRegistration> {
        let t = tenancy();
        let saved = self
            .store
            .load(&t.tenant, t.provider)
            .await?
            .is_some_and(|r| !r.is_draft());
        note(&self.log, format!("register (saved: {saved})"));
        if self.refuse {
            return Err(PortError::InvalidInput {
                message: "the callback did not answer 200".into(),
                context: Default::default(),
            });
        }
        Ok(WebhookRegistration {
            id: "hook-1".into(),
            secret: None,
            callback_url: callback_url.to_owned(),
            scope_id: scope_id.to_owned(),
        })
    }
    async fn delete(&self, id: &str) -> PortResult<()> {
        let revoked = self.fake.count("revoke_token");
        note(
            &self.log,
            format!("delete {id} (revoked before: {revoked})"),
        );
        Ok(())
    }
    async fn health(&self, _: &str) -> PortResult<Option<WebhookHealth>> {
        Ok(None)
    }
}

/// The front end's part: the fake tracker for any token, and a companion secret.
struct Source {
    tracker: Tracker,
    asked: Log,
}

#[async_trait]
impl TrackerSource for Source {
    type Error = ServiceError;

    async fn tracker(
        &self,
        _: &Tenancy,
        token: Option<&Token>,
    ) -> Result<Option<Tracker>, ServiceError> {
        note(
            &self.asked,
            format!(
                "tracker with {}",
                token.map_or("the stored token", Token::expose)
            ),
        );
        Ok(Some(self.tracker.clone()))
    }

    fn companions(&self, who: &Tenancy) -> Result<Vec<CompanionSecret>, ServiceError> {
        Ok(vec![CompanionSecret {
            reference: webriskops_domain::CredentialRef(format!("{}/api_key", who.tenant)),
            secret: Token::new("key-secret-0002").unwrap(),
        }])
    }
}

struct World {
    fake: FakeWorld,
    store: Arc<MemoryStore>,
    accounts: Arc<MemAccounts>,
    registry: Arc<MemRegistry>,
    source: Source,
    log: Log,
}

impl World {
    fn new(refuse_webhooks: bool) -> Self {
        let fake = FakeTracker::standard();
        let store = Arc::new(MemoryStore::new());
        let log = Log::default();
        let hooks = Hooks {
            fake: fake.tracker.clone(),
            store: store.clone(),
            refuse: refuse_webhooks,
            log: log.clone(),
        };
        let tracker = Tracker::new(Arc::new(fake.tracker.clone())).with_webhooks(Arc::new(hooks));
        Self {
            accounts: Arc::new(MemAccounts {
                log: log.clone(),
                ..MemAccounts::default()
            }),
            registry: Arc::new(MemRegistry {
                log: log.clone(),
                ..MemRegistry::default()
            }),
            source: Source {
                tracker,
                asked: log.clone(),
            },
            fake,
            store,
            log,
        }
    }

    fn ports(&self) -> SetupPorts {
        SetupPorts {
            local: ServicePorts::from_store(self.store.clone()),
            accounts: self.accounts.clone(),
            webhooks: self.registry.clone(),
        }
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Holds a token and makes every choice of a ready setup, as the pages do over
    /// several requests.
    async fn ready_setup(&self) {
        let sp = self.ports();
        integration::hold_token(
            &sp.local,
            sp.accounts.as_ref(),
            &tenancy(),
            &Token::new("held-token-0001").unwrap(),
            Utc::now(),
        )
        .await
        .unwrap();
        let choices = SetupChoices {
            board_id: Some(self.fake.board_id.clone()),
            list_id: Some(self.fake.list_id.clone()),
            done_list_id: Some(self.fake.done_list_id.clone()),
            confirm_revoke_path: true,
            ..SetupChoices::default()
        };
        let (outcome, held) =
            integration::check_step(&sp, &self.source, &tenancy(), choices, None, Utc::now())
                .await
                .unwrap();
        assert!(outcome.is_ready(), "{:?}", outcome.readiness);
        assert!(held.is_some());
        self.log.lock().unwrap().clear();
    }

    async fn save(&self) -> SaveReport {
        integration::save_and_connect(
            &self.ports(),
            &self.source,
            &tenancy(),
            None,
            "https://wro.example",
            Utc::now(),
        )
        .await
        .unwrap()
    }
}

#[tokio::test]
async fn save_stores_the_setup_with_the_held_token_then_registers_the_webhook() {
    let w = World::new(false);
    w.ready_setup().await;
    let SaveReport::Saved { outcome, webhook } = w.save().await else {
        panic!("not saved")
    };
    assert!(outcome.saved);
    let hook = webhook.expect("a webhook is registered");
    assert_eq!(hook.scope_id, w.fake.board_id);
    assert!(hook
        .callback_url
        .starts_with("https://wro.example/hooks/trello/"));
    // The held token was composed into the tracker; the record was saved before the
    // webhook was registered, and the registration kept; the setup in progress is gone.
    assert_eq!(
        w.log(),
        [
            "tracker with held-token-0001",
            "release held",
            "clear choices",
            "register (saved: true)",
            "keep hook",
        ]
    );
    let t = tenancy();
    let record = w.store.load(&t.tenant, t.provider).await.unwrap().unwrap();
    let stored = w
        .store
        .get_token(
            record.credential.as_ref().unwrap(),
            &webriskops_service::secret_binding(&record),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.expose(), "held-token-0001");
    assert_eq!(
        w.accounts.held_until(&t.tenant, t.provider).await.unwrap(),
        None
    );
    assert!(w
        .registry
        .hook_of(&t.tenant, t.provider)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn a_webhook_the_tracker_refuses_leaves_the_setup_saved() {
    let w = World::new(true);
    w.ready_setup().await;
    let SaveReport::Saved { outcome, webhook } = w.save().await else {
        panic!("not saved")
    };
    assert!(outcome.saved);
    assert!(webhook.is_none());
    let t = tenancy();
    assert!(w.store.load(&t.tenant, t.provider).await.unwrap().is_some());
    assert!(w
        .registry
        .hook_of(&t.tenant, t.provider)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn without_a_held_token_save_asks_for_no_tracker_and_saves_nothing() {
    let w = World::new(false);
    assert!(matches!(w.save().await, SaveReport::NoTokenHeld));
    assert!(w.log().is_empty(), "{:?}", w.log());
    let t = tenancy();
    assert!(w.store.load(&t.tenant, t.provider).await.unwrap().is_none());
}

#[tokio::test]
async fn a_blocked_save_registers_no_webhook() {
    let w = World::new(false);
    let sp = w.ports();
    integration::hold_token(
        &sp.local,
        sp.accounts.as_ref(),
        &tenancy(),
        &Token::new("held-token-0001").unwrap(),
        Utc::now(),
    )
    .await
    .unwrap();
    let err = integration::save_and_connect(
        &sp,
        &w.source,
        &tenancy(),
        None,
        "https://wro.example",
        Utc::now(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ServiceError::Blocked(_)), "{err}");
    assert!(
        !w.log().iter().any(|l| l.starts_with("register")),
        "{:?}",
        w.log()
    );
}

#[tokio::test]
async fn revoke_forgets_the_setup_in_progress_and_deletes_the_webhook_before_the_token() {
    let w = World::new(false);
    w.ready_setup().await;
    assert!(matches!(w.save().await, SaveReport::Saved { .. }));
    // A new setup in progress: a held token and kept choices.
    w.ready_setup().await;
    let report = integration::revoke_setup(&w.ports(), &w.source, &tenancy())
        .await
        .unwrap();
    let RevokeReport::Revoked { outcome, .. } = report else {
        panic!("nothing revoked: {report:?}")
    };
    assert!(outcome.revoked_at_tracker && outcome.deleted_locally);
    assert_eq!(w.fake.tracker.count("revoke_token"), 1);
    assert_eq!(
        w.log(),
        [
            "tracker with the stored token",
            "release held",
            "clear choices",
            "delete hook-1 (revoked before: 0)",
            "forget hook",
        ]
    );
    let t = tenancy();
    assert_eq!(
        w.accounts
            .pending_choices(&t.tenant, t.provider)
            .await
            .unwrap(),
        None
    );
    let record = w.store.load(&t.tenant, t.provider).await.unwrap().unwrap();
    assert!(record.credential.is_none());
}

#[tokio::test]
async fn an_export_goes_to_the_named_tracker_else_the_only_one_set_up() {
    let store = MemoryStore::new();
    let acme = TenantId::new("acme").unwrap();
    let which = |named| {
        let store = store.clone();
        let acme = acme.clone();
        async move {
            integration::export_tracker(&store, &acme, named)
                .await
                .unwrap()
        }
    };
    assert_eq!(which(None).await, ExportTracker::NoneSetUp);
    assert_eq!(
        which(Some(ProviderKey::LinearCloud)).await,
        ExportTracker::Chosen(ProviderKey::LinearCloud)
    );
    // A draft counts: the portable fallback can use it.
    let draft = webriskops_domain::ProviderRecord::new_trello(acme.clone());
    store.save(&draft).await.unwrap();
    assert_eq!(
        which(None).await,
        ExportTracker::Chosen(ProviderKey::TrelloCloud)
    );
    let mut linear = draft.clone();
    linear.provider_key = ProviderKey::LinearCloud;
    store.save(&linear).await.unwrap();
    assert_eq!(which(None).await, ExportTracker::Several);
    assert_eq!(
        which(Some(ProviderKey::TrelloCloud)).await,
        ExportTracker::Chosen(ProviderKey::TrelloCloud)
    );
    // Another tenant's records are not this tenant's.
    let other = TenantId::new("globex").unwrap();
    assert_eq!(
        integration::export_tracker(&store, &other, None)
            .await
            .unwrap(),
        ExportTracker::NoneSetUp
    );
}

#[tokio::test]
async fn a_token_from_the_trackers_authorization_is_held_with_how_it_was_obtained() {
    let w = World::new(false);
    let sp = w.ports();
    let now = Utc::now();
    let accounts = sp.accounts.as_ref();
    // OAuth 1.0: held, and the method recorded by a step checked with the held token.
    let until = integration::hold_authorized(
        &sp,
        &w.source,
        &tenancy(),
        &Token::new("oauth1-token-0003").unwrap(),
        Some(AuthMethod::Oauth1),
        None,
        now,
    )
    .await
    .unwrap();
    assert_eq!(until, now + integration::HOLD_TTL);
    let held = integration::held_token(&sp.local, accounts, &tenancy(), now)
        .await
        .unwrap();
    assert_eq!(held.unwrap().expose(), "oauth1-token-0003");
    let choices = integration::pending_choices(accounts, &tenancy())
        .await
        .unwrap();
    assert_eq!(choices.auth_method, Some(AuthMethod::Oauth1));
    assert!(
        w.log()
            .contains(&"tracker with oauth1-token-0003".to_owned()),
        "the step is checked with the held token: {:?}",
        w.log()
    );

    // A flow that makes a plain token (OAuth2) holds it as one, over the earlier method,
    // and asks the tracker nothing.
    w.log.lock().unwrap().clear();
    integration::hold_authorized(
        &sp,
        &w.source,
        &tenancy(),
        &Token::new("oauth2-token-0004").unwrap(),
        None,
        None,
        now,
    )
    .await
    .unwrap();
    let choices = integration::pending_choices(accounts, &tenancy())
        .await
        .unwrap();
    assert_eq!(choices.auth_method, Some(AuthMethod::ApiKeyToken));
    let held = integration::held_token(&sp.local, accounts, &tenancy(), now)
        .await
        .unwrap();
    assert_eq!(held.unwrap().expose(), "oauth2-token-0004");
    assert!(
        !w.log().iter().any(|l| l.starts_with("tracker with")),
        "{:?}",
        w.log()
    );
}
