//! Linear's filter language (`IssueFilter`, `StringComparator`, collection
//! filters with `some`/`every`/`none`/`length`, `and`/`or`) over the world.
//!
//! A filter field linear-sim does not model is an error naming it, never
//! silently ignored: a client must not believe a filter applied when it did not.

use serde_json::Value;

use crate::state::{iso, SimError, SimResult, State};

/// A reference to one entity of the world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ent {
    Issue(String),
    Team(String),
    State(String),
    Label(String),
    User(String),
    Attachment(String),
}

impl Ent {
    pub(crate) fn id(&self) -> &str {
        match self {
            Ent::Issue(i)
            | Ent::Team(i)
            | Ent::State(i)
            | Ent::Label(i)
            | Ent::User(i)
            | Ent::Attachment(i) => i,
        }
    }

    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Ent::Issue(_) => "Issue",
            Ent::Team(_) => "Team",
            Ent::State(_) => "WorkflowState",
            Ent::Label(_) => "IssueLabel",
            Ent::User(_) => "User",
            Ent::Attachment(_) => "Attachment",
        }
    }
}

/// The value of one filterable field of an entity.
pub(crate) enum FieldVal {
    Scalar(Value),
    Rel(Option<Ent>),
    Coll(Vec<Ent>),
    Unknown,
}

fn opt_str(s: Option<&String>) -> Value {
    s.map_or(Value::Null, |v| Value::String(v.clone()))
}

/// The filterable fields of each entity.
pub(crate) fn field(st: &State, e: &Ent, name: &str) -> FieldVal {
    use FieldVal::{Coll, Rel, Scalar, Unknown};
    let s = |v: &str| Scalar(Value::String(v.to_owned()));
    match e {
        Ent::Issue(id) => {
            let Some(i) = st.issue(id) else {
                return Unknown;
            };
            match name {
                "id" => s(&i.id),
                "title" => s(&i.title),
                "description" => Scalar(opt_str(i.description.as_ref())),
                "priority" => Scalar(Value::from(i.priority)),
                "number" => Scalar(Value::from(i.number)),
                "dueDate" => Scalar(opt_str(i.due_date.as_ref())),
                "createdAt" => s(&iso(i.created_at)),
                "updatedAt" => s(&iso(i.updated_at)),
                "archivedAt" => Scalar(i.archived_at.map_or(Value::Null, |t| iso(t).into())),
                "team" => Rel(Some(Ent::Team(i.team_id.clone()))),
                "state" => Rel(Some(Ent::State(i.state_id.clone()))),
                "assignee" => Rel(i.assignee_id.clone().map(Ent::User)),
                "creator" => Rel(i.creator_id.clone().map(Ent::User)),
                "labels" => Coll(i.label_ids.iter().cloned().map(Ent::Label).collect()),
                "attachments" => Coll(
                    st.attachments
                        .iter()
                        .filter(|a| a.issue_id == i.id)
                        .map(|a| Ent::Attachment(a.id.clone()))
                        .collect(),
                ),
                _ => Unknown,
            }
        }
        Ent::Team(id) => {
            let Some(t) = st.team(id) else { return Unknown };
            match name {
                "id" => s(&t.id),
                "key" => s(&t.key),
                "name" => s(&t.name),
                "createdAt" => s(&iso(t.created_at)),
                "members" => Coll(t.members.iter().cloned().map(Ent::User).collect()),
                _ => Unknown,
            }
        }
        Ent::State(id) => {
            let Some(w) = st.wf_state(id) else {
                return Unknown;
            };
            match name {
                "id" => s(&w.id),
                "name" => s(&w.name),
                "type" => s(&w.kind),
                "position" => Scalar(Value::from(w.position)),
                "team" => Rel(Some(Ent::Team(w.team_id.clone()))),
                "createdAt" => s(&iso(w.created_at)),
                _ => Unknown,
            }
        }
        Ent::Label(id) => {
            let Some(l) = st.label(id) else {
                return Unknown;
            };
            match name {
                "id" => s(&l.id),
                "name" => s(&l.name),
                "team" => Rel(l.team_id.clone().map(Ent::Team)),
                "createdAt" => s(&iso(l.created_at)),
                "isGroup" => Scalar(Value::Bool(false)),
                _ => Unknown,
            }
        }
        Ent::User(id) => {
            let Some(u) = st.user(id) else { return Unknown };
            match name {
                "id" => s(&u.id),
                "name" => s(&u.name),
                "displayName" => s(&u.display_name),
                "email" => s(&u.email),
                "active" => Scalar(Value::Bool(u.active)),
                "admin" => Scalar(Value::Bool(u.admin)),
                "createdAt" => s(&iso(u.created_at)),
                _ => Unknown,
            }
        }
        Ent::Attachment(id) => {
            let Some(a) = st.attachment(id) else {
                return Unknown;
            };
            match name {
                "id" => s(&a.id),
                "url" => s(&a.url),
                "title" => s(&a.title),
                "subtitle" => Scalar(opt_str(a.subtitle.as_ref())),
                "createdAt" => s(&iso(a.created_at)),
                "updatedAt" => s(&iso(a.updated_at)),
                "creator" => Rel(a.creator_id.clone().map(Ent::User)),
                _ => Unknown,
            }
        }
    }
}

