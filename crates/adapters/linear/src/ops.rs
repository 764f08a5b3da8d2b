//! The GraphQL operations the adapter sends, one `.graphql` file each under `graphql/`,
//! loaded at compile time. `tests/schema.rs` validates every document, as sent, against
//! the vendored schema (`vendor/linear/schema.graphql`).

/// Whether an operation reads or writes: a write whose answer is lost is never resent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Query,
    Mutation,
}

/// One GraphQL operation: its name (the `operationName` sent) and its document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    pub name: &'static str,
    pub kind: OpKind,
    /// The whole document sent as `query`, fragments included.
    pub document: &'static str,
    /// The file it comes from, for messages and the schema test.
    pub file: &'static str,
}

macro_rules! op {
    ($konst:ident, $name:literal, $kind:ident) => {
        pub const $konst: Operation = Operation {
            name: $name,
            kind: OpKind::$kind,
            document: include_str!(concat!("../graphql/", $name, ".graphql")),
            file: concat!("graphql/", $name, ".graphql"),
        };
    };
    ($konst:ident, $name:literal, $kind:ident, issue_fields) => {
        pub const $konst: Operation = Operation {
            name: $name,
            kind: OpKind::$kind,
            document: concat!(
                include_str!(concat!("../graphql/", $name, ".graphql")),
                "\n",
                include_str!("../graphql/IssueFields.fragment.graphql")
            ),
            file: concat!("graphql/", $name, ".graphql"),
        };
    };
}

op!(VIEWER, "Viewer", Query);
op!(TEAMS, "Teams", Query);
op!(TEAM_STATES, "TeamStates", Query);
op!(LABELS, "Labels", Query);
op!(LABEL_CREATE, "LabelCreate", Mutation);
op!(USERS, "Users", Query);
op!(
    ISSUE_CREATE_WITH_ATTACHMENT,
    "IssueCreateWithAttachment",
    Mutation,
    issue_fields
);
op!(ISSUE_UPDATE, "IssueUpdate", Mutation, issue_fields);
op!(ISSUE_ARCHIVE, "IssueArchive", Mutation, issue_fields);
op!(ISSUE_UNARCHIVE, "IssueUnarchive", Mutation, issue_fields);
op!(TEAM, "Team", Query);
op!(WORKFLOW_STATE, "WorkflowState", Query);
op!(TEAM_ISSUES_PAGE, "TeamIssuesPage", Query, issue_fields);
op!(ISSUE_BY_FINDING, "IssueByFinding", Query, issue_fields);
op!(
    ATTACHMENTS_FOR_URL,
    "AttachmentsForUrl",
    Query,
    issue_fields
);
op!(TEAM_ISSUES, "TeamIssues", Query, issue_fields);
op!(ISSUE, "Issue", Query, issue_fields);
op!(WEBHOOK_CREATE, "WebhookCreate", Mutation);
op!(WEBHOOK_DELETE, "WebhookDelete", Mutation);
op!(WEBHOOK, "Webhook", Query);

/// Every operation, for the schema test and the documentation.
pub const ALL: &[Operation] = &[
    VIEWER,
    TEAMS,
    TEAM_STATES,
    LABELS,
    LABEL_CREATE,
    USERS,
    ISSUE_CREATE_WITH_ATTACHMENT,
    ISSUE_UPDATE,
    ISSUE_ARCHIVE,
    ISSUE_UNARCHIVE,
    TEAM,
    WORKFLOW_STATE,
    TEAM_ISSUES_PAGE,
    ISSUE_BY_FINDING,
    ATTACHMENTS_FOR_URL,
    TEAM_ISSUES,
    ISSUE,
    WEBHOOK_CREATE,
    WEBHOOK_DELETE,
    WEBHOOK,
];

/// The page size the adapter asks for: small, because a connection multiplies the cost
/// of its children by `first` (FACTS.md "Rate limits": default 50, max 250; a query
/// over 10,000 points is rejected). A page of issues costs about
/// `first × (1 + 50 labels + 10 attachments + 13 fields × 0.1)` ≈ 62 points per issue.
pub const PAGE_SIZE: u32 = 25;

// Small pages keep complexity low: below Linear's default page size of 50.
const _: () = assert!(PAGE_SIZE <= 50);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_named_as_its_file_and_kind() {
        for op in ALL {
            let keyword = match op.kind {
                OpKind::Query => "query",
                OpKind::Mutation => "mutation",
            };
            assert!(
                op.document.contains(&format!("{keyword} {}", op.name)),
                "{} must define {keyword} {}",
                op.file,
                op.name
            );
        }
        let mut names: Vec<_> = ALL.iter().map(|o| o.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "operation names are unique");
    }
}
