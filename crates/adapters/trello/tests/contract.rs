//! Contract test: every request the adapter can send, and every request it sent to the
//! simulator during a scenario, matches an operation documented in Trello's OpenAPI
//! spec (`vendor/trello/openapi.json`): method, path template, parameter
//! names and path-id patterns. The spec's known defects are fixed at load, and the
//! documented gaps (FACTS.md) are added explicitly below, each with its source.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use common::{adapter, world, MISSING_ID};
use regex::Regex;
use serde_json::Value;
use webriskops_domain::{marker, FindingId, TargetState};
use webriskops_ports::{
    ItemChanges, ListItemsOptions, NewItem, NewLabel, NewStepTemplate, Placement,
    TrackerIntrospection, WorkItems,
};
use webriskops_trello::{HttpMethod, RequestSpec, SentRequest, TrelloAdapter};

// ------------------------------------------------------------------ the spec

/// `<workspace root>/vendor/trello/openapi.json`: vendored, so a clone anywhere runs this test
/// (source, licence and known defects in `vendor/trello/SOURCE.md`).
fn spec_path() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = manifest
        .ancestors()
        .nth(3)
        .expect("crates/adapters/trello lies three levels below the workspace root");
    root.join("vendor/trello/openapi.json")
}

#[derive(Debug, Clone)]
struct Operation {
    method: String,
    /// Normalized: no trailing slash.
    path: String,
    /// Path parameter schemas by name.
    path_params: BTreeMap<String, Value>,
    query: BTreeSet<String>,
    /// Fields a JSON body may carry; `None` when the operation takes no body.
    body: Option<BTreeSet<String>>,
}

struct Spec {
    ops: Vec<Operation>,
    schemas: Value,
    /// Repairs made at load, for the record.
    fixes: Vec<String>,
}

/// Removes repeated values from every `enum` (the spec lists "start" twice in
/// `keepFromSource` of POST /cards, see SOURCE.md); returns how many were removed.
fn dedupe_enums(v: &mut Value) -> usize {
    let mut n = 0;
    match v {
        Value::Object(m) => {
            if let Some(Value::Array(items)) = m.get_mut("enum") {
                let mut seen = Vec::new();
                items.retain(|x| {
                    if seen.contains(x) {
                        n += 1;
                        false
                    } else {
                        seen.push(x.clone());
                        true
                    }
                });
            }
            for (_, x) in m.iter_mut() {
                n += dedupe_enums(x);
            }
        }
        Value::Array(a) => {
            for x in a {
                n += dedupe_enums(x);
            }
        }
        _ => {}
    }
    n
}

fn normalize(path: &str) -> String {
    let p = path.trim_end_matches('/');
    if p.is_empty() {
        "/".into()
    } else {
        p.to_owned()
    }
}

