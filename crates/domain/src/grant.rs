//! A credential's grant in tracker-neutral terms (ADR 0005 §7), and how each provider's
//! own description of a credential becomes one. Pure data and rules, like the readiness
//! rules the grant comes from.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::readiness::linear::CredentialObservation;
use crate::readiness::{Permission, TokenObservation, TrackerObservations};

/// Which containers (boards, teams) a credential reaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "ids", rename_all = "snake_case")]
pub enum GrantScope {
    /// Every container its owner can see.
    All,
    /// Only these container ids.
    Some(Vec<String>),
}

impl GrantScope {
    /// Whether the container `id` is reachable.
    pub fn reaches(&self, id: &str) -> bool {
        match self {
            GrantScope::All => true,
            GrantScope::Some(ids) => ids.iter().any(|i| i == id),
        }
    }
}

/// A credential's grant, as every tracker can state it (ADR 0005 §7): the scopes it was
/// issued with (empty = the full rights of its owner, as a personal API key), the
/// containers it reaches, whether it may write, when it expires and whether it can be
/// refreshed without the user (a kept OAuth2 refresh token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub scopes: Vec<String>,
    pub containers: GrantScope,
    pub can_write: bool,
    /// `None` for credentials that never expire.
    pub expires_at: Option<DateTime<Utc>>,
    /// A new access credential can be obtained without the user (a refresh token is kept).
    pub refreshable: bool,
}

impl Grant {
    /// The grant of a credential described by OAuth2-style scopes (Linear): no scopes
    /// means a personal key acting with its owner's full rights; writing needs `write`,
    /// `admin` or a `…:create` scope. Scopes do not restrict containers.
    pub fn from_scopes(
        scopes: Vec<String>,
        expires_at: Option<DateTime<Utc>>,
        refreshable: bool,
    ) -> Grant {
        let can_write = scopes.is_empty()
            || scopes
                .iter()
                .any(|s| s == "write" || s == "admin" || s.ends_with(":create"));
        Grant {
            scopes,
            containers: GrantScope::All,
            can_write,
            expires_at,
            refreshable,
        }
    }

    /// The grant of a credential described by per-object permissions (Trello's token
    /// `permissions`): containers are boards; a `*` board (or `*` type) permission reaches
    /// all of them. Scopes are `read` and `write` as any permission gives them. Such
    /// tokens are never refreshed.
    pub fn from_permissions(
        permissions: &[Permission],
        expires_at: Option<DateTime<Utc>>,
    ) -> Grant {
        let is_board = |p: &&Permission| {
            let t = p.model_type.to_ascii_lowercase();
            t == "board" || t == "*"
        };
        let boards: Vec<&Permission> = permissions.iter().filter(is_board).collect();
        let containers = if boards.iter().any(|p| p.id_model == "*") {
            GrantScope::All
        } else {
            let mut ids: Vec<String> = boards.iter().map(|p| p.id_model.clone()).collect();
            ids.sort();
            ids.dedup();
            GrantScope::Some(ids)
        };
        let mut scopes = Vec::new();
        if permissions.iter().any(|p| p.read) {
            scopes.push("read".to_owned());
        }
        if permissions.iter().any(|p| p.write) {
            scopes.push("write".to_owned());
        }
        Grant {
            scopes,
            containers,
            can_write: boards.iter().any(|p| p.write),
            expires_at,
            refreshable: false,
        }
    }

    /// What is contradictory in the grant, if anything: a refreshable grant without an
    /// expiry (nothing to refresh), or a container list naming no container.
    pub fn inconsistency(&self) -> Option<String> {
        if self.refreshable && self.expires_at.is_none() {
            return Some("the grant is refreshable but has no expiry".into());
        }
        if matches!(&self.containers, GrantScope::Some(ids) if ids.iter().any(|i| i.is_empty())) {
            return Some("the grant names an empty container id".into());
        }
        None
    }
}

impl TrackerObservations {
    /// The grant the provider's own observations describe, without asking again: a
    /// refused or missing credential grants nothing.
    pub fn grant(&self) -> Grant {
        match self {
            TrackerObservations::Linear(o) => match &o.credential {
                CredentialObservation::Valid {
                    scopes,
                    expires_at,
                    refreshable,
                } => Grant::from_scopes(scopes.clone(), *expires_at, *refreshable),
                _ => Grant::from_scopes(vec![], self.credential_expires_at(), false),
            },
            TrackerObservations::Trello(o) => match &o.token {
                TokenObservation::Valid {
                    permissions,
                    expires_at,
                } => Grant::from_permissions(permissions, *expires_at),
                _ => Grant::from_permissions(&[], None),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(model_type: &str, id: &str, write: bool) -> Permission {
        Permission {
            id_model: id.into(),
            model_type: model_type.into(),
            read: true,
            write,
        }
    }

    #[test]
    fn per_object_permissions_become_reachable_containers_and_write_rights() {
        let all = Grant::from_permissions(&[perm("Board", "*", true)], None);
        assert_eq!(all.containers, GrantScope::All);
        assert!(all.can_write && !all.refreshable);
        assert_eq!(all.scopes, ["read", "write"]);
        let one = Grant::from_permissions(
            &[perm("Board", "b1", false), perm("Organization", "*", true)],
            None,
        );
        assert_eq!(one.containers, GrantScope::Some(vec!["b1".into()]));
        assert!(one.containers.reaches("b1") && !one.containers.reaches("b2"));
        assert!(
            !one.can_write,
            "writing to an organization is not writing to a board"
        );
        assert_eq!(one.inconsistency(), None);
    }

    #[test]
    fn scopes_decide_write_rights_and_no_scopes_is_the_owners_full_rights() {
        let key = Grant::from_scopes(vec![], None, false);
        assert!(key.can_write && key.containers == GrantScope::All);
        assert!(!Grant::from_scopes(vec!["read".into()], None, false).can_write);
        assert!(
            Grant::from_scopes(vec!["read".into(), "issues:create".into()], None, false).can_write
        );
        let broken = Grant::from_scopes(vec!["read".into(), "write".into()], None, true);
        assert!(
            broken.inconsistency().is_some(),
            "refreshable without expiry"
        );
        let ok = Grant::from_scopes(vec!["read".into()], Some(Utc::now()), true);
        assert_eq!(ok.inconsistency(), None);
    }
}
