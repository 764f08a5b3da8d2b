//! `POST /graphql`: request parsing, authentication, validation against the
//! vendored schema, variable coercion, complexity, rate limits, execution and
//! the GraphQL response with Linear's error `extensions` (FACTS.md "Errors").

use std::cell::RefCell;
use std::sync::OnceLock;
use std::time::Instant;

use apollo_compiler::executable::OperationType;
use apollo_compiler::resolvers::Execution;
use apollo_compiler::response::{GraphQLError, JsonMap};
use apollo_compiler::validation::Valid;
use apollo_compiler::{ast, ExecutableDocument, Schema};
use serde::Serialize;
use serde_json::{json, Value};

use crate::auth::{self, Auth, CredKind};
use crate::complexity;
use crate::exec::{Ctx, Obj};
use crate::ratelimit::{Budget, Limits, Refusal};
use crate::state::State;

static SCHEMA: OnceLock<Result<Valid<Schema>, String>> = OnceLock::new();

/// The vendored Linear schema, parsed and validated once per process.
pub(crate) fn schema() -> Result<&'static Valid<Schema>, String> {
    SCHEMA
        .get_or_init(|| {
            let src = include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../vendor/linear/schema.graphql"
            ));
            Schema::parse_and_validate(src, "vendor/linear/schema.graphql").map_err(|e| {
                format!(
                    "vendor/linear/schema.graphql does not validate: {}",
                    e.errors
                )
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Limits and switches of the GraphQL endpoint.
#[derive(Debug, Clone)]
pub(crate) struct GqlConfig {
    pub api_key: Limits,
    pub oauth: Limits,
    pub unauthenticated: Limits,
    pub max_complexity: u64,
    pub markdown: bool,
    /// Accept plain-http loopback webhook URLs (tests); Linear wants public HTTPS.
    pub allow_loopback_webhooks: bool,
}

/// What `/graphql` answered, for the response and the log.
#[derive(Debug, Clone)]
pub(crate) struct GqlOutcome {
    pub status: u16,
    pub body: Vec<u8>,
    pub budget: Budget,
    pub complexity: Option<u64>,
    pub operation_name: Option<String>,
    pub root_fields: Vec<String>,
    pub error_code: Option<String>,
}

/// The operation name and root field names of a request body, read without
/// validation (for fault matching and the log).
pub(crate) fn peek(body: &[u8]) -> (Option<String>, Vec<String>) {
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return (None, Vec::new());
    };
    let Some(query) = req.get("query").and_then(Value::as_str) else {
        return (None, Vec::new());
    };
    let wanted = req.get("operationName").and_then(Value::as_str);
    let doc = match ast::Document::parse(query, "request.graphql") {
        Ok(d) => d,
        Err(e) => e.partial,
    };
    for def in &doc.definitions {
        if let ast::Definition::OperationDefinition(op) = def {
            let name = op.name.as_ref().map(|n| n.as_str().to_owned());
            if wanted.is_some() && name.as_deref() != wanted {
                continue;
            }
            let roots = op
                .selection_set
                .iter()
                .filter_map(|s| match s {
                    ast::Selection::Field(f) => Some(f.name.as_str().to_owned()),
                    _ => None,
                })
                .collect();
            return (name.or_else(|| wanted.map(str::to_owned)), roots);
        }
    }
    (wanted.map(str::to_owned), Vec::new())
}

fn error(message: &str, code: &str, ty: &str) -> Value {
    json!({
        "message": message,
        "extensions": {"code": code, "type": ty, "userError": true, "userPresentableMessage": message},
    })
}

struct Req<'a> {
    st: &'a mut State,
    cfg: &'a GqlConfig,
    now: Instant,
    out: GqlOutcome,
}

