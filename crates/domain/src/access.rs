//! Who may do what in a tenant: the two roles of the people and API tokens of a tenant.
//!
//! Viewers read; admins also set up, save, export, sync and revoke. The rule lives here
//! once, so that every front end (the HTTP API, the pages) asks the same question.

use serde::{Deserialize, Serialize};

/// A person's or an API token's role in its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Viewer,
}

/// What a caller asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// See integration status, runs, events, bundles.
    Read,
    /// Change setup, hold a token, save, export, sync, revoke.
    Change,
}

impl Role {
    /// Whether this role may do `action`.
    pub fn may(self, action: Action) -> bool {
        match (self, action) {
            (_, Action::Read) => true,
            (Role::Admin, Action::Change) => true,
            (Role::Viewer, Action::Change) => false,
        }
    }

    /// `admin` or `viewer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    /// Parses `admin` or `viewer`.
    ///
    /// # Errors
    /// Any other text, with the two accepted words.
    pub fn parse(s: &str) -> Result<Role, String> {
        match s.trim() {
            "admin" => Ok(Role::Admin),
            "viewer" => Ok(Role::Viewer),
            other => Err(format!(
                "role {:?} is not one of admin, viewer",
                crate::echo_untrusted(other)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewers_read_and_only_admins_change() {
        assert!(Role::Viewer.may(Action::Read));
        assert!(!Role::Viewer.may(Action::Change));
        assert!(Role::Admin.may(Action::Read));
        assert!(Role::Admin.may(Action::Change));
    }

    #[test]
    fn roles_parse_from_their_names_only() {
        assert_eq!(Role::parse("admin"), Ok(Role::Admin));
        assert_eq!(Role::parse("viewer"), Ok(Role::Viewer));
        assert!(Role::parse("root").unwrap_err().contains("admin, viewer"));
        assert_eq!(Role::parse(Role::Admin.as_str()), Ok(Role::Admin));
    }
}