fn load_spec() -> Spec {
    let path = spec_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the Trello OpenAPI spec is required for the contract test and was not found at {} ({e}); \
             it is vendored at vendor/trello/openapi.json in the repository",
            path.display()
        )
    });
    let mut doc: Value = serde_json::from_str(&text).expect("the spec is JSON");
    let mut fixes = Vec::new();

    // Defect 1: a duplicated enum value (SOURCE.md).
    let removed = dedupe_enums(&mut doc);
    assert!(
        removed >= 1,
        "the known duplicate in keepFromSource is expected"
    );
    fixes.push(format!("removed {removed} duplicate enum value(s)"));

    let schemas = doc["components"]["schemas"].clone();
    let mut ops = Vec::new();
    for (raw_path, item) in doc["paths"].as_object().expect("paths") {
        // Defect 2: trailing-slash paths (`/tokens/{token}/`, `/webhooks/`, …, FACTS.md
        // §10.8). Trello's router ignores one trailing slash; compare without it.
        let path = normalize(raw_path);
        if &path != raw_path {
            fixes.push(format!("trailing slash: {raw_path}"));
        }
        let shared: Vec<Value> = item
            .get("parameters")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (method, op) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            let mut path_params = BTreeMap::new();
            let mut query = BTreeSet::new();
            let own = op
                .get("parameters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for p in shared.iter().chain(own.iter()) {
                let name = p["name"].as_str().unwrap_or_default().to_owned();
                match p["in"].as_str() {
                    Some("path") => {
                        path_params.insert(name, p["schema"].clone());
                    }
                    Some("query") => {
                        query.insert(name);
                    }
                    _ => {}
                }
            }
            let body = op.get("requestBody").map(|_| BTreeSet::new());
            ops.push(Operation {
                method: method.to_ascii_uppercase(),
                path: path.clone(),
                path_params,
                query,
                body,
            });
        }
    }
    let mut spec = Spec {
        ops,
        schemas,
        fixes,
    };

    // Defect 3: POST and PUT /cards declare no requestBody, but say "Query parameters
    // may also be replaced with a JSON request body instead" (FACTS.md §0, §1). A JSON
    // body may carry exactly the documented query parameters.
    for (m, p) in [("POST", "/cards"), ("PUT", "/cards/{id}")] {
        let op = spec.op_mut(m, p);
        op.body = Some(op.query.clone());
        spec.fixes
            .push(format!("JSON body = query parameters on {m} {p}"));
    }
    // Gap 1: GET /boards/{id}/cards documents only the path id; its query parameters
    // come from the archived docs [A board.html] (FACTS.md §2, §10.5).
    let op = spec.op_mut("GET", "/boards/{id}/cards");
    assert!(op.query.is_empty(), "the spec still lacks them");
    for q in [
        "fields",
        "filter",
        "checklists",
        "checkItemStates",
        "members",
        "member_fields",
        "attachments",
        "attachment_fields",
        "stickers",
        "actions",
        "limit",
        "since",
        "before",
    ] {
        op.query.insert(q.to_owned());
    }
    // Gap 2: GET /boards/{id}/members documents no query parameters; [A] gives
    // `filter` and `fields` (FACTS.md §5).
    let op = spec.op_mut("GET", "/boards/{id}/members");
    assert!(op.query.is_empty(), "the spec still lacks them");
    op.query.extend(["filter".to_owned(), "fields".to_owned()]);
    spec.fixes.push(
        "query parameters of GET /boards/{id}/cards and /boards/{id}/members from [A]".into(),
    );
    spec
}

