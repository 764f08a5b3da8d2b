//! The store conformance suite: plain async functions every store (SQLite, PostgreSQL)
//! must pass, so that the engines keep one meaning for every port.
//!
//! Call each from the store's own tests (`#[tokio::test]`) with a fresh, empty store
//! ([`Stores`]); each function panics with a message naming the broken rule. Times the
//! suite stores are whole microseconds (PostgreSQL keeps no finer).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use futures::future::join_all;
use webriskops_domain::{
    CredentialRef, FindingId, ItemId, LedgerEntry, ProviderKey, ProviderRecord, Role, TargetState,
    TenantId, Token, TrackerStatus,
};

use crate::accounts::{
    Accounts, EventChange, EventLog, ExportJob, ExportJobs, HookRecord, JobState,
    PendingAuthorization, SignInFailures, WebhookRegistry,
};
use crate::error::PortError;
use crate::queue::{JobEnd, JobKind, JobQueue, JobUploads};
use crate::store::{
    ExportLedger, IntentOutcome, LedgerScope, ProviderStore, RunJournal, RunKind, SecretStore,
};

/// Every port of one store, over one fresh database.
#[derive(Debug, Clone)]
pub struct Stores {
    pub providers: Arc<dyn ProviderStore>,
    pub ledger: Arc<dyn ExportLedger>,
    pub journal: Arc<dyn RunJournal>,
    /// Sealing with a master key.
    pub secrets: Arc<dyn SecretStore>,
    pub accounts: Arc<dyn Accounts>,
    pub jobs: Arc<dyn ExportJobs>,
    pub events: Arc<dyn EventLog>,
    pub queue: Arc<dyn JobQueue>,
    pub uploads: Arc<dyn JobUploads>,
    pub hooks: Arc<dyn WebhookRegistry>,
}

fn tenant(name: &str) -> TenantId {
    TenantId::new(name).expect("valid tenant")
}

/// Two different providers, named without naming a tracker.
fn providers() -> (ProviderKey, ProviderKey) {
    (
        ProviderKey::ALL[0],
        ProviderKey::ALL[1 % ProviderKey::ALL.len()],
    )
}

/// A fixed instant in whole microseconds, plus `seconds`.
fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_780_000_000 + seconds, 123_456_000).expect("valid time")
}

/// A change of its own finding (`finding`), opening its item: never a repeat of another.
fn change_of(finding: &str) -> EventChange {
    EventChange {
        finding_id: finding.to_owned(),
        item_id: format!("item-{finding}"),
        previous: TrackerStatus::Done,
        status: TrackerStatus::Open,
    }
}

/// Appends `json` as the only event of finding `finding`, expecting a cursor.
async fn append_new(
    events: &dyn EventLog,
    t: &TenantId,
    finding: &str,
    json: &str,
    now: DateTime<Utc>,
) -> i64 {
    events
        .append_event(t, &change_of(finding), json, now)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("the first event of {finding} is appended"))
}

fn entry(n: usize, fingerprint: &str) -> LedgerEntry {
    LedgerEntry {
        finding_id: FindingId::new(format!("conf-f-{n:04}")).expect("valid id"),
        item_id: ItemId::new(format!("item{n}")).expect("valid id"),
        item_url: (n % 2 == 0).then(|| format!("https://items.example/i/{n}")),
        fingerprint: fingerprint.to_owned(),
        target: TargetState::Open,
        observed: TrackerStatus::Open,
        updated_at: at(n as i64),
    }
}

/// Provider records: none until saved, saved whole, replaced, deleted, per tenant and
/// provider.
pub async fn records(s: &Stores) {
    let (p1, p2) = providers();
    let acme = tenant("acme");
    assert_eq!(
        s.providers.load(&acme, p1).await.unwrap(),
        None,
        "an unsaved record loads as None"
    );
    let mut record = ProviderRecord::new(acme.clone(), p1);
    record.base_url = None;
    record.revoke_path_confirmed = true;
    record.credential = Some(CredentialRef::for_provider(&acme, p1));
    s.providers.save(&record).await.unwrap();
    assert_eq!(
        s.providers.load(&acme, p1).await.unwrap(),
        Some(record.clone()),
        "a saved record loads back equal"
    );
    record.revoke_path_confirmed = false;
    s.providers.save(&record).await.unwrap();
    assert_eq!(
        s.providers.load(&acme, p1).await.unwrap(),
        Some(record.clone()),
        "save replaces the record"
    );
    if p2 != p1 {
        assert_eq!(s.providers.load(&acme, p2).await.unwrap(), None);
    }
    assert_eq!(
        s.providers.load(&tenant("globex"), p1).await.unwrap(),
        None,
        "another tenant sees no record"
    );
    s.providers.delete(&acme, p1).await.unwrap();
    assert_eq!(s.providers.load(&acme, p1).await.unwrap(), None);
    s.providers.delete(&acme, p1).await.unwrap();
}

/// The ledger: entries per scope, put replaces, put_many, all in finding order, clear
/// counts and touches no other scope.
pub async fn ledger(s: &Stores) {
    let (p1, _) = providers();
    let scope = |t: &str, c: &str| LedgerScope {
        tenant: tenant(t),
        provider: p1,
        container_id: c.to_owned(),
    };
    let (a, b, other) = (
        scope("acme", "c1"),
        scope("acme", "c2"),
        scope("globex", "c1"),
    );
    let first = entry(1, "fp-1");
    assert_eq!(s.ledger.get(&a, &first.finding_id).await.unwrap(), None);
    s.ledger.put(&a, &first).await.unwrap();
    assert_eq!(
        s.ledger.get(&a, &first.finding_id).await.unwrap(),
        Some(first.clone()),
        "an entry reads back equal"
    );
    let changed = LedgerEntry {
        fingerprint: "fp-1b".into(),
        observed: TrackerStatus::Done,
        target: TargetState::Done,
        ..first.clone()
    };
    s.ledger.put(&a, &changed).await.unwrap();
    assert_eq!(
        s.ledger.get(&a, &first.finding_id).await.unwrap(),
        Some(changed.clone()),
        "put replaces"
    );
    let many: Vec<LedgerEntry> = (2..40).rev().map(|n| entry(n, "fp")).collect();
    s.ledger.put_many(&a, &many).await.unwrap();
    s.ledger.put_many(&a, &[]).await.unwrap();
    let all = s.ledger.all(&a).await.unwrap();
    assert_eq!(all.len(), 39);
    let ids: Vec<&str> = all.iter().map(|e| e.finding_id.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "all() is in finding order");
    s.ledger.put(&b, &entry(1, "other")).await.unwrap();
    s.ledger.put(&other, &entry(1, "other")).await.unwrap();
    assert_eq!(
        s.ledger.get(&a, &first.finding_id).await.unwrap(),
        Some(changed),
        "scopes are separate"
    );
    assert_eq!(s.ledger.clear(&a).await.unwrap(), 39, "clear counts");
    assert!(s.ledger.all(&a).await.unwrap().is_empty());
    assert_eq!(
        s.ledger.all(&b).await.unwrap().len(),
        1,
        "clear keeps other scopes"
    );
    assert_eq!(s.ledger.all(&other).await.unwrap().len(), 1);
}

