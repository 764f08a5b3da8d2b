//! Query complexity estimate (FACTS.md "Rate limits"): 0.1 point per
//! property, 1 per object, and a connection multiplies its `nodes`/`edges`
//! by `first` (or `last`), 50 when neither is given; the total is rounded up.
//!
//! Decisions where FACTS.md is silent: `__typename` costs nothing; `pageInfo`
//! is counted once, not multiplied; a plain list field (not a connection)
//! counts its selection once.

use apollo_compiler::ast::Value;
use apollo_compiler::executable::{ExecutableDocument, Field, Selection, SelectionSet};
use apollo_compiler::response::JsonMap;

/// Page size a connection is charged for when the query gives none.
pub(crate) const DEFAULT_PAGE: f64 = 50.0;

fn page_size(field: &Field, vars: &JsonMap) -> f64 {
    for name in ["first", "last"] {
        if let Some(arg) = field.arguments.iter().find(|a| a.name.as_str() == name) {
            let n = match arg.value.as_ref() {
                Value::Int(i) => i.as_str().parse::<f64>().ok(),
                Value::Variable(v) => vars.get(v.as_str()).and_then(|j| j.as_f64()),
                _ => None,
            };
            if let Some(n) = n {
                return n.max(0.0);
            }
        }
    }
    DEFAULT_PAGE
}

fn flatten<'a>(
    doc: &'a ExecutableDocument,
    set: &'a SelectionSet,
    out: &mut Vec<&'a Field>,
    depth: u32,
) {
    if depth > 64 {
        return;
    }
    for sel in &set.selections {
        match sel {
            Selection::Field(f) => out.push(f),
            Selection::FragmentSpread(s) => {
                if let Some(frag) = doc.fragments.get(&s.fragment_name) {
                    flatten(doc, &frag.selection_set, out, depth + 1);
                }
            }
            Selection::InlineFragment(i) => flatten(doc, &i.selection_set, out, depth + 1),
        }
    }
}

fn field_cost(doc: &ExecutableDocument, field: &Field, vars: &JsonMap, depth: u32) -> f64 {
    if field.name.as_str() == "__typename" {
        return 0.0;
    }
    if field.selection_set.selections.is_empty() {
        return 0.1;
    }
    let mut children = Vec::new();
    flatten(doc, &field.selection_set, &mut children, depth);
    let is_connection = field.selection_set.ty.as_str().ends_with("Connection");
    let per_page = if is_connection {
        page_size(field, vars)
    } else {
        1.0
    };
    let mut cost = 1.0;
    for c in children {
        let inner = field_cost(doc, c, vars, depth + 1);
        if is_connection && matches!(c.name.as_str(), "nodes" | "edges") {
            cost += per_page * inner;
        } else {
            cost += inner;
        }
    }
    cost
}

/// The estimated points of an operation's selection set, rounded up.
pub(crate) fn estimate(doc: &ExecutableDocument, set: &SelectionSet, vars: &JsonMap) -> u64 {
    let mut fields = Vec::new();
    flatten(doc, set, &mut fields, 0);
    let total: f64 = fields.iter().map(|f| field_cost(doc, f, vars, 1)).sum();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let points = ((total * 10.0).round() / 10.0).ceil().max(0.0) as u64;
    points
}