impl Spec {
    fn op_mut(&mut self, method: &str, path: &str) -> &mut Operation {
        self.ops
            .iter_mut()
            .find(|o| o.method == method && o.path == path)
            .unwrap_or_else(|| panic!("{method} {path} is in the spec"))
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let name = r.rsplit('/').next().unwrap_or_default();
                &self.schemas[name]
            }
            None => schema,
        }
    }

    /// Whether a path parameter value fits its schema (pattern, or any alternative of a
    /// `oneOf`). Exception: a member id may be `me`, as every Trello doc writes
    /// `/1/members/me` (FACTS.md §5), although `/members/{id}/boards` declares TrelloID.
    fn value_fits(&self, template: &str, name: &str, schema: &Value, value: &str) -> bool {
        if template.starts_with("/members/{id}") && name == "id" && value == "me" {
            return true;
        }
        let s = self.resolve(schema);
        if let Some(alts) = s.get("oneOf").and_then(Value::as_array) {
            return alts
                .iter()
                .any(|a| self.value_fits(template, name, a, value));
        }
        match s.get("pattern").and_then(Value::as_str) {
            Some(p) => Regex::new(p).expect("valid pattern").is_match(value),
            None => true,
        }
    }

    fn find(&self, method: &str, template: &str) -> Result<&Operation, String> {
        let want: Vec<&str> = template.trim_end_matches('/').split('/').collect();
        self.ops
            .iter()
            .find(|o| {
                let have: Vec<&str> = o.path.split('/').collect();
                o.method == method
                    && have.len() == want.len()
                    && have.iter().zip(&want).all(|(h, w)| h == w)
            })
            .ok_or_else(|| format!("{method} {template}: no documented operation"))
    }

    fn check_params(
        op: &Operation,
        what: &str,
        query: &[String],
        body: &[String],
    ) -> Result<(), String> {
        for q in query {
            if q == "key" || q == "token" {
                return Err(format!("{what}: credential `{q}` in the URL"));
            }
            if !op.query.contains(q) {
                return Err(format!("{what}: undocumented query parameter `{q}`"));
            }
        }
        if !body.is_empty() {
            let Some(allowed) = &op.body else {
                return Err(format!(
                    "{what}: the operation takes no JSON body, got {body:?}"
                ));
            };
            for b in body {
                if !allowed.contains(b) {
                    return Err(format!("{what}: undocumented body field `{b}`"));
                }
            }
        }
        Ok(())
    }

    fn check_spec(&self, r: &RequestSpec) -> Result<(), String> {
        let what = format!("{} {}", r.method.as_str(), r.path_template);
        let op = self.find(r.method.as_str(), &r.path_template)?;
        Self::check_params(op, &what, &r.query_params, &r.body_params)?;
        if r.batchable {
            if r.method != HttpMethod::Get || !r.body_params.is_empty() {
                return Err(format!("{what}: only GETs without a body can be batched"));
            }
            self.find("GET", "/batch")?;
        }
        Ok(())
    }

    fn check_sent(&self, r: &SentRequest) -> Result<(), String> {
        let what = format!(
            "{} {} {:?}",
            r.method.as_str(),
            r.path_template,
            r.path_params
        );
        let op = self.find(r.method.as_str(), &r.path_template)?;
        Self::check_params(op, &what, &r.query_params, &r.body_params)?;
        for (name, value) in &r.path_params {
            let schema = op
                .path_params
                .get(name)
                .ok_or_else(|| format!("{what}: undocumented path parameter `{name}`"))?;
            if !self.value_fits(&op.path, name, schema, value) {
                return Err(format!(
                    "{what}: `{name}` = {value:?} does not fit its schema"
                ));
            }
        }
        Ok(())
    }

    /// A request as the simulator logged it: method and concrete path (`/1/…`, tokens
    /// shown as `{token}`).
    fn check_logged(&self, method: &str, path: &str) -> Result<(), String> {
        let rest = path
            .strip_prefix("/1")
            .ok_or_else(|| format!("{method} {path}: outside the API root"))?;
        let want: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
        let fits = self.ops.iter().any(|o| {
            let have: Vec<&str> = o.path.split('/').collect();
            o.method == method
                && have.len() == want.len()
                && have.iter().zip(&want).all(|(h, w)| {
                    match h.strip_prefix('{').and_then(|h| h.strip_suffix('}')) {
                        Some(name) => o
                            .path_params
                            .get(name)
                            .is_some_and(|s| self.value_fits(&o.path, name, s, w)),
                        None => h == w,
                    }
                })
        });
        if fits {
            Ok(())
        } else {
            Err(format!("{method} {path}: matches no documented operation"))
        }
    }
}

// ------------------------------------------------------------------ the checks

#[test]
fn the_spec_loads_with_its_defects_fixed() {
    let spec = load_spec();
    assert!(spec.ops.len() >= 250, "{} operations", spec.ops.len());
    assert!(spec.fixes.iter().any(|f| f.contains("/tokens/{token}/")));
    let post = spec
        .ops
        .iter()
        .find(|o| o.method == "POST" && o.path == "/cards")
        .unwrap();
    assert!(post.body.as_ref().unwrap().contains("desc"));
    assert!(
        spec.find("DELETE", "/tokens/{token}/").is_ok(),
        "trailing slash tolerated"
    );
}

