//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;
use crate::{api, schema};

#[derive(OpenApi)]
#[openapi(
    info(title = "webriskops", description = "Set up Trello or Linear and export remediation findings, per tenant. Authenticate with `Authorization: Bearer <api token>` (webriskops api-token create). Errors are `{\"error\": {\"code\", \"message\", \"fix\"}}`."),
    components(schemas(
        api::ChoicesBody, api::TokenBody, ErrorBody<'static>, schema::IntegrationAnswer,
        schema::SetupAnswer, schema::RevokeAnswer, schema::SyncAnswer, schema::ExportCreated,
        schema::ExportList, schema::Job, schema::EventsPage
    )),
    modifiers(&Bearer),
    security(("bearer" = []))
)]
struct Doc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON: its paths are the router's own table ([`api::table`]).
pub fn openapi_document() -> serde_json::Value {
    let mut doc = Doc::openapi();
    for r in api::table() {
        doc.paths
            .add_path_operation(&r.path, r.methods, r.operation);
    }
    serde_json::to_value(doc).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_lists_exactly_the_routes_the_router_serves() {
        let doc = openapi_document();
        let mut documented: Vec<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .map(move |m| (m.clone(), path.clone()))
            })
            .collect();
        documented.sort();
        let mut served: Vec<(String, String)> = api::route_list()
            .into_iter()
            .map(|(m, p)| (m.to_owned(), p))
            .collect();
        served.sort();
        assert_eq!(documented, served);
        assert_eq!(served.len(), api::table().len(), "one method per route");
    }

    /// Every `$ref` in `v`.
    fn refs(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v.as_str()) {
                        ("$ref", Some(r)) => out.push(r.to_owned()),
                        _ => refs(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_schema_the_routes_refer_to_is_in_the_document() {
        let doc = openapi_document();
        let mut found = Vec::new();
        refs(&doc["paths"], &mut found);
        assert!(
            found.iter().any(|r| r.ends_with("/ChoicesBody")),
            "{found:?}"
        );
        for r in found {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{r} is missing"
            );
        }
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        assert_eq!(
            doc["paths"]["/api/v1/exports"]["post"]["tags"][0],
            "exports"
        );
    }

    #[test]
    fn every_answer_and_json_body_has_a_schema() {
        let doc = openapi_document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                assert!(!responses.is_empty(), "{method} {path}");
                for (status, r) in responses {
                    // Every answer has a body; a JSON one has a schema.
                    let content = r["content"].as_object();
                    assert!(
                        content.is_some_and(|c| !c.is_empty()),
                        "{method} {path} {status}"
                    );
                    if let Some(json) = r["content"].get("application/json") {
                        assert!(
                            json["schema"].as_object().is_some_and(|s| !s.is_empty()),
                            "{method} {path} {status} has no schema: {r}"
                        );
                    }
                    if status.starts_with('4') {
                        assert_eq!(
                            r["content"]["application/json"]["schema"]["$ref"],
                            "#/components/schemas/ErrorBody",
                            "{method} {path} {status}"
                        );
                    }
                }
                if let Some(json) = op["requestBody"]["content"].get("application/json") {
                    assert!(json["schema"]["$ref"].is_string(), "{method} {path}");
                }
            }
        }
    }
}
