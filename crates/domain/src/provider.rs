//! The provider record: where work goes, and how WebRiskOps is allowed to put it there.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{IdError, TenantId};
use crate::readiness::BlockedCode;

macro_rules! keyword_enum {
    ($(#[$meta:meta])* $name:ident, $kind:literal { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable keyword used in records, flags and JSON.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                match s.trim() {
                    $($text => Ok($name::$variant),)+
                    other => Err(IdError::new($kind, format!(
                        "{other:?} is not one of: {}",
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }
    };
}

keyword_enum!(
    /// Which tracker product a record targets.
    ProviderKey, "provider key" {
        /// Trello cloud (api.trello.com).
        TrelloCloud => "trello_cloud",
        /// Linear cloud (api.linear.app).
        LinearCloud => "linear_cloud",
    }
);

impl ProviderKey {
    /// Whether the provider exists only as a cloud service (no self-hosted edition).
    pub fn cloud_only(self) -> bool {
        match self {
            ProviderKey::TrelloCloud | ProviderKey::LinearCloud => true,
        }
    }

    /// The short tracker name used in status events (`trello`, `linear`).
    pub fn tracker_name(self) -> &'static str {
        match self {
            ProviderKey::TrelloCloud => "trello",
            ProviderKey::LinearCloud => "linear",
        }
    }

    /// The words this provider's tracker uses for itself and its objects: every text the
    /// service writes that names a tracker takes them from here (ADR 0005 §10), so that
    /// the service and the ports name none (`cargo xtask architecture` checks it).
    pub fn vocabulary(self) -> Vocabulary {
        match self {
            // Trello's own words (vendor/trello/FACTS.md): boards hold lists, lists hold
            // cards; an API key plus a user token.
            ProviderKey::TrelloCloud => Vocabulary {
                tracker: "Trello",
                container: "board",
                destination: "list",
                item: "card",
                items: "cards",
                done_destination: "done list",
                setup_command: "webriskops setup trello",
                credential: "token",
            },
            // Linear's own words (vendor/linear/FACTS.md): a team's issues move through
            // its workflow states; a personal API key (or an OAuth2 access token).
            ProviderKey::LinearCloud => Vocabulary {
                tracker: "Linear",
                container: "team",
                destination: "workflow state",
                item: "issue",
                items: "issues",
                done_destination: "done state",
                setup_command: "webriskops setup linear",
                credential: "API key",
            },
        }
    }

    /// Whether `id` is well formed for this provider's containers and destinations, so
    /// that asking the tracker about it makes sense: a Trello id is 24 hexadecimal digits;
    /// Linear's ids are judged by Linear's own observations, so every id passes here.
    pub fn accepts_id(self, id: &str) -> bool {
        match self {
            ProviderKey::TrelloCloud => crate::ids::TrelloId::new(id).is_ok(),
            ProviderKey::LinearCloud => true,
        }
    }
}

/// A tracker's words for itself and its objects, as texts for people write them
/// (lowercase nouns, to be used mid-sentence; `tracker` capitalised as the product is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vocabulary {
    /// The product's name: `Trello`, `Linear`.
    pub tracker: &'static str,
    /// What holds the items (the record's `board_id`): `board`, `team`.
    pub container: &'static str,
    /// Where new items go (the record's `list_id`): `list`, `workflow state`.
    pub destination: &'static str,
    /// One exported finding in the tracker: `card`, `issue`.
    pub item: &'static str,
    /// Several of them: `cards`, `issues`.
    pub items: &'static str,
    /// Where items of closed findings go (the record's `done_list_id`): `done list`,
    /// `done state`.
    pub done_destination: &'static str,
    /// The command that sets this tracker up (and reconnects it).
    pub setup_command: &'static str,
    /// The credential the tenant provides: `token`, `API key`.
    pub credential: &'static str,
}

keyword_enum!(
    /// Where the tracker runs.
    DeploymentMode, "deployment mode" {
        /// The vendor's hosted service.
        Cloud => "cloud",
        /// An instance on the customer's own network.
        SelfHosted => "self_hosted",
    }
);

keyword_enum!(
    /// How the token was obtained.
    AuthMethod, "auth method" {
        /// An API key plus a user token generated on the key's authorize page.
        ApiKeyToken => "api_key_token",
        /// A token obtained through the OAuth 1.0 three-legged flow.
        Oauth1 => "oauth1",
    }
);

keyword_enum!(
    /// A Trello token scope.
    Scope, "scope" {
        /// Read boards, organizations and cards.
        Read => "read",
        /// Create and update boards and cards.
        Write => "write",
        /// Change the member's own account; never needed by the exporter.
        Account => "account",
    }
);

impl Scope {
    /// Parses a comma-separated scope list such as `read,write`.
    ///
    /// # Errors
    /// Any unknown scope name.
    pub fn parse_list(s: &str) -> Result<BTreeSet<Scope>, IdError> {
        s.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(Scope::from_str)
            .collect()
    }
}

/// A reference to a credential kept in the secret store. The record never holds the token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CredentialRef(pub String);

impl CredentialRef {
    /// The conventional reference for a tenant's token of a provider.
    pub fn for_provider(tenant: &TenantId, provider: ProviderKey) -> Self {
        Self(format!("{tenant}/{provider}/token"))
    }
}

/// Where work goes and how WebRiskOps may put it there, for one tenant and provider.
///
/// Destination ids are kept as provider-native strings (a Trello board is 24 hex, a
/// Linear team is a UUID); readiness validates them for the provider at hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderRecord {
    pub tenant: TenantId,
    pub provider_key: ProviderKey,
    pub deployment_mode: DeploymentMode,
    /// Must stay empty for cloud-only providers; a value is a blocked state.
    pub base_url: Option<String>,
    /// The board (Trello) or team (Linear) that holds the cards.
    pub board_id: Option<String>,
    /// The list (Trello) or workflow state (Linear) where new cards go.
    pub list_id: Option<String>,
    /// Where cards of closed findings go; without it they are archived.
    pub done_list_id: Option<String>,
    /// The customer-owned workspace (Trello organization) the board must belong to.
    pub workspace_id: Option<String>,
    pub auth_method: AuthMethod,
    /// Scopes the customer granted when creating the token.
    pub scopes: BTreeSet<Scope>,
    /// When the token stops working; `None` for tokens that never expire (or unknown).
    pub token_expires_at: Option<DateTime<Utc>>,
    /// The customer confirmed they know how to revoke the token.
    pub revoke_path_confirmed: bool,
    /// Where the token is kept; `None` until a token is saved.
    pub credential: Option<CredentialRef>,
    /// The tracker API root the record, and the token stored for it, belong to (normalised,
    /// e.g. `https://api.trello.com/1`). A stored token is only ever sent there. `None` in
    /// records saved before the root was recorded: they mean the provider's default root.
    #[serde(default)]
    pub api_root: Option<String>,
    /// `Some` when this is a draft: the choices of a setup that was blocked, kept so the
    /// portable fallback knows the destination. A draft never holds a credential.
    /// `None` for a record saved by a ready setup (and for every record saved before
    /// drafts existed).
    #[serde(default)]
    pub draft: Option<Draft>,
}

