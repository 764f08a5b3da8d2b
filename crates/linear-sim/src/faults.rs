//! Injected faults: rules matched against requests in order and consumed.

use std::time::Duration;

/// What an injected fault does to a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer this HTTP status with a plain-text body; the request is not applied.
    Status(u16),
    /// Answer HTTP 400 with a `RATELIMITED` GraphQL error (FACTS.md "Rate limits");
    /// the request is not applied.
    RateLimited,
    /// Close the TCP connection without any response. With `after_apply`
    /// the request is applied first (a write happened, the client never
    /// hears about it).
    DropConnection {
        /// Apply the request before dropping the connection.
        after_apply: bool,
    },
    /// Answer late. With `after_apply` the request is applied immediately
    /// and only the response is delayed (a client timeout then sees a write
    /// that succeeded); without it the request waits, then is applied.
    Delay {
        /// Extra time before the answer.
        delay: Duration,
        /// Apply the request before waiting.
        after_apply: bool,
    },
}

/// A fault applied to the next `times` requests that match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    /// HTTP method to match (case-insensitive), or any.
    pub method: Option<String>,
    /// Prefix of the request path (e.g. `/graphql`, `/oauth/token`), or any.
    pub path_prefix: Option<String>,
    /// GraphQL operation to match: the request's operation name or one of the
    /// root field names of the operation (e.g. `issueCreate`), or any.
    pub operation: Option<String>,
    /// How many matching requests this rule affects before it is used up.
    pub times: u32,
    /// The fault.
    pub fault: Fault,
}

impl FaultRule {
    /// A rule for `times` requests of `method` under `path_prefix`.
    pub fn new(method: Option<&str>, path_prefix: Option<&str>, times: u32, fault: Fault) -> Self {
        FaultRule {
            method: method.map(str::to_owned),
            path_prefix: path_prefix.map(str::to_owned),
            operation: None,
            times,
            fault,
        }
    }

    /// A rule for `times` GraphQL requests whose operation name or a root
    /// field is `operation` (e.g. `"issueCreate"`).
    pub fn graphql(operation: &str, times: u32, fault: Fault) -> Self {
        FaultRule {
            method: Some("POST".into()),
            path_prefix: Some("/graphql".into()),
            operation: Some(operation.to_owned()),
            times,
            fault,
        }
    }

    fn matches(&self, method: &str, path: &str, ops: &[String]) -> bool {
        self.times > 0
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| path.starts_with(p))
            && self
                .operation
                .as_deref()
                .is_none_or(|o| ops.iter().any(|x| x == o))
    }
}

/// The ordered list of pending fault rules.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    rules: Vec<FaultRule>,
}

impl Faults {
    pub(crate) fn push(&mut self, rule: FaultRule) {
        if rule.times > 0 {
            self.rules.push(rule);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.rules.clear();
    }

    /// Consumes one use of the first rule matching the request. `ops` holds
    /// the operation name and the root field names of a GraphQL request.
    pub(crate) fn take(&mut self, method: &str, path: &str, ops: &[String]) -> Option<Fault> {
        let idx = self
            .rules
            .iter()
            .position(|r| r.matches(method, path, ops))?;
        let rule = &mut self.rules[idx];
        rule.times -= 1;
        let fault = rule.fault.clone();
        if rule.times == 0 {
            self.rules.remove(idx);
        }
        Some(fault)
    }

    pub(crate) fn pending(&self) -> Vec<FaultRule> {
        self.rules.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_consumed_in_order_and_match_operations() {
        let mut f = Faults::default();
        f.push(FaultRule::graphql("issueCreate", 1, Fault::Status(500)));
        f.push(FaultRule::new(None, None, 2, Fault::Status(503)));
        let create = vec!["CreateIssue".to_owned(), "issueCreate".to_owned()];
        let read = vec!["viewer".to_owned()];
        assert_eq!(f.take("POST", "/graphql", &read), Some(Fault::Status(503)));
        assert_eq!(
            f.take("post", "/graphql", &create),
            Some(Fault::Status(500))
        );
        assert_eq!(
            f.take("POST", "/graphql", &create),
            Some(Fault::Status(503))
        );
        assert_eq!(f.take("POST", "/graphql", &create), None);
    }
}
