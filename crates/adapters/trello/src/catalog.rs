//! Every request the adapter can send, described once. Request builders take their
//! method, path template and parameter names from here, so
//! [`crate::TrelloAdapter::request_catalog`] is exactly what can go over the wire; the
//! contract test checks it against Trello's OpenAPI spec.

use serde::Serialize;

/// HTTP methods the adapter uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Delete,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Delete => "DELETE",
        }
    }

    /// Sending it twice has the same effect as once (GET, PUT, DELETE), so a request
    /// whose answer was lost may be sent again.
    pub fn is_idempotent(self) -> bool {
        !matches!(self, HttpMethod::Post)
    }

    pub(crate) fn reqwest(self) -> reqwest::Method {
        match self {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Post => reqwest::Method::POST,
            HttpMethod::Put => reqwest::Method::PUT,
            HttpMethod::Delete => reqwest::Method::DELETE,
        }
    }
}

/// What a path names, for error messages and for reading a 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Subject {
    /// The credentials themselves (`/members/me`, `/tokens/{token}`): a 401 with an
    /// unknown body means the credentials were refused.
    Credentials,
    Board,
    List,
    Card,
    Checklist,
    /// Several routes at once (`/batch`).
    Batch,
    Webhook,
}

impl Subject {
    pub(crate) fn noun(self) -> &'static str {
        match self {
            Subject::Credentials => "token",
            Subject::Board => "board",
            Subject::List => "list",
            Subject::Card => "card",
            Subject::Checklist => "checklist",
            Subject::Batch => "batch",
            Subject::Webhook => "webhook",
        }
    }
}

/// One kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Op {
    pub method: HttpMethod,
    /// Path below the API root; `{name}` marks a path parameter.
    pub template: &'static str,
    pub query: &'static [&'static str],
    pub body: &'static [&'static str],
    /// Counted against the `/1/members/{id}` budget (FACTS.md §5).
    pub members_limited: bool,
    pub subject: Subject,
}

const fn get(template: &'static str, query: &'static [&'static str], subject: Subject) -> Op {
    Op {
        method: HttpMethod::Get,
        template,
        query,
        body: &[],
        members_limited: false,
        subject,
    }
}

/// `GET /members/me`: the account. Counts against the members budget.
pub(crate) const WHOAMI: Op = Op {
    members_limited: true,
    ..get("/members/{id}", &["fields"], Subject::Credentials)
};
/// `GET /tokens/{token}`: permissions and expiry.
pub(crate) const TOKEN_INFO: Op = get("/tokens/{token}", &["fields"], Subject::Credentials);
/// `GET /members/me/boards`: nested, not counted against the members budget.
pub(crate) const MY_BOARDS: Op = get(
    "/members/{id}/boards",
    &["filter", "fields"],
    Subject::Credentials,
);
pub(crate) const BOARD: Op = get("/boards/{id}", &["fields"], Subject::Board);
pub(crate) const BOARD_LISTS: Op = get("/boards/{id}/lists", &["filter", "fields"], Subject::Board);
pub(crate) const LIST: Op = get("/lists/{id}", &["fields"], Subject::List);
/// `limit=1000`: without it labels past the 50th are silently missing (FACTS.md §3).
pub(crate) const BOARD_LABELS: Op =
    get("/boards/{id}/labels", &["limit", "fields"], Subject::Board);
/// `fields` is documented in the archived docs, not the spec (FACTS.md §5).
pub(crate) const BOARD_MEMBERS: Op = get("/boards/{id}/members", &["fields"], Subject::Board);
/// Query parameters documented in the archived docs, not the spec (FACTS.md §2).
pub(crate) const BOARD_CARDS: Op = get(
    "/boards/{id}/cards",
    &["filter", "limit", "before", "fields", "checklists"],
    Subject::Board,
);
/// `GET /cards/{id}`: one card, with its checklists when asked (reconciling a write).
pub(crate) const CARD: Op = get("/cards/{id}", &["fields", "checklists"], Subject::Card);
/// `GET /batch?urls=…`: up to ten GET routes in one request (FACTS.md §8).
pub(crate) const BATCH: Op = get("/batch", &["urls"], Subject::Batch);

/// `POST /cards` with a JSON body: the marker rides in `desc` (FACTS.md §0-1).
pub(crate) const CARD_CREATE: Op = Op {
    method: HttpMethod::Post,
    template: "/cards",
    query: &[],
    body: &[
        "name",
        "desc",
        "idList",
        "idLabels",
        "idMembers",
        "due",
        "pos",
        // A copy of a step template's checklists (ADR 0006, FACTS.md §1).
        "idCardSource",
        "keepFromSource",
    ],
    members_limited: false,
    subject: Subject::List,
};
/// `DELETE /cards/{id}`: permanent; only ever sent for the exporter's own step
/// templates (ADR 0006), never for a finding's card.
pub(crate) const CARD_DELETE: Op = Op {
    method: HttpMethod::Delete,
    template: "/cards/{id}",
    query: &[],
    body: &[],
    members_limited: false,
    subject: Subject::Card,
};
/// `PUT /cards/{id}` with a JSON body of only the changed fields.
pub(crate) const CARD_UPDATE: Op = Op {
    method: HttpMethod::Put,
    template: "/cards/{id}",
    query: &[],
    body: &[
        "name",
        "desc",
        "idLabels",
        "idMembers",
        "due",
        "idList",
        "closed",
    ],
    members_limited: false,
    subject: Subject::Card,
};
pub(crate) const CHECKLIST_CREATE: Op = Op {
    method: HttpMethod::Post,
    template: "/cards/{id}/checklists",
    query: &["name"],
    body: &[],
    members_limited: false,
    subject: Subject::Card,
};
pub(crate) const CHECK_ITEM_CREATE: Op = Op {
    method: HttpMethod::Post,
    template: "/checklists/{id}/checkItems",
    query: &["name", "pos"],
    body: &[],
    members_limited: false,
    subject: Subject::Checklist,
};
pub(crate) const LABEL_CREATE: Op = Op {
    method: HttpMethod::Post,
    template: "/boards/{id}/labels",
    query: &["name", "color"],
    body: &[],
    members_limited: false,
    subject: Subject::Board,
};
/// `DELETE /tokens/{token}/`, with the spec's trailing slash (FACTS.md §6).
pub(crate) const REVOKE: Op = Op {
    method: HttpMethod::Delete,
    template: "/tokens/{token}/",
    query: &[],
    body: &[],
    members_limited: false,
    subject: Subject::Credentials,
};

/// `POST /webhooks/` (the spec's trailing slash) with query parameters; Trello sends
/// HEAD to `callbackURL` before answering (FACTS.md §7).
pub(crate) const WEBHOOK_CREATE: Op = Op {
    method: HttpMethod::Post,
    template: "/webhooks/",
    query: &["callbackURL", "idModel", "description"],
    body: &[],
    members_limited: false,
    subject: Subject::Webhook,
};
/// `GET /webhooks/{id}`: only the creating token may read it (FACTS.md §7).
pub(crate) const WEBHOOK: Op = get("/webhooks/{id}", &[], Subject::Webhook);
pub(crate) const WEBHOOK_DELETE: Op = Op {
    method: HttpMethod::Delete,
    template: "/webhooks/{id}",
    query: &[],
    body: &[],
    members_limited: false,
    subject: Subject::Webhook,
};
/// `GET /tokens/{token}/webhooks`: the token's webhooks (finding a duplicate's id).
pub(crate) const TOKEN_WEBHOOKS: Op = get("/tokens/{token}/webhooks", &[], Subject::Credentials);

/// Every operation, for the catalog.
pub(crate) const ALL: &[Op] = &[
    WHOAMI,
    TOKEN_INFO,
    MY_BOARDS,
    BOARD,
    BOARD_LISTS,
    LIST,
    BOARD_LABELS,
    BOARD_MEMBERS,
    BOARD_CARDS,
    CARD,
    BATCH,
    CARD_CREATE,
    CARD_UPDATE,
    CARD_DELETE,
    CHECKLIST_CREATE,
    CHECK_ITEM_CREATE,
    LABEL_CREATE,
    REVOKE,
    WEBHOOK_CREATE,
    WEBHOOK,
    WEBHOOK_DELETE,
    TOKEN_WEBHOOKS,
];

/// Routes that may appear inside `GET /batch` (GETs without commas in their query,
/// since `urls` is itself comma-separated).
pub(crate) const BATCHABLE: &[Op] = &[BOARD, LIST, BOARD_LABELS, BOARD_MEMBERS];

/// The description of one kind of request, for contract checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestSpec {
    pub method: HttpMethod,
    /// Below the API root, e.g. `/boards/{id}/labels`.
    pub path_template: String,
    pub query_params: Vec<String>,
    /// Parameters sent as JSON body fields.
    pub body_params: Vec<String>,
    /// The route can be sent inside `GET /batch` (then as a GET with its query).
    pub batchable: bool,
}