/// The journal: intents without outcome are unfinished (per tenant) until settled once;
/// unknown runs and intents are `NotFound`; the last run of each kind with its summary,
/// per provider.
pub async fn journal(s: &Stores) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let (p1, p2) = providers();
    let run = s
        .journal
        .start_run(&acme, p1, RunKind::Export)
        .await
        .unwrap();
    let theirs = s
        .journal
        .start_run(&globex, p1, RunKind::Export)
        .await
        .unwrap();
    assert!(theirs.0 > run.0, "run ids increase");
    let f = |n: usize| FindingId::new(format!("conf-j-{n}")).unwrap();
    let done = s.journal.record_intent(run, &f(1), "create").await.unwrap();
    let open = s.journal.record_intent(run, &f(2), "update").await.unwrap();
    let failed = s.journal.record_intent(run, &f(3), "create").await.unwrap();
    s.journal
        .record_intent(theirs, &f(9), "create")
        .await
        .unwrap();
    assert!(done < open && open < failed, "intent ids increase");
    s.journal
        .record_outcome(
            done,
            &IntentOutcome::Done {
                item_id: Some("i1".into()),
            },
        )
        .await
        .unwrap();
    s.journal
        .record_outcome(
            failed,
            &IntentOutcome::Failed {
                error: "refused".into(),
            },
        )
        .await
        .unwrap();
    let unfinished = s.journal.unfinished(&acme).await.unwrap();
    assert_eq!(
        unfinished.len(),
        1,
        "only the intent without outcome: {unfinished:?}"
    );
    assert_eq!(unfinished[0].id, open);
    assert_eq!(unfinished[0].run, run);
    assert_eq!(unfinished[0].finding_id, f(2));
    assert_eq!(unfinished[0].action, "update");

    let unknown_run = crate::store::RunId(theirs.0 + 1000);
    let err = s.journal.record_intent(unknown_run, &f(4), "create").await;
    assert!(matches!(err, Err(PortError::NotFound { .. })), "{err:?}");
    let err = s
        .journal
        .record_outcome(failed + 1000, &IntentOutcome::Done { item_id: None })
        .await;
    assert!(matches!(err, Err(PortError::NotFound { .. })), "{err:?}");
    let err = s.journal.finish_run(unknown_run, "{}").await;
    assert!(matches!(err, Err(PortError::NotFound { .. })), "{err:?}");

    s.journal.finish_run(run, r#"{"created":1}"#).await.unwrap();
    let later = s
        .journal
        .start_run(&acme, p1, RunKind::Export)
        .await
        .unwrap();
    assert_eq!(s.journal.settle_unfinished(&acme, later).await.unwrap(), 1);
    assert_eq!(
        s.journal.settle_unfinished(&acme, later).await.unwrap(),
        0,
        "settled once"
    );
    assert!(s.journal.unfinished(&acme).await.unwrap().is_empty());
    assert_eq!(
        s.journal.unfinished(&globex).await.unwrap().len(),
        1,
        "another tenant's intents stay"
    );
    let last = s
        .journal
        .last_run(&acme, p1, RunKind::Export)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.id, later, "the latest run of the kind");
    assert_eq!(last.finished_at, None);
    s.journal
        .finish_run(later, r#"{"created":0}"#)
        .await
        .unwrap();
    let last = s
        .journal
        .last_run(&acme, p1, RunKind::Export)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.summary_json.as_deref(), Some(r#"{"created":0}"#));
    assert_eq!(last.kind, RunKind::Export);
    assert!(last.finished_at.is_some_and(|t| t >= last.started_at));
    assert_eq!(
        s.journal.last_run(&acme, p1, RunKind::Sync).await.unwrap(),
        None
    );
    assert_eq!(
        s.journal
            .last_run(&acme, p2, RunKind::Export)
            .await
            .unwrap(),
        None,
        "another provider's runs are not the provider's"
    );
    let other = s
        .journal
        .start_run(&acme, p2, RunKind::Export)
        .await
        .unwrap();
    assert_eq!(
        s.journal
            .last_run(&acme, p2, RunKind::Export)
            .await
            .unwrap()
            .map(|r| r.id),
        Some(other)
    );
    assert_eq!(
        s.journal
            .last_run(&acme, p1, RunKind::Export)
            .await
            .unwrap()
            .map(|r| r.id),
        Some(later),
        "a later run with another provider does not hide the provider's own"
    );
}

/// A token-shaped value that no test writes twice.
fn token(n: u32) -> Token {
    Token::new(format!("conf0{n:04}{}", "9f".repeat(30))).expect("valid token")
}

/// Secrets: round trip, delete, the binding enforced (get and replace), replace of a
/// missing secret; then the store is closed and `reopen_with_another_key` opens the same
/// database with another master key: the secret is refused as undecryptable, never
/// answered as missing, and the message names the key to provide.
pub async fn secrets<F, Fut>(s: Stores, reopen_with_another_key: F)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Arc<dyn SecretStore>>,
{
    let (p1, _) = providers();
    let acme = tenant("acme");
    let reference = CredentialRef::for_provider(&acme, p1);
    let binding = format!("acme/{p1}@https://api.example/1");
    let other_binding = format!("acme/{p1}@https://other.example/1");
    assert_eq!(
        s.secrets.get_token(&reference, &binding).await.unwrap(),
        None
    );
    let missing = s
        .secrets
        .replace_token(&reference, &binding, &token(1))
        .await;
    assert!(
        matches!(missing, Err(PortError::NotFound { .. })),
        "{missing:?}"
    );
    assert_eq!(
        s.secrets.get_token(&reference, &binding).await.unwrap(),
        None,
        "a refused replace stores nothing"
    );
    s.secrets
        .put_token(&reference, &binding, &token(1))
        .await
        .unwrap();
    assert_eq!(
        s.secrets.get_token(&reference, &binding).await.unwrap(),
        Some(token(1))
    );
    s.secrets
        .put_token(&reference, &binding, &token(2))
        .await
        .unwrap();
    assert_eq!(
        s.secrets.get_token(&reference, &binding).await.unwrap(),
        Some(token(2)),
        "put replaces"
    );
    let err = s
        .secrets
        .get_token(&reference, &other_binding)
        .await
        .unwrap_err();
    assert!(
        matches!(err, PortError::Conflict { .. }),
        "another binding: {err:?}"
    );
    assert!(err.to_string().contains("run setup again"), "{err}");
    let err = s
        .secrets
        .replace_token(&reference, &other_binding, &token(3))
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::Conflict { .. }), "{err:?}");
    assert_eq!(
        s.secrets.get_token(&reference, &binding).await.unwrap(),
        Some(token(2)),
        "a replace for another binding leaves the secret"
    );
    s.secrets
        .replace_token(&reference, &binding, &token(4))
        .await
        .unwrap();
    assert_eq!(
        s.secrets.get_token(&reference, &binding).await.unwrap(),
        Some(token(4))
    );
    let other_ref = CredentialRef::for_provider(&tenant("globex"), p1);
    assert_eq!(
        s.secrets.get_token(&other_ref, &binding).await.unwrap(),
        None
    );
    s.secrets
        .put_token(&other_ref, "globex", &token(5))
        .await
        .unwrap();
    s.secrets.delete_token(&other_ref).await.unwrap();
    assert_eq!(
        s.secrets.get_token(&other_ref, "globex").await.unwrap(),
        None
    );
    assert_eq!(
        s.secrets.get_token(&reference, &binding).await.unwrap(),
        Some(token(4)),
        "delete touches only its reference"
    );

    drop(s);
    let other_key = reopen_with_another_key().await;
    let err = other_key.get_token(&reference, &binding).await.unwrap_err();
    assert!(
        matches!(err, PortError::Conflict { .. }),
        "a wrong key: {err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("cannot be decrypted: wrong master key or tampered data"),
        "{text}"
    );
    assert!(text.contains("WEBRISKOPS_MASTER_KEY"), "{text}");
    assert!(!text.contains(token(4).expose()), "{text}");
}