#[test]
fn every_request_in_the_catalog_is_documented() {
    let spec = load_spec();
    let catalog = TrelloAdapter::request_catalog();
    assert!(catalog.len() >= 15);
    let failures: Vec<String> = catalog
        .iter()
        .filter_map(|r| spec.check_spec(r).err())
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn invented_requests_are_caught() {
    let spec = load_spec();
    let req = |m, p: &str, q: &[&str], b: &[&str]| RequestSpec {
        method: m,
        path_template: p.to_owned(),
        query_params: q.iter().map(|s| (*s).to_owned()).collect(),
        body_params: b.iter().map(|s| (*s).to_owned()).collect(),
        batchable: false,
    };
    // "Can not POST" (trello-archive/api-docs#159): the add-label route takes `value`.
    let e = spec
        .check_spec(&req(
            HttpMethod::Post,
            "/cards/{id}/idLabels/{idLabel}",
            &[],
            &[],
        ))
        .unwrap_err();
    assert!(e.contains("no documented operation"), "{e}");
    assert!(spec
        .check_spec(&req(
            HttpMethod::Post,
            "/cards/{id}/idLabels",
            &["value"],
            &[]
        ))
        .is_ok());
    // Made-up or undocumented query parameters (`sort` is TDN's, documented nowhere).
    let e = spec
        .check_spec(&req(
            HttpMethod::Get,
            "/boards/{id}/labels",
            &["limit", "sort"],
            &[],
        ))
        .unwrap_err();
    assert!(e.contains("`sort`"), "{e}");
    assert!(spec
        .check_spec(&req(HttpMethod::Get, "/boards/{id}/cards", &["sort"], &[]))
        .is_err());
    // Credentials in the URL.
    let e = spec
        .check_spec(&req(HttpMethod::Get, "/boards/{id}", &["key"], &[]))
        .unwrap_err();
    assert!(e.contains("credential"), "{e}");
    // A JSON body where none is documented, and an unknown body field.
    assert!(spec
        .check_spec(&req(
            HttpMethod::Post,
            "/boards/{id}/labels",
            &[],
            &["name"]
        ))
        .is_err());
    assert!(spec
        .check_spec(&req(HttpMethod::Put, "/cards/{id}", &[], &["labels"]))
        .is_err());
    // A path id that is not a TrelloID.
    let sent = SentRequest {
        method: HttpMethod::Get,
        path_template: "/boards/{id}".into(),
        path_params: vec![("id".into(), "Security Remediation".into())],
        query_params: vec![],
        body_params: vec![],
        in_batch: false,
    };
    assert!(spec.check_sent(&sent).unwrap_err().contains("does not fit"));
    // Concrete paths as the simulator logs them.
    assert!(spec
        .check_logged(
            "POST",
            "/1/cards/5f0c0c0c0c0c0c0c0c0c0c0c/idLabels/5f0c0c0c0c0c0c0c0c0c0c0d"
        )
        .is_err());
    assert!(spec.check_logged("GET", "/1/cards/not-an-id").is_err());
    assert!(spec
        .check_logged("GET", "/1/boards/5f0c0c0c0c0c0c0c0c0c0c0c/lists")
        .is_ok());
    assert!(spec.check_logged("DELETE", "/1/tokens/{token}/").is_ok());
}

fn item(list: &str, f: &str) -> NewItem {
    let id = FindingId::new(f).unwrap();
    NewItem {
        body: format!("x\n\n---\n{}", marker(&id)),
        finding_id: id,
        destination_id: list.to_owned(),
        title: f.to_owned(),
        label_ids: vec![],
        member_ids: vec![],
        due: None,
        placement: Placement::Top,
        label_names: vec![],
        assignee: None,
        notes: vec![],
        target: TargetState::Open,
        priority: None,
    }
}

#[tokio::test]
async fn every_request_sent_in_a_scenario_is_documented() {
    let spec = load_spec();
    let w = world().await;
    let fx = &w.fx;
    let a = adapter(&w, &fx.tokens.full);
    a.start_recording();

    a.whoami().await.unwrap();
    a.token_info().await.unwrap();
    a.containers().await.unwrap();
    a.container(&fx.board_id).await.unwrap();
    a.destinations(&fx.board_id).await.unwrap();
    a.destination(&fx.list_id).await.unwrap();
    a.labels(&fx.board_id).await.unwrap();
    a.members(&fx.board_id).await.unwrap();
    a.readiness_snapshot(&fx.board_id, &[&fx.list_id, &fx.done_list_id])
        .await
        .unwrap();
    let label = a
        .create_label(&NewLabel {
            container_id: fx.board_id.clone(),
            name: "severity: low".into(),
            color: Some("blue".into()),
        })
        .await
        .unwrap();
    let mut it = item(&fx.list_id, "contract-1");
    it.label_ids = vec![label.id.clone()];
    it.member_ids = vec![fx.member("jdoe").unwrap().id.clone()];
    it.due = chrono::NaiveDate::from_ymd_opt(2026, 1, 2);
    let card = a.create_item(&it).await.unwrap();
    a.create_item(&item(&fx.list_id, "contract-2"))
        .await
        .unwrap();
    a.update_item(
        &card.id,
        &ItemChanges {
            title: Some("t".into()),
            body: Some(it.body.clone()),
            label_ids: Some(vec![]),
            member_ids: Some(vec![]),
            due: Some(None),
            destination_id: Some(fx.doing_list_id.clone()),
            archived: Some(false),
            // Trello has no native priority (it travels as a label).
            priority: None,
        },
    )
    .await
    .unwrap();
    a.update_item(&card.id, &ItemChanges::default())
        .await
        .unwrap();
    let cl = a.create_checklist(&card.id, "Remediation").await.unwrap();
    a.add_check_item(&cl.id, "step one", 1).await.unwrap();
    // Step templates (ADR 0006): made, copied, deleted.
    let template = a
        .create_step_template(&NewStepTemplate {
            container_id: fx.board_id.clone(),
            destination_id: fx.list_id.clone(),
            key: webriskops_domain::step_group_key(&["a".into(), "b".into()]),
            title: "template".into(),
            body: "steps".into(),
            checklist_name: "Remediation".into(),
            steps: vec!["a".into(), "b".into()],
        })
        .await
        .unwrap();
    a.create_item_copying(&item(&fx.list_id, "contract-3"), &template.id)
        .await
        .unwrap();
    a.delete_step_template(&template.id).await.unwrap();
    let page = a
        .list_items(&ListItemsOptions {
            container_id: fx.board_id.clone(),
            page_size: 1,
            include_archived: true,
            with_checklists: true,
            cursor: None,
            done_destination: None,
        })
        .await
        .unwrap();
    a.list_items(&ListItemsOptions {
        container_id: fx.board_id.clone(),
        page_size: 1,
        include_archived: false,
        with_checklists: false,
        cursor: page.next_cursor,
        done_destination: None,
    })
    .await
    .unwrap();
    let _ = a.container(MISSING_ID).await;
    // Webhooks: register (twice: the duplicate is looked up), read, delete.
    let cb = trello_sim::callback::CallbackServer::start().await;
    let hook = webriskops_ports::TrackerWebhooks::register(&a, &fx.board_id, &cb.url("/h"))
        .await
        .unwrap();
    webriskops_ports::TrackerWebhooks::register(&a, &fx.board_id, &cb.url("/h"))
        .await
        .unwrap();
    webriskops_ports::TrackerWebhooks::health(&a, &hook.id)
        .await
        .unwrap();
    webriskops_ports::TrackerWebhooks::delete(&a, &hook.id)
        .await
        .unwrap();
    let rv = adapter(&w, &fx.tokens.revocable);
    rv.start_recording();
    rv.revoke_token().await.unwrap();

    let sent: Vec<SentRequest> = a
        .recorded_requests()
        .into_iter()
        .chain(rv.recorded_requests())
        .collect();
    let failures: Vec<String> = sent
        .iter()
        .filter_map(|r| spec.check_sent(r).err())
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(
        sent.iter().any(|r| r.in_batch),
        "batched routes are recorded and checked"
    );

    // The scenario exercised the whole catalog.
    let used: BTreeSet<(HttpMethod, String)> = sent
        .iter()
        .map(|r| (r.method, r.path_template.clone()))
        .collect();
    let missing: Vec<RequestSpec> = TrelloAdapter::request_catalog()
        .into_iter()
        .filter(|r| !used.contains(&(r.method, r.path_template.clone())))
        .collect();
    assert!(missing.is_empty(), "not exercised: {missing:#?}");

    // What actually reached the server, as the simulator logged it.
    let log = w.handle.request_log();
    assert!(log.len() >= 20);
    let failures: Vec<String> = log
        .iter()
        .filter_map(|r| spec.check_logged(&r.method, &r.path).err())
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(
        log.iter()
            .all(|r| r.status != 414 && r.route != "unmatched"),
        "{log:#?}"
    );
}