impl Req<'_> {
    fn fail(mut self, status: u16, errors: Vec<Value>) -> GqlOutcome {
        self.out.status = status;
        self.out.error_code = errors
            .first()
            .and_then(|e| e.pointer("/extensions/code"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        self.out.body = json!({ "errors": errors }).to_string().into_bytes();
        self.out
    }
}

fn limits_of(cfg: &GqlConfig, auth: &Auth) -> Limits {
    match auth.kind {
        CredKind::ApiKey => cfg.api_key,
        CredKind::OAuth { .. } => cfg.oauth,
    }
}

const ANON_BUCKET: &str = "ip:127.0.0.1";

fn ratelimited(refusal: Refusal) -> Value {
    // FACTS.md "Rate limits": HTTP 400 with extensions.code RATELIMITED.
    let what = match refusal {
        Refusal::Requests => "request",
        Refusal::Complexity => "complexity",
    };
    error(
        &format!("Rate limit exceeded: the {what} budget is used up; retry after the X-RateLimit-*-Reset time"),
        "RATELIMITED",
        "ratelimited",
    )
}

/// Answers one `POST /graphql`.
pub(crate) fn process(
    st: &mut State,
    cfg: &GqlConfig,
    authorization: Option<&str>,
    content_type: &str,
    body: &[u8],
) -> GqlOutcome {
    let now = Instant::now();
    let (operation_name, root_fields) = peek(body);
    let budget = st.limiter.budget(ANON_BUCKET, cfg.unauthenticated, now);
    let mut req = Req {
        st,
        cfg,
        now,
        out: GqlOutcome {
            status: 200,
            body: Vec::new(),
            budget,
            complexity: None,
            operation_name,
            root_fields,
            error_code: None,
        },
    };

    // Authentication first: Linear answers every request without valid
    // credentials with AUTHENTICATION_ERROR (FACTS.md "Errors" [2]).
    let auth = match auth::authenticate(req.st, authorization, now) {
        Ok(a) => a,
        Err(failure) => {
            let (verdict, b) = req
                .st
                .limiter
                .admit(ANON_BUCKET, cfg.unauthenticated, 0.0, now);
            req.out.budget = b;
            if let Err(r) = verdict {
                return req.fail(400, vec![ratelimited(r)]);
            }
            return req.fail(
                400,
                vec![error(
                    &failure.0,
                    "AUTHENTICATION_ERROR",
                    "authentication error",
                )],
            );
        }
    };
    let limits = limits_of(cfg, &auth);
    let bucket = auth.bucket();
    req.out.budget = req.st.limiter.budget(&bucket, limits, now);

    match execute(&mut req, &auth, &bucket, limits, content_type, body) {
        Ok(()) => req.out,
        Err((status, errors)) => req.fail(status, errors),
    }
}

type Failure = (u16, Vec<Value>);

fn execute(
    req: &mut Req<'_>,
    auth: &Auth,
    bucket: &str,
    limits: Limits,
    content_type: &str,
    body: &[u8],
) -> Result<(), Failure> {
    let bad = |m: &str| (400, vec![error(m, "BAD_REQUEST", "graphql error")]);
    // Take one request from the bucket for anything an authenticated client sends.
    let charge = |req: &mut Req<'_>, points: f64| -> Result<(), Failure> {
        let (verdict, b) = req.st.limiter.admit(bucket, limits, points, req.now);
        req.out.budget = b;
        verdict.map_err(|r| (400, vec![ratelimited(r)]))
    };
    if !content_type.starts_with("application/json") {
        charge(req, 0.0)?;
        return Err(bad(
            "request content-type must be application/json with a body {\"query\", \"variables\", \"operationName\"}",
        ));
    }
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
        charge(req, 0.0)?;
        return Err(bad(
            "request body must be a JSON object {\"query\", \"variables\", \"operationName\"}",
        ));
    };
    let Some(query) = request.get("query").and_then(Value::as_str) else {
        charge(req, 0.0)?;
        return Err(bad("request body has no `query` string"));
    };
    let op_name = match request.get("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            charge(req, 0.0)?;
            return Err(bad("`operationName` must be a string"));
        }
    };
    let variables: JsonMap = match request.get("variables") {
        None | Some(Value::Null) => JsonMap::new(),
        Some(v @ Value::Object(_)) => serde_json::from_value(v.clone()).unwrap_or_default(),
        Some(_) => {
            charge(req, 0.0)?;
            return Err(bad("`variables` must be a JSON object"));
        }
    };

    let schema = schema().map_err(|e| {
        (
            500,
            vec![error(&e, "INTERNAL_SERVER_ERROR", "internal error")],
        )
    })?;
    let validation_errors = |errs: &apollo_compiler::validation::DiagnosticList, code: &str| {
        let list: Vec<Value> = errs
            .iter()
            .map(|d| {
                let g = d.to_json();
                let mut v = error(&g.message, code, "graphql error");
                if !g.locations.is_empty() {
                    v["locations"] = serde_json::to_value(&g.locations).unwrap_or(Value::Null);
                }
                v
            })
            .collect();
        (400, list)
    };
    if let Err(e) = ast::Document::parse(query, "request.graphql") {
        charge(req, 0.0)?;
        return Err(validation_errors(&e.errors, "GRAPHQL_PARSE_FAILED"));
    }
    let doc = match ExecutableDocument::parse_and_validate(schema, query, "request.graphql") {
        Ok(d) => d,
        Err(e) => {
            charge(req, 0.0)?;
            return Err(validation_errors(&e.errors, "GRAPHQL_VALIDATION_FAILED"));
        }
    };
    let op = match doc.operations.get(op_name.as_deref()) {
        Ok(op) => op,
        Err(e) => {
            charge(req, 0.0)?;
            return Err((
                400,
                vec![error(
                    &format!("{}", e.message()),
                    "GRAPHQL_VALIDATION_FAILED",
                    "graphql error",
                )],
            ));
        }
    };
    if let Some(n) = &op.name {
        req.out.operation_name = Some(n.as_str().to_owned());
    }
    req.out.root_fields = op
        .root_fields(&doc)
        .map(|f| f.name.as_str().to_owned())
        .collect();
    let vars = match apollo_compiler::request::coerce_variable_values(schema, op, &variables) {
        Ok(v) => v,
        Err(e) => {
            charge(req, 0.0)?;
            return Err((
                400,
                vec![error(
                    &format!("{}", e.message()),
                    "BAD_USER_INPUT",
                    "invalid input",
                )],
            ));
        }
    };
    let points = complexity::estimate(&doc, &op.selection_set, &vars);
    req.out.complexity = Some(points);
    let too_complex = points > req.cfg.max_complexity;
    #[allow(clippy::cast_precision_loss)]
    let charged = if too_complex { 0.0 } else { points as f64 };
    charge(req, charged)?;
    if too_complex {
        // FACTS.md "Rate limits": "A single query over 10,000 points is always rejected."
        return Err((
            400,
            vec![error(
                &format!(
                    "Query too complex: complexity {points} exceeds the maximum of {}; ask for fewer fields or a smaller `first`",
                    req.cfg.max_complexity
                ),
                "QUERY_TOO_COMPLEX",
                "graphql error",
            )],
        ));
    }

    let ctx = Ctx {
        st: RefCell::new(&mut *req.st),
        auth: auth.clone(),
        markdown: req.cfg.markdown,
        allow_loopback_webhooks: req.cfg.allow_loopback_webhooks,
        budget: req.out.budget,
        complexity: points,
        errors: RefCell::new(Vec::new()),
    };
    let root = Obj::root(&ctx, op.operation_type == OperationType::Mutation);
    if op.operation_type == OperationType::Subscription {
        return Err(bad("subscriptions are not supported over POST /graphql"));
    }
    let result = Execution::new(schema, &doc)
        .operation(op)
        .coerced_variable_values(&vars)
        .enable_schema_introspection(true)
        .execute_sync(&root);
    let raised = ctx.errors.into_inner();
    let response = match result {
        Ok(r) => r,
        Err(e) => {
            return Err((
                400,
                vec![error(
                    &format!("{}", e.message()),
                    "BAD_USER_INPUT",
                    "invalid input",
                )],
            ))
        }
    };
    let mut used = vec![false; raised.len()];
    let errors: Vec<GraphQLError> = response
        .errors
        .into_iter()
        .map(|mut g| {
            // apollo-compiler prefixes resolver errors; Linear's messages have no prefix.
            if let Some(m) = g.message.strip_prefix("resolver error: ") {
                g.message = m.to_owned();
            }
            let ext = raised
                .iter()
                .enumerate()
                .find(|(i, (m, _))| !used[*i] && *m == g.message)
                .map(|(i, (_, ext))| {
                    used[i] = true;
                    ext.clone()
                })
                .unwrap_or_else(|| {
                    json!({"code": "INTERNAL_SERVER_ERROR", "type": "internal error", "userError": false})
                });
            g.extensions = serde_json::from_value(ext).unwrap_or_default();
            g
        })
        .collect();
    #[derive(Serialize)]
    struct Body<'a> {
        #[serde(skip_serializing_if = "<[GraphQLError]>::is_empty")]
        errors: &'a [GraphQLError],
        data: Option<&'a JsonMap>,
    }
    req.out.error_code = errors
        .first()
        .and_then(|g| g.extensions.get("code"))
        .and_then(|c| c.as_str())
        .map(str::to_owned);
    req.out.body = serde_json::to_vec(&Body {
        errors: &errors,
        data: response.data.as_ref(),
    })
    .unwrap_or_default();
    req.out.status = 200;
    Ok(())
}