/// Accounts: tenants, people (e-mails unique across tenants, compared without case),
/// API tokens, sessions that expire, held tokens and pending choices.
pub async fn accounts(s: &Stores) {
    let a = &s.accounts;
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    assert!(a.add_tenant(&globex, at(0)).await.unwrap());
    assert!(a.add_tenant(&acme, at(0)).await.unwrap());
    assert!(
        !a.add_tenant(&acme, at(1)).await.unwrap(),
        "a tenant is added once"
    );
    assert!(a.tenant_exists(&acme).await.unwrap());
    assert!(!a.tenant_exists(&tenant("initech")).await.unwrap());
    assert_eq!(
        a.tenants().await.unwrap(),
        vec![acme.clone(), globex.clone()]
    );

    assert!(a
        .put_user(&acme, "Ann@Acme.example", Role::Admin, "hash-1", at(0))
        .await
        .unwrap());
    assert!(
        !a.put_user(&globex, "ann@acme.example", Role::Admin, "hash-x", at(0))
            .await
            .unwrap(),
        "an e-mail belongs to one tenant"
    );
    let ann = a
        .user_by_email("ANN@acme.example")
        .await
        .unwrap()
        .expect("found without case");
    assert_eq!(ann.tenant, acme);
    assert_eq!(ann.role, Role::Admin);
    assert_eq!(ann.password_hash, "hash-1");
    assert!(
        !format!("{ann:?}").contains("hash-1"),
        "Debug hides the hash"
    );
    assert_eq!(a.user_by_email("bob@acme.example").await.unwrap(), None);

    a.add_session("sess-1", ann.id, at(100)).await.unwrap();
    let who = a
        .session("sess-1", at(50))
        .await
        .unwrap()
        .expect("a live session");
    assert_eq!(who.tenant, acme);
    assert_eq!(who.role, Role::Admin);
    assert_eq!(who.subject, ann.email);
    assert_eq!(
        a.session("sess-1", at(100)).await.unwrap(),
        None,
        "expired at its end"
    );
    assert_eq!(
        a.session("sess-1", at(50)).await.unwrap(),
        None,
        "an expired session is removed"
    );
    a.add_session("sess-2", ann.id, at(100)).await.unwrap();
    a.end_session("sess-2").await.unwrap();
    assert_eq!(a.session("sess-2", at(0)).await.unwrap(), None);
    a.add_session("sess-3", ann.id, at(100)).await.unwrap();
    assert!(a
        .put_user(&acme, "ann@acme.example", Role::Viewer, "hash-2", at(1))
        .await
        .unwrap());
    let ann2 = a.user_by_email("ann@acme.example").await.unwrap().unwrap();
    assert_eq!(
        (ann2.id, ann2.role),
        (ann.id, Role::Viewer),
        "the same person, new role"
    );
    assert_eq!(ann2.password_hash, "hash-2");
    assert_eq!(
        a.session("sess-3", at(0)).await.unwrap(),
        None,
        "a new password ends the person's sessions"
    );

    let t1 = a
        .add_api_token(&acme, Role::Viewer, "digest-1", at(0))
        .await
        .unwrap();
    let t2 = a
        .add_api_token(&globex, Role::Admin, "digest-2", at(0))
        .await
        .unwrap();
    assert_ne!(t1, t2);
    let caller = a
        .api_token("digest-1")
        .await
        .unwrap()
        .expect("a known token");
    assert_eq!(caller.tenant, acme);
    assert_eq!(caller.role, Role::Viewer);
    assert_eq!(caller.subject, format!("api-token:{t1}"));
    assert_eq!(a.api_token("digest-3").await.unwrap(), None);

    let (p1, p2) = providers();
    assert_eq!(a.held_until(&acme, p1).await.unwrap(), None);
    a.hold_token_until(&acme, p1, at(10)).await.unwrap();
    a.hold_token_until(&acme, p1, at(20)).await.unwrap();
    assert_eq!(
        a.held_until(&acme, p1).await.unwrap(),
        Some(at(20)),
        "hold replaces"
    );
    assert_eq!(a.held_until(&globex, p1).await.unwrap(), None, "per tenant");
    if p2 != p1 {
        assert_eq!(a.held_until(&acme, p2).await.unwrap(), None, "per provider");
    }
    a.release_held(&acme, p1).await.unwrap();
    assert_eq!(a.held_until(&acme, p1).await.unwrap(), None);
    // The sweep's list: every tenant's holds expired by then, and only those.
    a.hold_token_until(&acme, p1, at(10)).await.unwrap();
    a.hold_token_until(&globex, p1, at(30)).await.unwrap();
    assert_eq!(a.expired_holds(at(9)).await.unwrap(), vec![]);
    assert_eq!(
        a.expired_holds(at(10)).await.unwrap(),
        vec![(acme.clone(), p1)],
        "expired at its expiry"
    );
    let mut both = a.expired_holds(at(40)).await.unwrap();
    both.sort_by(|x, y| x.0.as_str().cmp(y.0.as_str()));
    assert_eq!(both, vec![(acme.clone(), p1), (globex.clone(), p1)]);
    a.release_held(&acme, p1).await.unwrap();
    a.release_held(&globex, p1).await.unwrap();
    assert_eq!(a.expired_holds(at(40)).await.unwrap(), vec![], "released");

    assert_eq!(a.pending_choices(&acme, p1).await.unwrap(), None);
    a.put_pending_choices(&acme, p1, r#"{"a":1}"#)
        .await
        .unwrap();
    a.put_pending_choices(&acme, p1, r#"{"a":2}"#)
        .await
        .unwrap();
    assert_eq!(
        a.pending_choices(&acme, p1).await.unwrap().as_deref(),
        Some(r#"{"a":2}"#)
    );
    assert_eq!(a.pending_choices(&globex, p1).await.unwrap(), None);
    a.clear_pending_choices(&acme, p1).await.unwrap();
    assert_eq!(a.pending_choices(&acme, p1).await.unwrap(), None);
}

/// Authorizations in progress (used once, expired ones gone, the secret sealed and given
/// back whole) and failed sign-ins (counted, a window that passed starts again, forgotten
/// on success).
pub async fn sign_ins(s: &Stores) {
    let a = &s.accounts;
    let acme = tenant("acme");
    let (p1, _) = providers();
    let secret = Token::new("request-token-secret-0123456789").expect("valid token");
    let pending = PendingAuthorization {
        digest: "auth-digest-1".into(),
        tenant: acme.clone(),
        provider: p1,
        secret: Some(secret.clone()),
        auth_method: Some("oauth1".into()),
        expires_at: at(600),
    };
    a.put_authorization(&pending).await.unwrap();
    a.put_authorization(&PendingAuthorization {
        digest: "auth-digest-2".into(),
        secret: None,
        auth_method: None,
        expires_at: at(10),
        ..pending.clone()
    })
    .await
    .unwrap();
    assert_eq!(a.take_authorization("unknown", at(0)).await.unwrap(), None);
    let taken = a
        .take_authorization("auth-digest-1", at(1))
        .await
        .unwrap()
        .expect("a fresh authorization is found");
    assert_eq!(taken, pending, "given back whole, the secret opened");
    assert_eq!(
        a.take_authorization("auth-digest-1", at(2)).await.unwrap(),
        None,
        "used once"
    );
    assert_eq!(
        a.take_authorization("auth-digest-2", at(10)).await.unwrap(),
        None,
        "expired at its end"
    );
    // Two takers of one authorization at once: one gets it.
    a.put_authorization(&pending).await.unwrap();
    let both = join_all((0..2).map(|_| a.take_authorization("auth-digest-1", at(1)))).await;
    assert_eq!(
        both.into_iter()
            .filter(|t| matches!(t, Ok(Some(_))))
            .count(),
        1,
        "one taker only"
    );

    let window = TimeDelta::minutes(15);
    assert_eq!(a.sign_in_failures("k1", at(0), window).await.unwrap(), None);
    for n in 1..=3 {
        let f = a.sign_in_failed("k1", at(n), window).await.unwrap();
        assert_eq!((f.count, f.since), (n as u32, at(1)));
    }
    let counted = join_all((0..4).map(|_| a.sign_in_failed("k1", at(5), window))).await;
    assert!(counted.iter().all(Result::is_ok));
    assert_eq!(
        a.sign_in_failures("k1", at(6), window).await.unwrap(),
        Some(SignInFailures {
            count: 7,
            since: at(1)
        }),
        "failures counted at once are each counted"
    );
    assert_eq!(a.sign_in_failures("k2", at(6), window).await.unwrap(), None);
    assert_eq!(
        a.sign_in_failures("k1", at(1 + 15 * 60), window)
            .await
            .unwrap(),
        None,
        "the window has passed"
    );
    let again = a
        .sign_in_failed("k1", at(1 + 15 * 60), window)
        .await
        .unwrap();
    assert_eq!(
        (again.count, again.since),
        (1, at(1 + 15 * 60)),
        "counted anew"
    );
    a.forget_sign_in_failures("k1").await.unwrap();
    assert_eq!(
        a.sign_in_failures("k1", at(901), window).await.unwrap(),
        None
    );
}

fn job(id: &str, tenant_name: &str, created: i64, state: JobState) -> ExportJob {
    ExportJob {
        id: id.to_owned(),
        tenant: tenant(tenant_name),
        provider: providers().0,
        state,
        progress_json: "{}".into(),
        summary_json: None,
        bundle_dir: None,
        input_path: format!("/uploads/{id}.json"),
        // Not the default: a store must keep the policy it was given.
        fallback: "always".into(),
        created_at: at(created),
        finished_at: None,
    }
}

/// Export jobs: read within their tenant only (another tenant's id answers `None`),
/// newest first, updated whole; unfinished ones across tenants.
pub async fn jobs(s: &Stores) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let first = job("job-a1", "acme", 1, JobState::Queued);
    s.jobs.add_job(&first).await.unwrap();
    s.jobs
        .add_job(&job("job-a2", "acme", 2, JobState::Running))
        .await
        .unwrap();
    s.jobs
        .add_job(&job("job-a3", "acme", 3, JobState::Queued))
        .await
        .unwrap();
    s.jobs
        .add_job(&job("job-g1", "globex", 4, JobState::Queued))
        .await
        .unwrap();
    assert_eq!(
        s.jobs.job(&acme, "job-a1").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        s.jobs.job(&globex, "job-a1").await.unwrap(),
        None,
        "another tenant's job answers as unknown"
    );
    assert_eq!(s.jobs.job(&acme, "job-zz").await.unwrap(), None);
    let ids = |jobs: Vec<ExportJob>| jobs.into_iter().map(|j| j.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.jobs.jobs(&acme, 10).await.unwrap()),
        ["job-a3", "job-a2", "job-a1"]
    );
    assert_eq!(
        ids(s.jobs.jobs(&acme, 2).await.unwrap()),
        ["job-a3", "job-a2"]
    );
    assert_eq!(ids(s.jobs.jobs(&globex, 10).await.unwrap()), ["job-g1"]);

    let done = ExportJob {
        state: JobState::Done,
        progress_json: r#"{"done":3}"#.into(),
        summary_json: Some(r#"{"created":3}"#.into()),
        bundle_dir: Some("/bundles/b1".into()),
        finished_at: Some(at(9)),
        ..first.clone()
    };
    s.jobs.update_job(&done).await.unwrap();
    assert_eq!(s.jobs.job(&acme, "job-a1").await.unwrap(), Some(done));
    let foreign = ExportJob {
        tenant: globex.clone(),
        state: JobState::Failed,
        ..job("job-a3", "globex", 3, JobState::Failed)
    };
    s.jobs.update_job(&foreign).await.unwrap();
    assert_eq!(
        s.jobs.job(&acme, "job-a3").await.unwrap().map(|j| j.state),
        Some(JobState::Queued),
        "an update naming another tenant changes nothing"
    );
    let mut unfinished = ids(s.jobs.unfinished_jobs().await.unwrap());
    unfinished.sort();
    assert_eq!(unfinished, ["job-a2", "job-a3", "job-g1"]);
}

/// The status-event log: cursors increase, reads are in cursor order after a cursor,
/// bounded by the limit, and see only the tenant's events.
pub async fn events(s: &Stores) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let mut cursors = Vec::new();
    for n in 0..5 {
        cursors.push(
            append_new(
                s.events.as_ref(),
                &acme,
                &format!("n{n}"),
                &format!(r#"{{"n":{n}}}"#),
                at(n),
            )
            .await,
        );
        append_new(
            s.events.as_ref(),
            &globex,
            &format!("o{n}"),
            r#"{"other":true}"#,
            at(n),
        )
        .await;
    }
    assert!(
        cursors.windows(2).all(|w| w[0] < w[1]),
        "cursors increase: {cursors:?}"
    );
    let all = s.events.events_after(&acme, 0, 100).await.unwrap();
    assert_eq!(all.iter().map(|e| e.cursor).collect::<Vec<_>>(), cursors);
    assert!(
        all.iter().all(|e| !e.event_json.contains("other")),
        "only the tenant's events"
    );
    assert_eq!(all[0].event_json, r#"{"n":0}"#);
    let latest = s.events.latest_events(&acme, 2).await.unwrap();
    assert_eq!(
        latest.iter().map(|e| e.cursor).collect::<Vec<_>>(),
        [cursors[4], cursors[3]],
        "the newest first, the tenant's only"
    );
    assert!(s
        .events
        .latest_events(&tenant("initech"), 5)
        .await
        .unwrap()
        .is_empty());
    let after = s.events.events_after(&acme, cursors[1], 2).await.unwrap();
    assert_eq!(
        after.iter().map(|e| e.cursor).collect::<Vec<_>>(),
        cursors[2..4]
    );
    assert!(s
        .events
        .events_after(&acme, cursors[4], 10)
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .events
        .events_after(&tenant("initech"), 0, 10)
        .await
        .unwrap()
        .is_empty());
}

/// Expired authorizations in progress, of every tenant, are deleted at once by the sweep,
/// counted; fresh ones stay and are still taken once.
pub async fn expired_authorizations_deleted(s: &Stores) {
    let a = &s.accounts;
    let (p1, p2) = providers();
    let pending = |digest: &str, who: &str, provider, expires_at| PendingAuthorization {
        digest: digest.into(),
        tenant: tenant(who),
        provider,
        secret: None,
        auth_method: None,
        expires_at,
    };
    a.put_authorization(&pending("old-1", "acme", p1, at(10)))
        .await
        .unwrap();
    a.put_authorization(&pending("old-2", "globex", p2, at(20)))
        .await
        .unwrap();
    a.put_authorization(&pending("fresh", "acme", p1, at(600)))
        .await
        .unwrap();
    assert_eq!(a.delete_expired_authorizations(at(5)).await.unwrap(), 0);
    assert_eq!(
        a.delete_expired_authorizations(at(20)).await.unwrap(),
        2,
        "expired at or before now, of every tenant"
    );
    assert_eq!(a.delete_expired_authorizations(at(20)).await.unwrap(), 0);
    assert_eq!(
        a.take_authorization("fresh", at(21))
            .await
            .unwrap()
            .map(|p| p.digest),
        Some("fresh".to_owned())
    );
}

/// Each tenant's cursors are its own sequence, 1, 2, 3…, with no gap where another tenant
/// appended: the cursors of one tenant reveal nothing of another's events. Appends made at
/// once by one tenant still draw each number once.
pub async fn events_numbered_per_tenant(s: &Stores) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let mut acme_cursors = Vec::new();
    let mut globex_cursors = Vec::new();
    for n in 0..4 {
        acme_cursors.push(
            append_new(
                s.events.as_ref(),
                &acme,
                &format!("a{n}"),
                &format!(r#"{{"a":{n}}}"#),
                at(n),
            )
            .await,
        );
        for m in 0..3 {
            globex_cursors.push(
                append_new(
                    s.events.as_ref(),
                    &globex,
                    &format!("g{}", n * 3 + m),
                    &format!(r#"{{"g":{}}}"#, n * 3 + m),
                    at(n),
                )
                .await,
            );
        }
    }
    assert_eq!(acme_cursors, [1, 2, 3, 4], "acme's own sequence");
    assert_eq!(
        globex_cursors,
        (1..=12).collect::<Vec<i64>>(),
        "globex's own sequence"
    );
    let read = |t: TenantId| {
        let events = s.events.clone();
        async move {
            events
                .events_after(&t, 0, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.cursor)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(read(acme.clone()).await, [1, 2, 3, 4]);
    assert_eq!(read(globex.clone()).await, (1..=12).collect::<Vec<i64>>());
    let after = s.events.events_after(&acme, 2, 10).await.unwrap();
    assert_eq!(
        after
            .iter()
            .map(|e| (e.cursor, e.event_json.as_str()))
            .collect::<Vec<_>>(),
        [(3, r#"{"a":2}"#), (4, r#"{"a":3}"#)],
        "a cursor of the tenant's sequence reads on after it"
    );

    let initech = tenant("initech");
    let mut at_once = join_all((0..8).map(|n| {
        let (events, t) = (s.events.clone(), initech.clone());
        async move {
            append_new(
                events.as_ref(),
                &t,
                &format!("i{n}"),
                &format!(r#"{{"i":{n}}}"#),
                at(n),
            )
            .await
        }
    }))
    .await;
    at_once.sort_unstable();
    assert_eq!(
        at_once,
        (1..=8).collect::<Vec<i64>>(),
        "appends at once draw each number once"
    );
    assert_eq!(read(initech).await, (1..=8).collect::<Vec<i64>>());
    assert_eq!(read(acme).await, [1, 2, 3, 4], "untouched by the others");
}

/// Each event once: an append whose change (item, previous and new status) equals that of
/// its finding's last event in the tenant's log is a repeat (what a sync stopped between
/// appending and recording appends again) and is skipped, taking no cursor. A real
/// back-and-forth of one finding (A → B, B → A, A → B) is kept whole, since each change
/// differs from the one before it; the rule looks only at the finding's last event, and
/// only within the tenant. Appends of one change at once keep one.
pub async fn events_skip_repeats(s: &Stores) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let ev = s.events.as_ref();
    let change = |finding: &str, item: &str, previous, status| EventChange {
        finding_id: finding.to_owned(),
        item_id: item.to_owned(),
        previous,
        status,
    };
    let (open, done) = (TrackerStatus::Open, TrackerStatus::Done);
    let closed = change("f-1", "item-1", open, done);
    let append = |t: TenantId, c: EventChange, json: &'static str, n: i64| async move {
        ev.append_event(&t, &c, json, at(n)).await.unwrap()
    };

    assert_eq!(
        append(acme.clone(), closed.clone(), r#"{"e":1}"#, 1).await,
        Some(1)
    );
    assert_eq!(
        append(acme.clone(), closed.clone(), r#"{"e":1,"again":true}"#, 2).await,
        None,
        "the same change of the finding's last event is a repeat"
    );
    // The same change of another finding, and of the same finding in another tenant.
    let other = change("f-2", "item-1", open, done);
    assert_eq!(append(acme.clone(), other, r#"{"e":2}"#, 3).await, Some(2));
    assert_eq!(
        append(globex.clone(), closed.clone(), r#"{"g":1}"#, 3).await,
        Some(1)
    );
    // Back and forth: each change starts where the last ended, so all are kept, and
    // the third (open → done again) is not taken for a repeat of the first.
    let reopened = change("f-1", "item-1", done, open);
    assert_eq!(
        append(acme.clone(), reopened.clone(), r#"{"e":3}"#, 4).await,
        Some(3)
    );
    assert_eq!(
        append(acme.clone(), closed.clone(), r#"{"e":4}"#, 5).await,
        Some(4)
    );
    assert_eq!(
        append(acme.clone(), closed.clone(), r#"{"e":4,"again":true}"#, 6).await,
        None
    );
    // Any difference from the last event makes a new one: another item, another status.
    let moved = change("f-1", "item-9", open, done);
    assert_eq!(append(acme.clone(), moved, r#"{"e":5}"#, 7).await, Some(5));
    let canceled = change("f-1", "item-9", open, TrackerStatus::Canceled);
    assert_eq!(
        append(acme.clone(), canceled, r#"{"e":6}"#, 8).await,
        Some(6)
    );

    let read = |t: TenantId| async move {
        ev.events_after(&t, 0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.cursor, e.event_json))
            .collect::<Vec<_>>()
    };
    let json = |pairs: &[(i64, &str)]| {
        pairs
            .iter()
            .map(|(c, j)| (*c, (*j).to_owned()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        read(acme.clone()).await,
        json(&[
            (1, r#"{"e":1}"#),
            (2, r#"{"e":2}"#),
            (3, r#"{"e":3}"#),
            (4, r#"{"e":4}"#),
            (5, r#"{"e":5}"#),
            (6, r#"{"e":6}"#),
        ]),
        "each change once, the repeats nowhere"
    );
    assert_eq!(read(globex.clone()).await, json(&[(1, r#"{"g":1}"#)]));

    let initech = tenant("initech");
    let at_once = join_all((0..6).map(|n| {
        let (events, t, c) = (s.events.clone(), initech.clone(), closed.clone());
        async move {
            events
                .append_event(&t, &c, r#"{"i":1}"#, at(n))
                .await
                .unwrap()
        }
    }))
    .await;
    assert_eq!(
        at_once.iter().flatten().copied().collect::<Vec<_>>(),
        [1],
        "of one change appended at once, one is kept: {at_once:?}"
    );
    assert_eq!(read(initech).await.len(), 1);
}

const LEASE: Duration = Duration::from_secs(30);

fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

/// The queue: the oldest claimable job first; a job running without a lease (a run of a
/// process that does not use the queue) and finished jobs are never claimed; finish writes
/// through the lease; depth counts.
pub async fn queue_basics(s: &Stores) {
    assert_eq!(
        s.queue.claim("w1", at(0), LEASE).await.unwrap(),
        None,
        "nothing queued"
    );
    s.jobs
        .add_job(&job("q-2", "acme", 2, JobState::Queued))
        .await
        .unwrap();
    s.jobs
        .add_job(&job("q-1", "globex", 1, JobState::Queued))
        .await
        .unwrap();
    s.jobs
        .add_job(&job("q-run", "acme", 0, JobState::Running))
        .await
        .unwrap();
    s.jobs
        .add_job(&job("q-done", "acme", 0, JobState::Done))
        .await
        .unwrap();
    let depth = s.queue.depth().await.unwrap();
    assert_eq!((depth.queued, depth.running), (2, 1));
    assert_eq!(depth.oldest_queued_at, Some(at(1)));

    let c1 = s
        .queue
        .claim("w1", at(10), LEASE)
        .await
        .unwrap()
        .expect("a job");
    assert_eq!(c1.job.id, "q-1", "the oldest queued job first");
    assert_eq!(c1.job.state, JobState::Running);
    assert_eq!(c1.job.tenant, tenant("globex"));
    assert_eq!(c1.lease.owner, "w1");
    assert_eq!(c1.lease.attempt, 1);
    assert_eq!(c1.lease.until, at(10) + secs(30));
    assert_eq!(c1.taken_over_from, None);
    let c2 = s
        .queue
        .claim("w1", at(10), LEASE)
        .await
        .unwrap()
        .expect("a job");
    assert_eq!(c2.job.id, "q-2");
    assert_eq!(
        s.queue
            .claim("w2", at(20), LEASE)
            .await
            .unwrap()
            .map(|c| c.job.id),
        None::<String>,
        "held leases are not claimable, nor is a job running without a lease"
    );
    let end = JobEnd {
        succeeded: true,
        progress_json: r#"{"done":1}"#.into(),
        summary_json: Some(r#"{"created":1}"#.into()),
        bundle_dir: None,
        finished_at: at(20),
    };
    assert!(s.queue.finish(&c1.lease, &end).await.unwrap());
    let stored = s.jobs.job(&tenant("globex"), "q-1").await.unwrap().unwrap();
    assert_eq!(stored.state, JobState::Done);
    assert_eq!(stored.summary_json.as_deref(), Some(r#"{"created":1}"#));
    assert_eq!(stored.finished_at, Some(at(20)));
    assert!(
        !s.queue.finish(&c1.lease, &end).await.unwrap(),
        "finished once"
    );
    let failed = JobEnd {
        succeeded: false,
        ..end.clone()
    };
    assert!(s.queue.finish(&c2.lease, &failed).await.unwrap());
    assert_eq!(
        s.jobs
            .job(&tenant("acme"), "q-2")
            .await
            .unwrap()
            .unwrap()
            .state,
        JobState::Failed
    );
    assert_eq!(
        s.queue.claim("w2", at(10_000), LEASE).await.unwrap(),
        None,
        "a finished job is never claimed again, nor, even much later, a job running \
         without a lease (a run of a process that does not use the queue)"
    );
    let depth = s.queue.depth().await.unwrap();
    assert_eq!(
        (depth.queued, depth.running, depth.oldest_queued_at),
        (0, 1, None)
    );
}

/// Several workers (`workers`, each a handle a replica would hold) race to claim `n` jobs
/// of as many tenants, and 10 jobs of one more tenant, at the same instant: every job is
/// claimed exactly once, except that of the one tenant's jobs exactly one is claimed (its
/// tenancy is busy while it runs).
pub async fn queue_race(s: &Stores, workers: Vec<Arc<dyn JobQueue>>) {
    let n = 40;
    for i in 0..10 {
        s.jobs
            .add_job(&job(&format!("c-{i:03}"), "crowd", i, JobState::Queued))
            .await
            .unwrap();
    }
    for i in 0..n {
        s.jobs
            .add_job(&job(
                &format!("r-{i:03}"),
                &format!("tenant-{i:03}"),
                i,
                JobState::Queued,
            ))
            .await
            .unwrap();
    }
    let runs = workers.iter().enumerate().map(|(w, q)| {
        let q = Arc::clone(q);
        async move {
            let mut mine = Vec::new();
            while let Some(c) = q
                .claim(&format!("worker-{w}"), at(100), LEASE)
                .await
                .unwrap()
            {
                assert_eq!(c.lease.owner, format!("worker-{w}"));
                mine.push(c.job.id);
            }
            mine
        }
    });
    let claimed: Vec<Vec<String>> = join_all(runs).await;
    let mut all: Vec<String> = claimed.iter().flatten().cloned().collect();
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(total, all.len(), "a job was claimed twice: {claimed:?}");
    let crowd = all.iter().filter(|id| id.starts_with("c-")).count();
    assert_eq!(crowd, 1, "one job of a tenancy at a time: {claimed:?}");
    assert_eq!(all.len(), n as usize + 1, "every other job was claimed");
}

/// Sync jobs share the queue with exports: a sync of a tenancy waits for its export (and
/// the other way round), at most one sync of a tenancy waits (a second request joins it,
/// while one that runs is not joined), the export listings never show syncs, the kinds are
/// counted apart, and a sync whose lease expired is taken over like an export.
pub async fn queue_sync_jobs(s: &Stores) {
    let p0 = providers().0;
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let q = &s.queue;
    s.jobs
        .add_job(&job("e-1", "acme", 0, JobState::Queued))
        .await
        .unwrap();
    assert!(q.enqueue_sync("s-1", &acme, p0, at(1)).await.unwrap());
    assert!(
        !q.enqueue_sync("s-2", &acme, p0, at(2)).await.unwrap(),
        "a second request joins the sync that waits"
    );
    assert!(q.enqueue_sync("s-3", &globex, p0, at(2)).await.unwrap());

    // Exports' listings hold no sync.
    let listed: Vec<String> = s
        .jobs
        .jobs(&acme, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(listed, vec!["e-1".to_owned()]);
    assert_eq!(s.jobs.job(&acme, "s-1").await.unwrap(), None);
    let unfinished: Vec<String> = s
        .jobs
        .unfinished_jobs()
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(unfinished, vec!["e-1".to_owned()]);
    assert_eq!(q.depth().await.unwrap().queued, 1, "depth() counts exports");
    let syncs = q.depth_of(JobKind::Sync).await.unwrap();
    assert_eq!((syncs.queued, syncs.running), (2, 0));
    assert_eq!(syncs.oldest_queued_at, Some(at(1)));

    let end = JobEnd {
        succeeded: true,
        progress_json: "{}".into(),
        summary_json: None,
        bundle_dir: None,
        finished_at: at(5),
    };
    let export = q.claim("w1", at(3), LEASE).await.unwrap().expect("a job");
    assert_eq!(
        (export.job.id.as_str(), export.kind),
        ("e-1", JobKind::Export)
    );
    let other = q.claim("w2", at(3), LEASE).await.unwrap().expect("a job");
    assert_eq!(
        (other.job.id.as_str(), other.kind),
        ("s-3", JobKind::Sync),
        "acme's sync waits for acme's export; globex's is claimed past it"
    );
    assert_eq!(other.job.tenant, globex);
    assert_eq!(other.job.provider, p0);
    assert_eq!(q.claim("w3", at(3), LEASE).await.unwrap(), None);
    assert!(!q.enqueue_sync("s-4", &acme, p0, at(4)).await.unwrap());
    assert!(q.finish(&export.lease, &end).await.unwrap());
    assert!(q.finish(&other.lease, &end).await.unwrap());

    let sync = q.claim("w1", at(5), LEASE).await.unwrap().expect("a job");
    assert_eq!((sync.job.id.as_str(), sync.kind), ("s-1", JobKind::Sync));
    assert_eq!(sync.job.state, JobState::Running);
    // A request while the sync runs queues one more (the running one may have read the
    // tracker before the change), and the one after joins that.
    assert!(q.enqueue_sync("s-5", &acme, p0, at(6)).await.unwrap());
    assert!(!q.enqueue_sync("s-6", &acme, p0, at(6)).await.unwrap());
    s.jobs
        .add_job(&job("e-2", "acme", 7, JobState::Queued))
        .await
        .unwrap();
    assert_eq!(
        q.claim("w2", at(7), LEASE).await.unwrap(),
        None,
        "neither the next sync nor an export runs beside a running sync of the tenancy"
    );
    let syncs = q.depth_of(JobKind::Sync).await.unwrap();
    assert_eq!((syncs.queued, syncs.running), (1, 1));
    // The holder dies: once its lease has expired, the sync is taken over.
    let again = q
        .claim("w2", at(40), LEASE)
        .await
        .unwrap()
        .expect("a takeover");
    assert_eq!((again.job.id.as_str(), again.kind), ("s-1", JobKind::Sync));
    assert_eq!(again.taken_over_from.as_deref(), Some("w1"));
    assert!(!q.finish(&sync.lease, &end).await.unwrap(), "fenced");
    assert!(q.finish(&again.lease, &end).await.unwrap());
    let next = q.claim("w1", at(41), LEASE).await.unwrap().expect("a job");
    assert_eq!((next.job.id.as_str(), next.kind), ("s-5", JobKind::Sync));
}

/// The schedule's ticks: a tenancy's sync is queued only when none was queued within the
/// interval (whoever queued it: a tick or a delivery) and none waits; a tick per tenancy.
pub async fn queue_sync_schedule(s: &Stores) {
    let p0 = providers().0;
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let q = &s.queue;
    let every = Duration::from_secs(60);
    let end = JobEnd {
        succeeded: true,
        progress_json: "{}".into(),
        summary_json: None,
        bundle_dir: None,
        finished_at: at(3),
    };
    assert!(q
        .enqueue_sync_if_due("d-1", &acme, p0, at(0), every)
        .await
        .unwrap());
    assert!(
        !q.enqueue_sync_if_due("d-2", &acme, p0, at(1), every)
            .await
            .unwrap(),
        "another replica's tick within the interval"
    );
    let c = q
        .claim("w1", at(2), LEASE)
        .await
        .unwrap()
        .expect("the sync");
    assert_eq!((c.job.id.as_str(), c.kind), ("d-1", JobKind::Sync));
    assert!(q.finish(&c.lease, &end).await.unwrap());
    assert!(
        !q.enqueue_sync_if_due("d-3", &acme, p0, at(59), every)
            .await
            .unwrap(),
        "the last sync was queued less than an interval ago, even though it has ended"
    );
    assert!(
        q.enqueue_sync_if_due("d-4", &globex, p0, at(59), every)
            .await
            .unwrap(),
        "each tenancy has its own schedule"
    );
    assert!(q
        .enqueue_sync_if_due("d-5", &acme, p0, at(60), every)
        .await
        .unwrap());
    assert!(
        !q.enqueue_sync("d-6", &acme, p0, at(61)).await.unwrap(),
        "a delivery joins the scheduled sync that waits"
    );
    let c = q.claim("w1", at(62), LEASE).await.unwrap().expect("a sync");
    assert!(q.finish(&c.lease, &end).await.unwrap());
    let c = q.claim("w1", at(62), LEASE).await.unwrap().expect("a sync");
    assert!(q.finish(&c.lease, &end).await.unwrap());
    // A delivery's sync counts as the tenancy's last one.
    assert!(q.enqueue_sync("d-7", &acme, p0, at(100)).await.unwrap());
    let c = q
        .claim("w1", at(100), LEASE)
        .await
        .unwrap()
        .expect("a sync");
    assert_eq!(c.job.id, "d-7");
    assert!(q.finish(&c.lease, &end).await.unwrap());
    assert!(!q
        .enqueue_sync_if_due("d-8", &acme, p0, at(150), every)
        .await
        .unwrap());
    assert!(q
        .enqueue_sync_if_due("d-9", &acme, p0, at(160), every)
        .await
        .unwrap());
    // A day on (finished syncs that old are deleted on the way), the tick queues again.
    let c = q
        .claim("w1", at(161), LEASE)
        .await
        .unwrap()
        .expect("a sync");
    assert!(q.finish(&c.lease, &end).await.unwrap());
    let day = 86_400;
    assert!(q
        .enqueue_sync_if_due("d-10", &acme, p0, at(day + 200), every)
        .await
        .unwrap());
    assert_eq!(q.depth_of(JobKind::Sync).await.unwrap().queued, 1);
}

/// Replicas (`workers`, each a handle a replica would hold) tick the schedule for the same
/// tenancies at the same instant, each claiming and finishing at once what it queued (so a
/// queued sync's uniqueness alone would not stop a second one): every tenancy gets exactly
/// one sync.
pub async fn queue_sync_schedule_race(s: &Stores, workers: Vec<Arc<dyn JobQueue>>) {
    let p0 = providers().0;
    let _ = s;
    let n = 40;
    let every = Duration::from_secs(60);
    let runs = workers.iter().enumerate().map(|(w, q)| {
        let q = Arc::clone(q);
        async move {
            let mut queued = 0;
            for i in 0..n {
                let t = tenant(&format!("tenant-{i:03}"));
                if q.enqueue_sync_if_due(&format!("w{w}-{i}"), &t, p0, at(100), every)
                    .await
                    .unwrap()
                {
                    queued += 1;
                    while let Some(c) = q
                        .claim(&format!("worker-{w}"), at(100), LEASE)
                        .await
                        .unwrap()
                    {
                        let end = JobEnd {
                            succeeded: true,
                            progress_json: "{}".into(),
                            summary_json: None,
                            bundle_dir: None,
                            finished_at: at(100),
                        };
                        assert!(q.finish(&c.lease, &end).await.unwrap());
                    }
                }
            }
            queued
        }
    });
    let queued: Vec<usize> = join_all(runs).await;
    assert_eq!(
        queued.iter().sum::<usize>(),
        n,
        "one scheduled sync per tenancy however many replicas tick: {queued:?}"
    );
}

/// An expired lease is taken over by another worker (a new attempt); the old holder's
/// heartbeat and finish then answer that the lease is lost and change nothing.
pub async fn queue_takeover(s: &Stores) {
    s.jobs
        .add_job(&job("t-1", "acme", 0, JobState::Queued))
        .await
        .unwrap();
    let a = s
        .queue
        .claim("worker-a", at(0), LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.queue.claim("worker-b", at(29), LEASE).await.unwrap(),
        None,
        "a held lease is not taken"
    );
    let b = s
        .queue
        .claim("worker-b", at(31), LEASE)
        .await
        .unwrap()
        .expect("a takeover");
    assert_eq!(b.job.id, "t-1");
    assert_eq!(b.taken_over_from.as_deref(), Some("worker-a"));
    assert_eq!(b.lease.attempt, 2);
    assert_eq!(b.lease.until, at(61));
    assert_eq!(
        s.queue.heartbeat(&a.lease, at(32), LEASE).await.unwrap(),
        None,
        "the old holder lost its lease"
    );
    let end = JobEnd {
        succeeded: true,
        progress_json: "{}".into(),
        summary_json: Some(r#"{"by":"a"}"#.into()),
        bundle_dir: None,
        finished_at: at(33),
    };
    assert!(
        !s.queue.finish(&a.lease, &end).await.unwrap(),
        "a lost lease writes nothing"
    );
    let stored = s.jobs.job(&tenant("acme"), "t-1").await.unwrap().unwrap();
    assert_eq!(
        (stored.state, stored.summary_json),
        (JobState::Running, None)
    );
    // Progress is fenced like the finish: the old holder's is refused, the new one's kept.
    assert!(
        !s.queue
            .record_progress(&a.lease, r#"{"by":"a"}"#)
            .await
            .unwrap(),
        "a lost lease writes no progress"
    );
    assert!(s
        .queue
        .record_progress(&b.lease, r#"{"by":"b"}"#)
        .await
        .unwrap());
    let stored = s.jobs.job(&tenant("acme"), "t-1").await.unwrap().unwrap();
    assert_eq!(stored.progress_json, r#"{"by":"b"}"#);
    let end_b = JobEnd {
        summary_json: Some(r#"{"by":"b"}"#.into()),
        ..end
    };
    assert!(s.queue.finish(&b.lease, &end_b).await.unwrap());
    let stored = s.jobs.job(&tenant("acme"), "t-1").await.unwrap().unwrap();
    assert_eq!(stored.state, JobState::Done);
    assert_eq!(stored.summary_json.as_deref(), Some(r#"{"by":"b"}"#));
}

/// One job of a tenancy at a time: a queued job waits while another job of its tenant and
/// provider runs under a live lease (another tenant's or provider's job is claimed past
/// it), and is claimable once that job ends or its lease expires (the expired job itself,
/// older, is taken over first).
pub async fn queue_one_job_per_tenancy(s: &Stores) {
    let (p0, p1) = providers();
    s.jobs
        .add_job(&job("o-1", "acme", 0, JobState::Queued))
        .await
        .unwrap();
    s.jobs
        .add_job(&job("o-2", "acme", 1, JobState::Queued))
        .await
        .unwrap();
    s.jobs
        .add_job(&job("o-3", "globex", 2, JobState::Queued))
        .await
        .unwrap();
    if p1 != p0 {
        s.jobs
            .add_job(&ExportJob {
                provider: p1,
                ..job("o-4", "acme", 3, JobState::Queued)
            })
            .await
            .unwrap();
    }
    let claim = |owner: &'static str, t: i64| {
        let q = s.queue.clone();
        async move { q.claim(owner, at(t), LEASE).await.unwrap() }
    };
    let end = JobEnd {
        succeeded: true,
        progress_json: "{}".into(),
        summary_json: None,
        bundle_dir: None,
        finished_at: at(2),
    };
    let first = claim("w1", 0).await.expect("a job");
    assert_eq!(first.job.id, "o-1");
    let other = claim("w2", 1).await.expect("a job");
    assert_eq!(
        other.job.id, "o-3",
        "o-2 waits for o-1 of its tenancy; another tenant's job is claimed past it"
    );
    assert!(s.queue.finish(&other.lease, &end).await.unwrap());
    if p1 != p0 {
        let other = claim("w2", 1).await.expect("a job");
        assert_eq!(
            other.job.id, "o-4",
            "the same tenant's job for another provider is another tenancy"
        );
        assert!(s.queue.finish(&other.lease, &end).await.unwrap());
    }
    assert_eq!(claim("w2", 2).await.map(|c| c.job.id), None);
    // o-1's lease expires: o-1 itself is taken over, and o-2 still waits.
    let again = claim("w2", 31).await.expect("a takeover");
    assert_eq!(again.job.id, "o-1");
    assert_eq!(claim("w3", 32).await.map(|c| c.job.id), None);
    assert!(s.queue.finish(&again.lease, &end).await.unwrap());
    assert_eq!(
        claim("w3", 34).await.map(|c| c.job.id).as_deref(),
        Some("o-2"),
        "claimable once its tenancy's job has ended"
    );
}

/// A job's upload is kept in chunks, read back in order by any handle, rewritten without
/// duplicating, kept apart from other jobs' uploads, and deleted whole.
pub async fn job_uploads(s: &Stores) {
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    s.uploads
        .put_upload_chunk("u-1", 1, b"second")
        .await
        .unwrap();
    s.uploads.put_upload_chunk("u-1", 0, &big).await.unwrap();
    s.uploads
        .put_upload_chunk("u-2", 0, b"other")
        .await
        .unwrap();
    assert_eq!(
        s.uploads.upload_chunk("u-1", 0).await.unwrap().as_deref(),
        Some(big.as_slice()),
        "a chunk comes back byte for byte"
    );
    assert_eq!(
        s.uploads.upload_chunk("u-1", 1).await.unwrap().as_deref(),
        Some(&b"second"[..])
    );
    assert_eq!(s.uploads.upload_chunk("u-1", 2).await.unwrap(), None);
    s.uploads
        .put_upload_chunk("u-1", 1, b"again")
        .await
        .unwrap();
    assert_eq!(
        s.uploads.upload_chunk("u-1", 1).await.unwrap().as_deref(),
        Some(&b"again"[..]),
        "writing a chunk again replaces it"
    );
    s.uploads.delete_upload("u-1").await.unwrap();
    assert_eq!(s.uploads.upload_chunk("u-1", 0).await.unwrap(), None);
    assert_eq!(s.uploads.upload_chunk("u-1", 1).await.unwrap(), None);
    assert_eq!(
        s.uploads.upload_chunk("u-2", 0).await.unwrap().as_deref(),
        Some(&b"other"[..]),
        "another job's upload is kept"
    );
    s.uploads.delete_upload("nothing").await.unwrap();
}

/// A heartbeat keeps the lease: past the first lease's end the job is still held, and it
/// is taken over only once the renewed lease ends.
pub async fn queue_heartbeat(s: &Stores) {
    s.jobs
        .add_job(&job("h-1", "acme", 0, JobState::Queued))
        .await
        .unwrap();
    let a = s
        .queue
        .claim("worker-a", at(0), LEASE)
        .await
        .unwrap()
        .unwrap();
    let renewed = s
        .queue
        .heartbeat(&a.lease, at(20), LEASE)
        .await
        .unwrap()
        .expect("the holder renews its lease");
    assert_eq!(renewed.until, at(50));
    assert_eq!((renewed.attempt, renewed.owner.as_str()), (1, "worker-a"));
    assert_eq!(
        s.queue.claim("worker-b", at(40), LEASE).await.unwrap(),
        None,
        "a renewed lease holds past the first lease's end"
    );
    let renewed = s
        .queue
        .heartbeat(&renewed, at(45), LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renewed.until, at(75));
    assert_eq!(
        s.queue.claim("worker-b", at(74), LEASE).await.unwrap(),
        None
    );
    let b = s
        .queue
        .claim("worker-b", at(76), LEASE)
        .await
        .unwrap()
        .expect("expired");
    assert_eq!(b.taken_over_from.as_deref(), Some("worker-a"));
    assert_eq!(
        s.queue.heartbeat(&renewed, at(77), LEASE).await.unwrap(),
        None
    );
}

fn hook(opaque_id: &str, tenant_name: &str, provider: ProviderKey, created: i64) -> HookRecord {
    HookRecord {
        opaque_id: opaque_id.to_owned(),
        tenant: tenant(tenant_name),
        provider,
        webhook_id: format!("wh-{opaque_id}"),
        callback_url: format!("https://hooks.example/hooks/x/{opaque_id}"),
        scope_id: "scope-1".to_owned(),
        created_at: at(created),
        last_delivery_at: None,
        deliveries: 0,
        rejected: 0,
    }
}

/// The webhook registry: a registration found by its opaque id and by its tenancy, one per
/// tenancy (a new one replaces the old and its delivery ids), a delivery id counted once,
/// refusals counted, deleted per tenancy.
pub async fn webhooks(s: &Stores) {
    let h = &s.hooks;
    let (p1, p2) = providers();
    let acme = tenant("acme");
    assert_eq!(h.hook("op-1").await.unwrap(), None);
    assert_eq!(h.hook_of(&acme, p1).await.unwrap(), None);

    let first = hook("op-1", "acme", p1, 0);
    h.put_hook(&first).await.unwrap();
    h.put_hook(&hook("op-g", "globex", p1, 0)).await.unwrap();
    assert_eq!(h.hook("op-1").await.unwrap(), Some(first.clone()));
    assert_eq!(h.hook_of(&acme, p1).await.unwrap(), Some(first.clone()));
    if p2 != p1 {
        assert_eq!(h.hook_of(&acme, p2).await.unwrap(), None, "per provider");
    }

    assert!(h.record_delivery("op-1", "d-1", at(5)).await.unwrap());
    assert!(
        !h.record_delivery("op-1", "d-1", at(6)).await.unwrap(),
        "a retried delivery is seen once"
    );
    assert!(h.record_delivery("op-1", "d-2", at(7)).await.unwrap());
    assert!(
        h.record_delivery("op-g", "d-1", at(8)).await.unwrap(),
        "delivery ids are per registration"
    );
    h.record_rejection("op-1").await.unwrap();
    let seen = h.hook("op-1").await.unwrap().expect("still registered");
    assert_eq!(
        (seen.deliveries, seen.rejected, seen.last_delivery_at),
        (2, 1, Some(at(7))),
        "accepted deliveries counted once each, refusals counted"
    );

    let second = hook("op-2", "acme", p1, 10);
    h.put_hook(&second).await.unwrap();
    assert_eq!(h.hook("op-1").await.unwrap(), None, "replaced whole");
    assert_eq!(h.hook_of(&acme, p1).await.unwrap(), Some(second.clone()));
    assert!(
        h.record_delivery("op-2", "d-1", at(11)).await.unwrap(),
        "the new registration starts with no delivery ids"
    );

    h.delete_hook(&acme, p1).await.unwrap();
    assert_eq!(h.hook("op-2").await.unwrap(), None);
    assert_eq!(h.hook_of(&acme, p1).await.unwrap(), None);
    assert!(
        h.hook("op-g").await.unwrap().is_some(),
        "another tenant's registration stays"
    );
    h.delete_hook(&acme, p1)
        .await
        .expect("deleting nothing is not an error");
}

/// A key of `limit` per `window_ms`, named `name` (each test its own key).
fn key_scope(name: &str, limit: u32, window_ms: u64) -> crate::budget::KeyScope {
    crate::budget::KeyScope {
        name: name.to_owned(),
        limit,
        rules: webriskops_domain::SlotRules {
            window: Duration::from_millis(window_ms),
            margin: Duration::from_millis(5),
            in_flight_cap: Duration::from_millis(window_ms * 3),
        },
    }
}

fn slot_ask(owner: &str, want: u32) -> crate::budget::SlotAsk {
    crate::budget::SlotAsk {
        owner: owner.to_owned(),
        token: format!("token-of-{owner}"),
        token_limit: 1_000,
        want,
    }
}

/// One exchange of `holder`, which must succeed.
async fn ask(
    b: &Arc<dyn crate::budget::RequestBudgets>,
    holder: &str,
    key: &crate::budget::KeyScope,
    released: Vec<crate::budget::Released>,
    asks: Vec<crate::budget::SlotAsk>,
) -> crate::budget::BudgetAnswer {
    b.exchange(&exchange(holder, key, released, asks))
        .await
        .expect("the exchange succeeds")
}

fn exchange(
    holder: &str,
    key: &crate::budget::KeyScope,
    released: Vec<crate::budget::Released>,
    asks: Vec<crate::budget::SlotAsk>,
) -> crate::budget::BudgetExchange {
    crate::budget::BudgetExchange {
        holder: holder.to_owned(),
        key: key.clone(),
        released,
        asks,
    }
}

/// Shared request budgets: holders racing for one key never get more than its limit in
/// a window; a token's limit holds within the key's; a slot counts until its request
/// ended and one window more, and a grant never released stops counting after the cap.
pub async fn budgets_limits(b: Arc<dyn crate::budget::RequestBudgets>) {
    use crate::budget::Released;
    // A long window: nothing expires while the holders race.
    let key = key_scope("conf-key-race", 100, 60_000);
    let races = (0..6).map(|h| {
        let (b, key) = (Arc::clone(&b), key.clone());
        async move {
            let mut got = 0;
            for round in 0..10 {
                let owner = format!("owner-{}", (h + round) % 4);
                let a = ask(
                    &b,
                    &format!("holder-{h}"),
                    &key,
                    vec![],
                    vec![slot_ask(&owner, 7)],
                )
                .await;
                assert_eq!(a.grants.len(), 1);
                assert_eq!(a.grants[0].grant.is_some(), a.grants[0].n > 0);
                got += a.grants[0].n;
            }
            got
        }
    });
    let total: u32 = join_all(races).await.into_iter().sum();
    assert_eq!(
        total, 100,
        "six holders asked for 420 slots of a 100-slot key"
    );
    let usage = b.usage(&key).await.unwrap();
    assert_eq!((usage.used, usage.limit), (100, 100));
    assert_eq!(usage.owners.iter().map(|o| o.used).sum::<u32>(), 100);

    // The token's limit within the key's.
    let key = key_scope("conf-key-token", 100, 60_000);
    let mut solo = slot_ask("solo", 80);
    solo.token_limit = 30;
    let a = ask(&b, "h", &key, vec![], vec![solo.clone()]).await;
    assert_eq!(a.grants[0].n, 30, "a token of 30 per window");
    let a = ask(&b, "h", &key, vec![], vec![solo]).await;
    assert_eq!(a.grants[0].n, 0);
    assert!(
        a.retry_in.is_some(),
        "a short ask is told when to ask again"
    );

    // Released slots count one window after their end, then free the key.
    let key = key_scope("conf-key-expiry", 10, 300);
    let a = ask(&b, "h", &key, vec![], vec![slot_ask("o", 10)]).await;
    let id = a.grants[0].grant.expect("a grant id");
    let done = vec![Released {
        grant: id,
        ago: Duration::ZERO,
    }];
    let a = ask(&b, "h", &key, done, vec![slot_ask("o", 1)]).await;
    assert_eq!(
        a.grants[0].n, 0,
        "the slots count a window after their requests ended"
    );
    tokio_sleep(Duration::from_millis(700)).await;
    let a = ask(&b, "h", &key, vec![], vec![slot_ask("o", 10)]).await;
    assert_eq!(
        a.grants[0].n, 10,
        "a window after their end the slots are free"
    );

    // Never released (the holder died): the slots count past their window, until the cap
    // (2 s here), then no more. The waits leave wide margins for a slow machine.
    let mut key = key_scope("conf-key-dead", 10, 100);
    key.rules.in_flight_cap = Duration::from_millis(2_000);
    let a = ask(&b, "dead", &key, vec![], vec![slot_ask("o", 10)]).await;
    assert_eq!(a.grants[0].n, 10);
    tokio_sleep(Duration::from_millis(300)).await;
    let a = ask(&b, "alive", &key, vec![], vec![slot_ask("o", 1)]).await;
    assert_eq!(
        a.grants[0].n, 0,
        "an unreleased grant counts past its window"
    );
    tokio_sleep(Duration::from_millis(2_000)).await;
    let a = ask(&b, "alive", &key, vec![], vec![slot_ask("o", 10)]).await;
    assert_eq!(
        a.grants[0].n, 10,
        "past the cap the dead holder's grant is forgotten"
    );
}

/// Fair shares and the pause: owners asking together are levelled; a token with no room
/// reserves nothing; a paused key grants nothing anywhere until the pause ends.
pub async fn budgets_fairness_and_pause(b: Arc<dyn crate::budget::RequestBudgets>) {
    let key = key_scope("conf-key-alone", 40, 60_000);
    let a = ask(&b, "B", &key, vec![], vec![slot_ask("small", 100)]).await;
    assert_eq!(a.grants[0].n, 40, "alone, an owner may take the whole key");

    let key = key_scope("conf-key-level", 40, 60_000);
    let a = ask(&b, "A", &key, vec![], vec![slot_ask("large", 6)]).await;
    assert_eq!(a.grants[0].n, 6);
    let asks = vec![slot_ask("large", 100), slot_ask("small", 100)];
    let a = ask(&b, "A", &key, vec![], asks).await;
    assert_eq!(
        (a.grants[0].n, a.grants[1].n),
        (14, 20),
        "34 free: both end at 20, the large owner's 6 counted"
    );

    let key = key_scope("conf-key-tokenless", 40, 60_000);
    let a = ask(&b, "A", &key, vec![], vec![slot_ask("large", 30)]).await;
    assert_eq!(a.grants[0].n, 30);
    let mut capped = slot_ask("small", 10);
    capped.token_limit = 0;
    let a = ask(&b, "B", &key, vec![], vec![capped]).await;
    assert_eq!(a.grants[0].n, 0, "a token with no room gets nothing");
    let a = ask(&b, "A", &key, vec![], vec![slot_ask("large", 10)]).await;
    assert_eq!(a.grants[0].n, 10, "and reserves nothing");

    // The pause: nothing for anyone until it ends.
    let key = key_scope("conf-key-pause", 40, 60_000);
    b.pause(&key.name, Duration::from_millis(1_500))
        .await
        .unwrap();
    b.pause(&key.name, Duration::from_millis(10)).await.unwrap();
    let a = ask(&b, "A", &key, vec![], vec![slot_ask("o", 5)]).await;
    assert_eq!(a.grants[0].n, 0, "paused");
    assert!(
        a.paused_for.is_some_and(|p| p > Duration::from_millis(10)),
        "a shorter pause never shortens one: {a:?}"
    );
    assert!(b.usage(&key).await.unwrap().paused_for.is_some());
    tokio_sleep(Duration::from_millis(1_600)).await;
    let a = ask(&b, "B", &key, vec![], vec![slot_ask("o", 5)]).await;
    assert_eq!(a.grants[0].n, 5, "the pause ended");
}

/// The share of an owner waiting on another holder stays free for it: recorded while
/// the key is full, honoured when slots come free, whoever asks first. No sleep decides
/// the outcome: the key is full of an unreleased grant, and released as ended long ago.
pub async fn budgets_reserve(b: Arc<dyn crate::budget::RequestBudgets>) {
    use crate::budget::Released;
    // Window 2 s: demand lives 600 ms without renewal (3 tenths of a window).
    let key = key_scope("conf-key-reserve", 20, 2_000);
    let a = ask(&b, "A", &key, vec![], vec![slot_ask("large", 20)]).await;
    let id = a.grants[0].grant.expect("granted");
    // The key is full: B's small owner waits for 8 (recorded, nothing granted).
    let a = ask(&b, "B", &key, vec![], vec![slot_ask("small", 8)]).await;
    assert_eq!(a.grants[0].n, 0, "the key is full");
    let usage = b.usage(&key).await.unwrap();
    let small = usage.owners.iter().find(|o| o.owner == "small");
    assert_eq!(small.map(|o| o.waiting), Some(8));
    // A's requests ended more than a window ago (say): its slots are free at once, and in
    // the same exchange A asks for all 20.
    let done = vec![Released {
        grant: id,
        ago: Duration::from_millis(3_000),
    }];
    let a = ask(&b, "A", &key, done, vec![slot_ask("large", 20)]).await;
    assert_eq!(
        a.grants[0].n, 12,
        "8 stay free for the small owner waiting on B: {a:?}"
    );
    let a = ask(&b, "B", &key, vec![], vec![slot_ask("small", 8)]).await;
    assert_eq!(a.grants[0].n, 8);
}

async fn tokio_sleep(d: Duration) {
    // The suite has no runtime of its own: a thread sleeps, the caller's runtime waits.
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    std::thread::spawn(move || {
        std::thread::sleep(d);
        let _ = tx.send(());
    });
    let _ = rx.await;
}
