//! The tracker ports: introspection for setup and readiness, and work items for export
//! and sync.

use std::fmt::Debug;
use std::future::Future;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use webriskops_domain::{FindingId, ItemId, ProviderRecord, TrackerObservations};

use crate::error::{PortError, PortResult};
use crate::model::{
    Account, Capabilities, CheckItem, Checklist, Container, Destination, ItemChanges, ItemPage,
    Label, ListItemsOptions, Member, NewItem, NewLabel, NewStepTemplate, ReadOptions, RemoteItem,
    RequestStats, StepTemplate, TokenInfo,
};

/// What every tracker adapter states once, whichever ports it implements: what it can do.
///
/// Both [`TrackerIntrospection`] and [`WorkItems`] extend it, so an adapter implementing
/// both declares its capabilities in one place and callers of either port read the same
/// answer.
pub trait Tracker: Send + Sync + Debug + 'static {
    /// What this tracker can do; optional behaviour is gated on it, never discovered by
    /// error. It MUST NOT change during the adapter's life.
    fn capabilities(&self) -> Capabilities;
}

/// Runs one port operation of `adapter` and names the adapter (its
/// `capabilities().tracker`) and `operation` on the error it returns
/// ([`PortError::with_context`]). Adapters wrap each trait method's body in it, the one
/// place their errors get this context; an error that already names an adapter and
/// operation keeps them.
///
/// # Errors
/// The error of `call`, with its context filled.
pub async fn in_context<A, T>(
    adapter: &A,
    operation: &'static str,
    call: impl Future<Output = PortResult<T>>,
) -> PortResult<T>
where
    A: Tracker + ?Sized,
{
    call.await
        .map_err(|e| e.with_context(adapter.capabilities().tracker, operation))
}

/// What setup needs to know about the credentials and the destination.
///
/// Implementations MUST NOT put credentials in URLs, logs or error messages, and MUST
/// map "this id is not visible to the token" to `PermissionDenied` or `NotFound` by
/// reading the tracker's answer, never to `Unauthenticated` unless the credentials
/// themselves were refused.
#[async_trait]
pub trait TrackerIntrospection: Tracker {
    /// The account behind the credentials.
    ///
    /// # Errors
    /// `Unauthenticated` when the credentials are refused.
    async fn whoami(&self) -> PortResult<Account>;

    /// Permissions and expiry of the token in use.
    async fn token_info(&self) -> PortResult<TokenInfo>;

    /// Containers (boards, teams) the credentials can see.
    async fn containers(&self) -> PortResult<Vec<Container>>;

    /// One container.
    ///
    /// # Errors
    /// `NotFound` when it does not exist, `PermissionDenied` when it is not visible.
    async fn container(&self, id: &str) -> PortResult<Container>;

    /// Destinations (lists, workflow states) of a container, closed ones included.
    async fn destinations(&self, container_id: &str) -> PortResult<Vec<Destination>>;

    /// One destination, wherever it is.
    async fn destination(&self, id: &str) -> PortResult<Destination>;

    /// Every label of a container (no silent truncation).
    async fn labels(&self, container_id: &str) -> PortResult<Vec<Label>>;

    /// Members of a container.
    async fn members(&self, container_id: &str) -> PortResult<Vec<Member>>;

    /// Revokes the token in use. Afterwards every call fails with `Unauthenticated`.
    async fn revoke_token(&self) -> PortResult<()>;

    /// Everything the record's provider's readiness rules need, gathered by the adapter
    /// in its own terms (`webriskops_domain::readiness::check` reads it), at `now`.
    ///
    /// An adapter whose tracker has rules of its own in the domain implements it; the
    /// default, `Ok(None)`, lets the caller gather the generic observations through the
    /// other methods of this trait. Answers that decide a blocked state (refused
    /// credentials, an invisible container) MUST become observations; anything transient
    /// MUST be an error, so that "retry later" is never shown as "blocked".
    ///
    /// # Errors
    /// A transient or unexpected failure of the tracker.
    async fn observe_setup(
        &self,
        record: &ProviderRecord,
        now: DateTime<Utc>,
    ) -> PortResult<Option<TrackerObservations>> {
        let _ = (record, now);
        Ok(None)
    }

    /// The observations readiness needs before an export, in as few requests as the
    /// tracker allows (Trello: the token and one `/batch`), or `Ok(None)` to let the
    /// caller run the full check ([`TrackerIntrospection::observe_setup`] or the generic
    /// one). Unlike a setup check it gathers no choices to offer. The same rules as
    /// `observe_setup` hold: decisive answers become observations, transient ones errors.
    ///
    /// # Errors
    /// A transient or unexpected failure of the tracker.
    async fn observe_for_export(
        &self,
        record: &ProviderRecord,
        now: DateTime<Utc>,
    ) -> PortResult<Option<TrackerObservations>> {
        let _ = (record, now);
        Ok(None)
    }
}

/// Work items in a destination.
///
/// Implementations MUST send the create as one request carrying the finding's identity
/// (Trello: the body with its marker), MUST NOT retry a create whose outcome is unknown
/// (report `OutcomeUnknown`), and MUST treat label and member lists in `ItemChanges` as
/// complete replacements. Every item they read MUST carry the finding it belongs to
/// (`RemoteItem::finding_id`, read by the adapter) and the category of its state
/// (`RemoteItem::category`, honouring the caller's done destination).
#[async_trait]
pub trait WorkItems: Tracker {
    /// One page of items of a container, newest first.
    ///
    /// # Errors
    /// `NotSupported` for write-only trackers.
    async fn list_items(&self, opts: &ListItemsOptions) -> PortResult<ItemPage>;

