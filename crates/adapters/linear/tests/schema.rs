//! Every GraphQL document the adapter sends, exactly as sent, validates against Linear's
//! schema (`vendor/linear/schema.graphql`, see `vendor/linear/SOURCE.md`).

use apollo_compiler::{ExecutableDocument, Schema};
use webriskops_linear::ops::{self, OpKind};

const SCHEMA_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../vendor/linear/schema.graphql"
);

#[test]
fn every_operation_validates_against_the_vendored_schema() {
    let sdl = std::fs::read_to_string(SCHEMA_PATH).expect("vendor/linear/schema.graphql");
    let schema = Schema::parse_and_validate(sdl, "vendor/linear/schema.graphql")
        .unwrap_or_else(|e| panic!("the vendored schema does not validate:\n{}", e.errors));
    let mut failures = Vec::new();
    for op in ops::ALL {
        match ExecutableDocument::parse_and_validate(&schema, op.document, op.file) {
            Ok(doc) => {
                // The document defines exactly the operation named, of the right kind.
                let defined = doc
                    .operations
                    .get(Some(op.name))
                    .ok()
                    .map(|o| o.operation_type.is_mutation());
                match defined {
                    Some(is_mutation) if is_mutation == (op.kind == OpKind::Mutation) => {}
                    Some(_) => {
                        failures.push(format!("{}: {} is of the wrong kind", op.file, op.name))
                    }
                    None => failures.push(format!("{}: no operation named {}", op.file, op.name)),
                }
                if doc.operations.iter().count() != 1 {
                    failures.push(format!("{}: more than one operation", op.file));
                }
            }
            Err(e) => failures.push(format!("{}:\n{}", op.file, e.errors)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} documents do not validate:\n\n{}",
        failures.len(),
        ops::ALL.len(),
        failures.join("\n\n")
    );
}

/// The check can fail: a document naming a field the schema lacks is refused, with the
/// file name in the report.
#[test]
fn a_wrong_document_is_refused() {
    let sdl = std::fs::read_to_string(SCHEMA_PATH).unwrap();
    let schema = Schema::parse_and_validate(sdl, "schema.graphql").unwrap();
    let e = ExecutableDocument::parse_and_validate(
        &schema,
        "query Bad { viewer { id noSuchField } }",
        "graphql/Bad.graphql",
    )
    .unwrap_err();
    let text = e.errors.to_string();
    assert!(
        text.contains("noSuchField") && text.contains("Bad.graphql"),
        "{text}"
    );
}

/// Every `.graphql` file in `graphql/` is an operation the adapter sends (or the shared
/// fragment), so none escapes validation.
#[test]
fn no_graphql_file_is_left_out() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/graphql");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".graphql") && !n.ends_with(".fragment.graphql"))
        .map(|n| format!("graphql/{n}"))
        .collect();
    files.sort();
    let mut known: Vec<String> = ops::ALL.iter().map(|o| o.file.to_owned()).collect();
    known.sort();
    assert_eq!(files, known);
}
