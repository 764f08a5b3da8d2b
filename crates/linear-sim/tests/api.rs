//! The GraphQL API over real HTTP: validation, selection, pagination,
//! identity, attachments, mutations in order, auth, OAuth and person actions.

mod common;

use common::{env, read};
use serde_json::{json, Value};

const CREATE: &str = "mutation Create($input: IssueCreateInput!) {
  issueCreate(input: $input) { success issue { id identifier title description priority priorityLabel
    state { id name type } team { id key } labels { nodes { id name } } assignee { id email } } }
}";

async fn create(e: &common::Env, input: Value) -> Value {
    let d = e.data(CREATE, json!({"input": input})).await;
    d["issueCreate"]["issue"].clone()
}

#[tokio::test]
async fn invalid_document_and_wrong_variable_type_fail_validation() {
    let e = env().await;
    let a = e.gql("{ viewer { id nope } }", json!({})).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.code(), "GRAPHQL_VALIDATION_FAILED");
    assert_eq!(a.body["errors"][0]["extensions"]["type"], "graphql error");
    assert_eq!(a.body["errors"][0]["extensions"]["userError"], true);
    assert!(a.body.get("data").is_none(), "{}", a.body);

    let q = "query Q($n: Int) { issues(first: $n) { nodes { id } } }";
    let a = e.gql(q, json!({"n": "ten"})).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.code(), "BAD_USER_INPUT");

    let q = "query Q($id: String!) { issue(id: $id) { id } }";
    let a = e.gql(q, json!({})).await;
    assert_eq!(a.status, 400, "a missing required variable is an error");
    assert_eq!(a.code(), "BAD_USER_INPUT");

    let a = e.gql("{ viewer { id ", json!({})).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.code(), "GRAPHQL_PARSE_FAILED");
}

#[tokio::test]
async fn exactly_the_selected_fields_with_aliases_and_fragments() {
    let e = env().await;
    let q = "fragment T on Team { key }
      query { me: viewer { id __typename } eng: team(id: \"ENG\") { ...T ... on Team { n: name } } }";
    let d = e.data(q, json!({})).await;
    assert_eq!(
        d,
        json!({
            "me": {"id": e.fx.user("secops").unwrap().id, "__typename": "User"},
            "eng": {"key": "ENG", "n": "Engineering"},
        })
    );
    // Field order follows the document.
    let text = e
        .client
        .post(&e.url)
        .header("Authorization", &e.fx.keys.full)
        .json(&json!({"query": "{ viewer { name id } }"}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.find("\"name\"").unwrap() < text.find("\"id\"").unwrap());
}

#[tokio::test]
async fn pagination_walks_pages_and_rejects_first_above_250() {
    let e = env().await;
    for n in 0..5 {
        create(&e, json!({"teamId": e.fx.eng.id, "title": format!("i{n}")})).await;
    }
    let q = "query P($after: String) { issues(first: 2, after: $after, filter: {team: {id: {eq: \"ENG_ID\"}}}) {
        nodes { title } pageInfo { hasNextPage endCursor } } }"
        .replace("ENG_ID", &e.fx.eng.id);
    let mut after = Value::Null;
    let mut titles = Vec::new();
    let mut pages = 0;
    loop {
        let d = e.data(&q, json!({"after": after})).await;
        pages += 1;
        for n in d["issues"]["nodes"].as_array().unwrap() {
            titles.push(n["title"].as_str().unwrap().to_owned());
        }
        if !d["issues"]["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = d["issues"]["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(pages, 3);
    assert_eq!(titles, ["i0", "i1", "i2", "i3", "i4"]);

    let a = e
        .gql("{ issues(first: 251) { nodes { id } } }", json!({}))
        .await;
    assert_eq!(a.code(), "INPUT_ERROR", "{}", a.body);
    assert!(a.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("250"));
    assert_eq!(a.body["data"], Value::Null);
}

#[tokio::test]
async fn create_with_a_client_id_twice_gives_one_issue_and_an_error() {
    let e = env().await;
    let id = "3f1c2a9e-8b7d-4c6e-9a5f-1e2d3c4b5a69";
    let input = json!({"id": id, "teamId": e.fx.eng.id, "title": "XSS in login"});
    let first = create(&e, input.clone()).await;
    assert_eq!(first["id"], id);
    assert_eq!(first["state"]["type"], "backlog");
    let a = e.gql(CREATE, json!({"input": input})).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.code(), "INPUT_ERROR");
    assert!(a.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("already exists"));
    assert_eq!(a.body["data"], Value::Null);
    assert_eq!(e.h.issues(&e.fx.eng.id).len(), 1);

    // Not a UUID v4: refused too.
    let a = e
        .gql(
            CREATE,
            json!({"input": {"id": "abc", "teamId": e.fx.eng.id, "title": "t"}}),
        )
        .await;
    assert_eq!(a.code(), "INPUT_ERROR");
    // Triage teams put new issues in Triage.
    let ops = create(&e, json!({"teamId": e.fx.ops.id, "title": "t"})).await;
    assert_eq!(ops["state"]["type"], "triage");
}

const ATTACH: &str = "mutation A($i: AttachmentCreateInput!) {
  attachmentCreate(input: $i) { success attachment { id url title issue { id } } } }";

#[tokio::test]
async fn attachments_are_unique_per_issue_and_url_and_found_by_url() {
    let e = env().await;
    let a = create(&e, json!({"teamId": e.fx.eng.id, "title": "a"})).await;
    let b = create(&e, json!({"teamId": e.fx.eng.id, "title": "b"})).await;
    let url = "https://webriskops.test/findings/F-1";
    let one = e
        .data(
            ATTACH,
            json!({"i": {"issueId": a["id"], "url": url, "title": "F-1"}}),
        )
        .await;
    let two = e
        .data(
            ATTACH,
            json!({"i": {"issueId": a["identifier"], "url": url, "title": "F-1 v2"}}),
        )
        .await;
    assert_eq!(
        one["attachmentCreate"]["attachment"]["id"], two["attachmentCreate"]["attachment"]["id"],
        "same url on the same issue updates"
    );
    let snap = e.h.issue(a["id"].as_str().unwrap()).unwrap();
    assert_eq!(snap.attachments.len(), 1);
    assert_eq!(snap.attachments[0].title, "F-1 v2");
    // Another issue may carry the same URL.
    e.data(
        ATTACH,
        json!({"i": {"issueId": b["id"], "url": url, "title": "F-1"}}),
    )
    .await;

    let q = "query F($u: String!) { attachmentsForURL(url: $u) { nodes { url issue { id identifier state { type } } } } }";
    let d = e.data(q, json!({"u": url})).await;
    let nodes = d["attachmentsForURL"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0]["issue"]["id"], a["id"]);
    let q = "query F($u: String!) { issues(filter: {attachments: {some: {url: {eq: $u}}}}) { nodes { id } } }";
    let d = e.data(q, json!({"u": url})).await;
    assert_eq!(d["issues"]["nodes"].as_array().unwrap().len(), 2);
    let link = "mutation { attachmentLinkURL(issueId: \"ISSUE\", url: \"https://webriskops.test/findings/F-1\") { success } }"
        .replace("ISSUE", a["id"].as_str().unwrap());
    e.data(&link, json!({})).await;
    assert_eq!(
        e.h.issue(a["id"].as_str().unwrap())
            .unwrap()
            .attachments
            .len(),
        1
    );
}