    /// Creates an item.
    async fn create_item(&self, item: &NewItem) -> PortResult<RemoteItem>;

    /// Writes only the given changes.
    async fn update_item(&self, id: &ItemId, changes: &ItemChanges) -> PortResult<RemoteItem>;

    /// Adds a checklist to an item.
    async fn create_checklist(&self, item: &ItemId, name: &str) -> PortResult<Checklist>;

    /// Adds an item to a checklist at a 1-based position.
    async fn add_check_item(
        &self,
        checklist_id: &str,
        name: &str,
        position: u32,
    ) -> PortResult<CheckItem>;

    /// Creates a label in a container.
    async fn create_label(&self, label: &NewLabel) -> PortResult<Label>;

    /// Makes a step template (`capabilities().copies_step_lists`): an item carrying the
    /// template's own marker (never a finding's), hidden from people, with one step list
    /// holding `steps` unticked. Several requests: one that fails leaves a template the
    /// next listing shows as not intact, which the caller deletes.
    ///
    /// # Errors
    /// `NotSupported` for trackers that cannot copy step lists (the default).
    async fn create_step_template(&self, template: &NewStepTemplate) -> PortResult<StepTemplate> {
        let _ = template;
        Err(PortError::NotSupported {
            context: Default::default(),
            what: "step templates".into(),
        })
    }

    /// Deletes a step template for good (a damaged one, or one no finding needs).
    ///
    /// # Errors
    /// `NotSupported` by default; `NotFound` when it is already gone.
    async fn delete_step_template(&self, id: &str) -> PortResult<()> {
        let _ = id;
        Err(PortError::NotSupported {
            context: Default::default(),
            what: "step templates".into(),
        })
    }

    /// Creates an item as [`WorkItems::create_item`] does (one request carrying the
    /// finding's identity, never resent) whose step lists are copied from the step
    /// template `template_id` in the same request, unticked as the template is. Ticks on
    /// the new item stay on it: the copy shares nothing with its source afterwards.
    ///
    /// # Errors
    /// `NotSupported` by default; `NotFound` when the template is gone or refused as a
    /// source (nothing was created: the caller may create the item plainly); otherwise
    /// as `create_item` (an `InvalidInput` created nothing either; the export then creates
    /// that item plainly, since it may be about the item or a refusal of the source the
    /// adapter could not name).
    async fn create_item_copying(
        &self,
        item: &NewItem,
        template_id: &str,
    ) -> PortResult<RemoteItem> {
        let _ = (item, template_id);
        Err(PortError::NotSupported {
            context: Default::default(),
            what: "copying steps from a template".into(),
        })
    }

    /// Reads one item as it is now (with checklists when asked), to reconcile a write
    /// whose outcome is unknown. Trackers that list items MUST implement it (the
    /// conformance suite checks); the default, for write-only trackers, says it cannot.
    async fn get_item(&self, id: &ItemId, opts: &ReadOptions) -> PortResult<RemoteItem> {
        let _ = (id, opts);
        Err(PortError::NotSupported {
            context: Default::default(),
            what: "reading a single item".into(),
        })
    }

    /// The item of `finding` in a container, archived ones included, to reconcile a
    /// create whose outcome is unknown (listing stays the bulk path). When several
    /// carry the finding, the oldest (ties by id), as duplicate resolution keeps.
    ///
    /// It MUST find an item created moments ago; an adapter MAY look only among the
    /// newest items (Trello reads the newest page), since an item it misses there was
    /// not made by the create being reconciled. The default pages through
    /// [`WorkItems::list_items`].
    ///
    /// # Errors
    /// `NotSupported` for write-only trackers; the listing's errors.
    async fn find_by_finding(
        &self,
        container_id: &str,
        finding: &FindingId,
        opts: &ReadOptions,
    ) -> PortResult<Option<RemoteItem>> {
        let all = list_all_items(
            self,
            &ListItemsOptions {
                container_id: container_id.to_owned(),
                include_archived: true,
                with_checklists: opts.with_checklists,
                done_destination: opts.done_destination.clone(),
                ..Default::default()
            },
        )
        .await?;
        Ok(oldest_of(all, finding))
    }

    /// Makes everything written so far durable (write-only trackers commit their
    /// output here). The default does nothing.
    async fn flush(&self) -> PortResult<()> {
        Ok(())
    }

    /// The requests this adapter has sent since it was made, when it counts them
    /// (`None` for adapters that send none, such as the file bundle).
    fn request_stats(&self) -> Option<RequestStats> {
        None
    }
}

/// Reads every page of a container's items from `opts.cursor` on (a convenience over
/// `list_items`).
///
/// # Errors
/// The first failing page.
pub async fn list_all_items<W: WorkItems + ?Sized>(
    items: &W,
    opts: &ListItemsOptions,
) -> PortResult<Vec<RemoteItem>> {
    let mut out = Vec::new();
    let mut page_opts = opts.clone();
    loop {
        let page = items.list_items(&page_opts).await?;
        out.extend(page.items);
        match page.next_cursor {
            Some(next) => page_opts.cursor = Some(next),
            None => return Ok(out),
        }
    }
}

/// The oldest of `items` (ties broken by id) that the adapter read as `finding`'s: the
/// one duplicate resolution keeps.
pub fn oldest_of(items: Vec<RemoteItem>, finding: &FindingId) -> Option<RemoteItem> {
    items
        .into_iter()
        .filter(|i| i.finding_id.as_ref() == Some(finding))
        .min_by(|a, b| {
            a.created_secs
                .cmp(&b.created_secs)
                .then_with(|| a.id.cmp(&b.id))
        })
}
