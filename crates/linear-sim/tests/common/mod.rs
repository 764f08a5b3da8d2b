//! Shared helpers for the HTTP tests: a seeded server and a reqwest client.

#![allow(dead_code)]

use std::time::Duration;

use linear_sim::{Fixture, SimConfig, SimHandle, SimServer};
use reqwest::{Client, Response};
use serde_json::{json, Value};

pub struct Env {
    pub server: SimServer,
    pub h: SimHandle,
    pub fx: Fixture,
    pub url: String,
    pub root: String,
    pub client: Client,
}

pub async fn env() -> Env {
    env_with(SimConfig::default()).await
}

pub async fn env_with(config: SimConfig) -> Env {
    let server = SimServer::start(config).await.expect("server starts");
    let h = server.handle();
    let fx = h.seed_standard();
    let url = server.base_url();
    let root = server.root_url();
    let client = Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    Env {
        server,
        h,
        fx,
        url,
        root,
        client,
    }
}

/// An answer: HTTP status, headers and JSON body.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    pub fn code(&self) -> String {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

pub async fn read(resp: Response) -> Answer {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        headers,
        body,
    }
}

impl Env {
    /// POSTs a GraphQL document with `Authorization: <auth>` (raw header value).
    pub async fn gql_as(&self, auth: Option<&str>, query: &str, variables: Value) -> Answer {
        let mut rb = self
            .client
            .post(&self.url)
            .json(&json!({"query": query, "variables": variables}));
        if let Some(a) = auth {
            rb = rb.header("Authorization", a);
        }
        read(rb.send().await.expect("response")).await
    }

    /// POSTs with the full-access API key.
    pub async fn gql(&self, query: &str, variables: Value) -> Answer {
        let key = self.fx.keys.full.clone();
        self.gql_as(Some(&key), query, variables).await
    }

    /// POSTs with the full key and asserts a clean 200 without errors.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let a = self.gql(query, variables).await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert!(a.body.get("errors").is_none(), "{}", a.body);
        a.body["data"].clone()
    }
}