fn unsupported(what: &str, on: &str) -> SimError {
    SimError::unsupported(format!(
        "filter field `{what}` on {on} is not supported by linear-sim; supported fields are listed in docs/linear-sim.md"
    ))
}

/// True when `e` satisfies `filter` (an `XxxFilter` input object).
pub(crate) fn matches(st: &State, e: &Ent, filter: &Value) -> SimResult<bool> {
    let Some(obj) = filter.as_object() else {
        return Ok(true);
    };
    for (k, v) in obj {
        if v.is_null() {
            continue;
        }
        let ok = match k.as_str() {
            "and" => {
                let mut all = true;
                for f in v.as_array().into_iter().flatten() {
                    all &= matches(st, e, f)?;
                }
                all
            }
            "or" => {
                let mut any = false;
                for f in v.as_array().into_iter().flatten() {
                    any |= matches(st, e, f)?;
                }
                any
            }
            // `null: true` in a nullable relation filter is handled by the caller.
            "null" => true,
            _ => match field(st, e, k) {
                FieldVal::Scalar(x) => compare(&x, v, k)?,
                FieldVal::Rel(None) => v.get("null").and_then(Value::as_bool) == Some(true),
                FieldVal::Rel(Some(child)) => {
                    if v.get("null").and_then(Value::as_bool) == Some(true) {
                        false
                    } else {
                        matches(st, &child, v)?
                    }
                }
                FieldVal::Coll(items) => collection(st, &items, v)?,
                FieldVal::Unknown => return Err(unsupported(k, e.type_name())),
            },
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn collection(st: &State, items: &[Ent], filter: &Value) -> SimResult<bool> {
    let Some(obj) = filter.as_object() else {
        return Ok(true);
    };
    for (k, v) in obj {
        if v.is_null() {
            continue;
        }
        let ok = match k.as_str() {
            "some" => {
                let mut any = false;
                for i in items {
                    any |= matches(st, i, v)?;
                }
                any
            }
            "every" => {
                let mut all = true;
                for i in items {
                    all &= matches(st, i, v)?;
                }
                all
            }
            "none" => {
                let mut any = false;
                for i in items {
                    any |= matches(st, i, v)?;
                }
                !any
            }
            "length" => compare(&Value::from(items.len()), v, "length")?,
            "and" => {
                let mut all = true;
                for f in v.as_array().into_iter().flatten() {
                    all &= collection(st, items, f)?;
                }
                all
            }
            "or" => {
                let mut any = false;
                for f in v.as_array().into_iter().flatten() {
                    any |= collection(st, items, f)?;
                }
                any
            }
            // A field condition directly on a collection filter: some item matches.
            other => {
                let single = serde_json::json!({ other: v });
                let mut any = false;
                for i in items {
                    any |= matches(st, i, &single)?;
                }
                any
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn as_f64(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn ord(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (as_f64(a), as_f64(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y),
        _ => match (a.as_str(), b.as_str()) {
            (Some(x), Some(y)) => Some(x.cmp(y)),
            _ => None,
        },
    }
}

fn eq(a: &Value, b: &Value) -> bool {
    match (as_f64(a), as_f64(b)) {
        (Some(x), Some(y)) => (x - y).abs() < f64::EPSILON,
        _ => a == b,
    }
}

/// Applies a comparator object (`{eq: …}`, `{in: […]}`, `{containsIgnoreCase: …}`, …).
fn compare(x: &Value, cmp: &Value, field: &str) -> SimResult<bool> {
    let Some(obj) = cmp.as_object() else {
        return Err(SimError::input(format!(
            "filter field `{field}` takes a comparator object such as {{eq: …}}"
        )));
    };
    let xs = x.as_str().unwrap_or("");
    let lower = xs.to_lowercase();
    for (op, v) in obj {
        if v.is_null() {
            continue;
        }
        let vs = v.as_str().unwrap_or("");
        let ok = match op.as_str() {
            "eq" => eq(x, v),
            "neq" => !eq(x, v),
            "in" => v.as_array().is_some_and(|a| a.iter().any(|i| eq(x, i))),
            "nin" => !v.as_array().is_some_and(|a| a.iter().any(|i| eq(x, i))),
            "null" => v.as_bool() == Some(x.is_null()),
            "eqIgnoreCase" => !x.is_null() && lower == vs.to_lowercase(),
            "neqIgnoreCase" => lower != vs.to_lowercase(),
            "contains" => !x.is_null() && xs.contains(vs),
            "notContains" => !xs.contains(vs),
            "containsIgnoreCase" => !x.is_null() && lower.contains(&vs.to_lowercase()),
            "notContainsIgnoreCase" => !lower.contains(&vs.to_lowercase()),
            "startsWith" => !x.is_null() && xs.starts_with(vs),
            "startsWithIgnoreCase" => !x.is_null() && lower.starts_with(&vs.to_lowercase()),
            "notStartsWith" => !xs.starts_with(vs),
            "endsWith" => !x.is_null() && xs.ends_with(vs),
            "notEndsWith" => !xs.ends_with(vs),
            "gt" => ord(x, v) == Some(std::cmp::Ordering::Greater),
            "gte" => matches!(
                ord(x, v),
                Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
            ),
            "lt" => ord(x, v) == Some(std::cmp::Ordering::Less),
            "lte" => matches!(
                ord(x, v),
                Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
            ),
            other => {
                return Err(SimError::unsupported(format!(
                    "comparator `{other}` on filter field `{field}` is not supported by linear-sim"
                )))
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The shape of a filterable field.
#[derive(Clone, Copy)]
enum Shape {
    Scalar,
    Rel(&'static str),
    Coll(&'static str),
}

/// Filterable fields per type; must agree with [`field`].
fn fields_of(ty: &str) -> &'static [(&'static str, Shape)] {
    use Shape::{Coll, Rel, Scalar};
    match ty {
        "Issue" => &[
            ("id", Scalar),
            ("title", Scalar),
            ("description", Scalar),
            ("priority", Scalar),
            ("number", Scalar),
            ("dueDate", Scalar),
            ("createdAt", Scalar),
            ("updatedAt", Scalar),
            ("archivedAt", Scalar),
            ("team", Rel("Team")),
            ("state", Rel("WorkflowState")),
            ("assignee", Rel("User")),
            ("creator", Rel("User")),
            ("labels", Coll("IssueLabel")),
            ("attachments", Coll("Attachment")),
        ],
        "Team" => &[
            ("id", Scalar),
            ("key", Scalar),
            ("name", Scalar),
            ("createdAt", Scalar),
            ("members", Coll("User")),
        ],
        "WorkflowState" => &[
            ("id", Scalar),
            ("name", Scalar),
            ("type", Scalar),
            ("position", Scalar),
            ("createdAt", Scalar),
            ("team", Rel("Team")),
        ],
        "IssueLabel" => &[
            ("id", Scalar),
            ("name", Scalar),
            ("createdAt", Scalar),
            ("isGroup", Scalar),
            ("team", Rel("Team")),
        ],
        "User" => &[
            ("id", Scalar),
            ("name", Scalar),
            ("displayName", Scalar),
            ("email", Scalar),
            ("active", Scalar),
            ("admin", Scalar),
            ("createdAt", Scalar),
        ],
        "Attachment" => &[
            ("id", Scalar),
            ("url", Scalar),
            ("title", Scalar),
            ("subtitle", Scalar),
            ("createdAt", Scalar),
            ("updatedAt", Scalar),
            ("creator", Rel("User")),
        ],
        _ => &[],
    }
}

/// Checks every field a filter names before any entity is tested, so an
/// unsupported filter fails even on an empty list.
pub(crate) fn check(ty: &'static str, filter: &Value) -> SimResult<()> {
    let Some(obj) = filter.as_object() else {
        return Ok(());
    };
    for (k, v) in obj {
        if v.is_null() || k == "null" {
            continue;
        }
        if k == "and" || k == "or" {
            for f in v.as_array().into_iter().flatten() {
                check(ty, f)?;
            }
            continue;
        }
        match fields_of(ty).iter().find(|(n, _)| n == k) {
            None => return Err(unsupported(k, ty)),
            Some((_, Shape::Scalar)) => {}
            Some((_, Shape::Rel(t))) => check(t, v)?,
            Some((_, Shape::Coll(t))) => check_collection(t, v)?,
        }
    }
    Ok(())
}

fn check_collection(item: &'static str, filter: &Value) -> SimResult<()> {
    let Some(obj) = filter.as_object() else {
        return Ok(());
    };
    for (k, v) in obj {
        match k.as_str() {
            "some" | "every" | "none" => check(item, v)?,
            "length" => {}
            "and" | "or" => {
                for f in v.as_array().into_iter().flatten() {
                    check_collection(item, f)?;
                }
            }
            other => check(item, &serde_json::json!({ other: v }))?,
        }
    }
    Ok(())
}