/// What kept a draft record from being saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    /// The blocked codes of the setup that wrote the draft, in path order.
    pub blocked_by: Vec<BlockedCode>,
}

impl ProviderRecord {
    /// A new Trello cloud record with nothing chosen yet.
    pub fn new_trello(tenant: TenantId) -> Self {
        Self::new(tenant, ProviderKey::TrelloCloud)
    }

    /// A new cloud record of `provider` with nothing chosen yet: the first state of every
    /// setup path (cloud, scopes read and write, API key and token, nothing confirmed).
    pub fn new(tenant: TenantId, provider: ProviderKey) -> Self {
        Self {
            tenant,
            provider_key: provider,
            deployment_mode: DeploymentMode::Cloud,
            base_url: None,
            board_id: None,
            list_id: None,
            done_list_id: None,
            workspace_id: None,
            auth_method: AuthMethod::ApiKeyToken,
            scopes: [Scope::Read, Scope::Write].into_iter().collect(),
            token_expires_at: None,
            revoke_path_confirmed: false,
            credential: None,
            api_root: None,
            draft: None,
        }
    }

    /// Whether this is a draft of a blocked setup rather than a saved record.
    pub fn is_draft(&self) -> bool {
        self.draft.is_some()
    }

    /// `"draft"` or `"saved"`, as JSON output and status name the record.
    pub fn state_name(&self) -> &'static str {
        if self.is_draft() {
            "draft"
        } else {
            "saved"
        }
    }

    /// The record as a draft blocked by `blocked_by`: every credential detail (reference,
    /// expiry) is dropped, so a draft can neither carry nor imply a token.
    #[must_use]
    pub fn into_draft(mut self, blocked_by: Vec<BlockedCode>) -> Self {
        self.credential = None;
        self.token_expires_at = None;
        self.draft = Some(Draft { blocked_by });
        self
    }

    /// `base_url` with blank values treated as absent.
    pub fn base_url(&self) -> Option<&str> {
        self.base_url
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_parse_and_print() {
        assert_eq!(
            "trello_cloud".parse::<ProviderKey>().unwrap(),
            ProviderKey::TrelloCloud
        );
        assert_eq!(DeploymentMode::SelfHosted.to_string(), "self_hosted");
        let err = "jira".parse::<ProviderKey>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid provider key: \"jira\" is not one of: trello_cloud, linear_cloud"
        );
        let scopes = Scope::parse_list("read, write").unwrap();
        assert_eq!(scopes.len(), 2);
        assert!(Scope::parse_list("read,admin").is_err());
    }

    #[test]
    fn each_provider_speaks_its_own_words() {
        let trello = ProviderKey::TrelloCloud.vocabulary();
        assert_eq!(
            (trello.tracker, trello.container, trello.destination),
            ("Trello", "board", "list")
        );
        assert_eq!((trello.item, trello.items), ("card", "cards"));
        assert_eq!(trello.done_destination, "done list");
        assert_eq!(trello.setup_command, "webriskops setup trello");
        assert_eq!(trello.credential, "token");
        let linear = ProviderKey::LinearCloud.vocabulary();
        assert_eq!(
            (linear.tracker, linear.container, linear.destination),
            ("Linear", "team", "workflow state")
        );
        assert_eq!((linear.item, linear.items), ("issue", "issues"));
        assert_eq!(linear.done_destination, "done state");
        assert_eq!(linear.setup_command, "webriskops setup linear");
        assert_eq!(linear.credential, "API key");
        for p in ProviderKey::ALL {
            let v = p.vocabulary();
            assert_eq!(v.tracker.to_lowercase(), p.tracker_name());
            assert!(v.setup_command.ends_with(p.tracker_name()));
        }
    }

    #[test]
    fn ids_are_judged_by_the_provider() {
        let trello_id = "5e9f8f8f8f8f8f8f8f8f8f01";
        assert!(ProviderKey::TrelloCloud.accepts_id(trello_id));
        assert!(!ProviderKey::TrelloCloud.accepts_id("not-an-id"));
        assert!(ProviderKey::LinearCloud.accepts_id("not-an-id"));
    }

    #[test]
    fn a_new_record_of_any_provider_starts_alike() {
        let tenant = TenantId::new("acme").unwrap();
        let linear = ProviderRecord::new(tenant.clone(), ProviderKey::LinearCloud);
        assert_eq!(linear.provider_key, ProviderKey::LinearCloud);
        let mut trello = ProviderRecord::new_trello(tenant);
        trello.provider_key = ProviderKey::LinearCloud;
        assert_eq!(linear, trello);
    }

    #[test]
    fn record_serialises_without_any_secret_field() {
        let rec = ProviderRecord::new_trello(TenantId::new("acme").unwrap());
        let json = serde_json::to_value(&rec).unwrap();
        assert_eq!(json["provider_key"], "trello_cloud");
        assert_eq!(json["scopes"], serde_json::json!(["read", "write"]));
        assert!(json.get("token").is_none());
    }

    #[test]
    fn records_saved_before_api_root_and_drafts_read_as_saved_with_no_root() {
        let rec = ProviderRecord::new_trello(TenantId::new("acme").unwrap());
        let mut json = serde_json::to_value(&rec).unwrap();
        let obj = json.as_object_mut().unwrap();
        obj.remove("api_root");
        obj.remove("draft");
        let old: ProviderRecord = serde_json::from_value(json).unwrap();
        assert_eq!(old.api_root, None);
        assert!(!old.is_draft());
        assert_eq!(old.state_name(), "saved");
    }

    #[test]
    fn a_draft_drops_every_credential_detail() {
        let tenant = TenantId::new("acme").unwrap();
        let mut rec = ProviderRecord::new_trello(tenant.clone());
        rec.credential = Some(CredentialRef::for_provider(
            &tenant,
            ProviderKey::TrelloCloud,
        ));
        rec.token_expires_at = Some(chrono::DateTime::UNIX_EPOCH);
        let draft = rec.into_draft(vec![BlockedCode::ProviderScopeUnavailable]);
        assert!(draft.is_draft());
        assert_eq!(draft.state_name(), "draft");
        assert_eq!(draft.credential, None);
        assert_eq!(draft.token_expires_at, None);
        let json = serde_json::to_value(&draft).unwrap();
        assert_eq!(
            json["draft"]["blocked_by"],
            serde_json::json!(["PROVIDER_SCOPE_UNAVAILABLE"])
        );
    }
}