impl From<&Op> for RequestSpec {
    fn from(op: &Op) -> Self {
        RequestSpec {
            method: op.method,
            path_template: op.template.to_owned(),
            query_params: op.query.iter().map(|s| (*s).to_owned()).collect(),
            body_params: op.body.iter().map(|s| (*s).to_owned()).collect(),
            batchable: BATCHABLE.contains(op),
        }
    }
}

/// A request as actually sent (recorded when recording is on): path parameters with
/// any token replaced by `<token>`, parameter names only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SentRequest {
    pub method: HttpMethod,
    pub path_template: String,
    /// Path parameters in template order, e.g. `[("id", "5f…")]`.
    pub path_params: Vec<(String, String)>,
    pub query_params: Vec<String>,
    pub body_params: Vec<String>,
    /// Sent inside a `GET /batch`.
    pub in_batch: bool,
}

/// The placeholder names of a template, in order.
pub(crate) fn placeholders(template: &str) -> Vec<&str> {
    template
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

/// The path segments of `template` with its placeholders filled by `args` in order.
/// `value` as it appears in a URL path once percent-encoded as one segment.
pub(crate) fn encoded_segment(value: &str) -> String {
    let mut u = url::Url::parse("http://x/").expect("valid");
    u.path_segments_mut().expect("base").clear().push(value);
    u.path().trim_start_matches('/').to_owned()
}

pub(crate) fn segments(template: &str, args: &[&str]) -> Vec<String> {
    let mut args = args.iter();
    template
        .trim_start_matches('/')
        .split('/')
        .map(|seg| {
            if seg.starts_with('{') && seg.ends_with('}') {
                (*args.next().expect("one argument per placeholder")).to_owned()
            } else {
                seg.to_owned()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_in_order_and_keep_a_trailing_slash() {
        assert_eq!(
            segments("/boards/{id}/labels", &["abc"]),
            vec!["boards", "abc", "labels"]
        );
        assert_eq!(
            segments("/tokens/{token}/", &["t"]),
            vec!["tokens", "t", ""]
        );
        assert_eq!(
            placeholders("/cards/{idCard}/checkItem/{idCheckItem}"),
            vec!["idCard", "idCheckItem"]
        );
    }

    #[test]
    fn only_post_is_not_idempotent() {
        assert!(HttpMethod::Get.is_idempotent());
        assert!(HttpMethod::Put.is_idempotent());
        assert!(HttpMethod::Delete.is_idempotent());
        assert!(!HttpMethod::Post.is_idempotent());
    }
}