#[tokio::test]
async fn several_mutations_run_in_order_and_stop_at_the_first_failure() {
    let e = env().await;
    let issue = create(&e, json!({"teamId": e.fx.eng.id, "title": "t"})).await;
    let id = issue["id"].as_str().unwrap().to_owned();
    let bug = e.fx.eng.labels["Bug"].clone();
    let q = "mutation M($id: String!, $bug: String!, $done: String!) {
      a: issueUpdate(id: $id, input: {labelIds: [$bug], priority: 2}) { success issue { priority } }
      b: issueUpdate(id: \"ENG-999\", input: {title: \"x\"}) { success }
      c: issueUpdate(id: $id, input: {stateId: $done}) { success }
    }";
    let a = e
        .gql(q, json!({"id": id, "bug": bug, "done": e.fx.eng.done}))
        .await;
    assert_eq!(a.status, 200);
    let errors = a.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{}", a.body);
    assert_eq!(errors[0]["path"], json!(["b"]));
    assert_eq!(errors[0]["extensions"]["code"], "INPUT_ERROR");
    assert!(errors[0]["message"]
        .as_str()
        .unwrap()
        .contains("Entity not found"));
    // IssuePayload! is non-null: the error nulls `data` (GraphQL spec), yet `a` was applied.
    assert_eq!(a.body["data"], Value::Null);
    let snap = e.h.issue(&id).unwrap();
    assert_eq!(snap.label_names, ["Bug"]);
    assert_eq!(snap.priority, 2);
    assert_eq!(
        snap.state_type, "backlog",
        "`c` after the failure did not run"
    );

    // Two successes in one document: both payloads come back, in order.
    let q = "mutation M($id: String!, $sec: String!) {
      x: issueUpdate(id: $id, input: {addedLabelIds: [$sec]}) { success issue { labels { nodes { name } } } }
      y: issueUpdate(id: $id, input: {removedLabelIds: [$sec], dueDate: \"2030-01-31\"}) { success issue { dueDate labels { nodes { name } } } }
    }";
    let d = e
        .data(q, json!({"id": id, "sec": e.fx.eng.labels["security"]}))
        .await;
    assert_eq!(
        d["x"]["issue"]["labels"]["nodes"].as_array().unwrap().len(),
        2
    );
    assert_eq!(d["y"]["issue"]["labels"]["nodes"], json!([{"name": "Bug"}]));
    assert_eq!(d["y"]["issue"]["dueDate"], "2030-01-31");
}

#[tokio::test]
async fn auth_failures_scopes_and_team_visibility() {
    let e = env().await;
    let q = "{ viewer { id } }";
    for auth in [None, Some("lin_api_wrong"), Some("Bearer lin_api_wrong")] {
        let a = e.gql_as(auth, q, json!({})).await;
        assert_eq!(a.status, 400, "{auth:?}");
        assert_eq!(a.code(), "AUTHENTICATION_ERROR");
        assert_eq!(
            a.body["errors"][0]["extensions"]["type"],
            "authentication error"
        );
    }
    let bearer_key = format!("Bearer {}", e.fx.keys.full);
    let a = e.gql_as(Some(&bearer_key), q, json!({})).await;
    assert_eq!(
        a.code(),
        "AUTHENTICATION_ERROR",
        "API keys go without Bearer"
    );

    let a = e
        .gql_as(
            Some(&e.fx.keys.read_only),
            CREATE,
            json!({"input": {"teamId": e.fx.eng.id, "title": "t"}}),
        )
        .await;
    assert_eq!(a.code(), "FORBIDDEN");
    assert_eq!(a.body["errors"][0]["extensions"]["type"], "forbidden");
    assert!(e.h.issues(&e.fx.eng.id).is_empty());

    // issues:create may create but not update.
    let a = e
        .gql_as(
            Some(&e.fx.keys.create_only),
            CREATE,
            json!({"input": {"teamId": e.fx.eng.id, "title": "t"}}),
        )
        .await;
    assert!(a.body.get("errors").is_none(), "{}", a.body);

    let ops = e.h.person_create_issue(&e.fx.ops.id, "ops only", "");
    let d = e
        .gql_as(
            Some(&e.fx.keys.eng_only),
            "{ teams { nodes { key } } }",
            json!({}),
        )
        .await;
    assert_eq!(d.body["data"]["teams"]["nodes"], json!([{"key": "ENG"}]));
    let a = e
        .gql_as(
            Some(&e.fx.keys.eng_only),
            "query($i: String!) { issue(id: $i) { id } }",
            json!({"i": ops}),
        )
        .await;
    assert_eq!(a.code(), "INPUT_ERROR");
    assert!(a.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("Entity not found"));

    e.h.revoke_api_key(&e.fx.keys.other_user);
    let a = e.gql_as(Some(&e.fx.keys.other_user), q, json!({})).await;
    assert_eq!(a.code(), "AUTHENTICATION_ERROR");
}

#[tokio::test]
async fn oauth_code_refresh_and_revoke() {
    let e = env().await;
    let o = e.fx.oauth.clone();
    let resp = e
        .client
        .get(format!("{}/oauth/authorize", e.root))
        .query(&[
            ("client_id", o.client_id.as_str()),
            ("redirect_uri", o.redirect_uri.as_str()),
            ("response_type", "code"),
            ("scope", "read,write"),
            ("state", "xyz 1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let loc = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    assert!(loc.as_str().starts_with(&o.redirect_uri));
    let pairs: std::collections::HashMap<_, _> = loc.query_pairs().into_owned().collect();
    assert_eq!(pairs["state"], "xyz 1");
    let code = pairs["code"].clone();

    let token = |form: Vec<(&'static str, String)>| {
        let c = e.client.clone();
        let url = format!("{}/oauth/token", e.root);
        async move { read(c.post(url).form(&form).send().await.unwrap()).await }
    };
    let base = |grant: &str| {
        vec![
            ("grant_type", grant.to_owned()),
            ("client_id", o.client_id.clone()),
            ("client_secret", o.client_secret.clone()),
            ("redirect_uri", o.redirect_uri.clone()),
        ]
    };
    let mut form = base("authorization_code");
    form.push(("code", code.clone()));
    let t = token(form.clone()).await;
    assert_eq!(t.status, 200, "{}", t.body);
    assert_eq!(t.body["token_type"], "Bearer");
    assert!(t.body["expires_in"].as_u64().unwrap() > 0);
    let access = t.body["access_token"].as_str().unwrap().to_owned();
    let refresh = t.body["refresh_token"].as_str().unwrap().to_owned();
    // A code works once.
    let again = token(form).await;
    assert_eq!(again.body["error"], "invalid_grant");

    let bearer = format!("Bearer {access}");
    let a = e
        .gql_as(Some(&bearer), "{ viewer { email } }", json!({}))
        .await;
    assert_eq!(a.body["data"]["viewer"]["email"], "secops@acme.test");
    let a = e
        .gql_as(Some(&access), "{ viewer { email } }", json!({}))
        .await;
    assert_eq!(a.code(), "AUTHENTICATION_ERROR", "OAuth tokens need Bearer");

    e.h.expire_access_token(&access);
    let a = e
        .gql_as(Some(&bearer), "{ viewer { id } }", json!({}))
        .await;
    assert_eq!(a.code(), "AUTHENTICATION_ERROR");
    let mut form = base("refresh_token");
    form.push(("refresh_token", refresh.clone()));
    let r = token(form.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let access2 = r.body["access_token"].as_str().unwrap().to_owned();
    assert_ne!(access2, access);
    assert_eq!(
        token(form).await.body["error"],
        "invalid_grant",
        "refresh tokens rotate"
    );

    let bearer2 = format!("Bearer {access2}");
    let resp = e
        .client
        .post(format!("{}/oauth/revoke", e.root))
        .header("Authorization", &bearer2)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(e.h.token_revoked(&access2));
    let a = e
        .gql_as(Some(&bearer2), "{ viewer { id } }", json!({}))
        .await;
    assert_eq!(a.code(), "AUTHENTICATION_ERROR");
    // Nothing secret reaches the log.
    let log = format!("{:?}", e.h.request_log());
    for s in [
        &access,
        &access2,
        &refresh,
        &code,
        &o.client_secret,
        &e.fx.keys.full,
    ] {
        assert!(!log.contains(s.as_str()));
    }
}

#[tokio::test]
async fn person_actions_are_visible_through_the_api() {
    let e = env().await;
    let issue = create(
        &e,
        json!({"teamId": e.fx.eng.id, "title": "t", "description": "x"}),
    )
    .await;
    let id = issue["id"].as_str().unwrap().to_owned();
    let jdoe = e.fx.user("jdoe").unwrap().id.clone();
    e.h.person_move_issue(&id, &e.fx.eng.duplicate);
    e.h.person_add_label(&id, &e.fx.eng.labels["security"]);
    e.h.person_set_assignee(&id, Some(&jdoe));
    e.h.person_edit_description(&id, "* one\r\n+ two\n1) three");
    let q = "query($i: String!) { issue(id: $i) { description state { type name } assignee { id } labels { nodes { name } } } }";
    let d = e.data(q, json!({"i": id})).await;
    assert_eq!(
        d["issue"]["state"],
        json!({"type": "duplicate", "name": "Duplicate"})
    );
    assert_eq!(d["issue"]["assignee"]["id"], jdoe);
    assert_eq!(d["issue"]["labels"]["nodes"], json!([{"name": "security"}]));
    assert_eq!(d["issue"]["description"], "- one\n- two\n1. three");

    e.h.person_archive_issue(&id);
    let list = "{ issues { nodes { id } } }";
    assert_eq!(e.data(list, json!({})).await["issues"]["nodes"], json!([]));
    let d = e
        .data(
            "{ issues(includeArchived: true) { nodes { archivedAt } } }",
            json!({}),
        )
        .await;
    assert!(d["issues"]["nodes"][0]["archivedAt"].is_string());
    e.h.person_delete_issue(&id);
    let a = e.gql(q, json!({"i": id})).await;
    assert_eq!(a.code(), "INPUT_ERROR");
    // Person actions are not API requests.
    assert!(e.h.request_log().iter().all(|r| r.path == "/graphql"));
}

#[tokio::test]
async fn unsupported_fields_and_filters_are_named_errors() {
    let e = env().await;
    let a = e.gql("{ cycles { nodes { id } } }", json!({})).await;
    assert_eq!(a.code(), "NOT_SUPPORTED_BY_SIMULATOR");
    assert!(a.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("`cycles`"));
    let a = e
        .gql(
            "{ issues(filter: {estimate: {eq: 1}}) { nodes { id } } }",
            json!({}),
        )
        .await;
    assert!(a.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("`estimate`"));
    // A nullable unsupported field: partial data next to the error.
    e.h.person_create_issue(&e.fx.eng.id, "t", "");
    let a = e
        .gql("{ issues { nodes { id cycle { id } } } }", json!({}))
        .await;
    assert_eq!(a.status, 200);
    assert!(
        a.body["data"]["issues"]["nodes"][0]["id"].is_string(),
        "{}",
        a.body
    );
    assert_eq!(a.body["data"]["issues"]["nodes"][0]["cycle"], Value::Null);
    assert_eq!(
        a.body["errors"][0]["path"],
        json!(["issues", "nodes", 0, "cycle"])
    );
}
