//! Shared helpers for the HTTP tests: a seeded server and a reqwest client.

#![allow(dead_code)]

use std::time::Duration;

use reqwest::{Client, Method, Response};
use serde_json::Value;
use trello_sim::{Fixture, SimConfig, SimHandle, SimServer};

pub struct Env {
    pub server: SimServer,
    pub h: SimHandle,
    pub fx: Fixture,
    pub base: String,
    pub client: Client,
}

pub async fn env() -> Env {
    env_with(SimConfig::default()).await
}

pub async fn env_with(config: SimConfig) -> Env {
    let server = SimServer::start(config).await.expect("server starts");
    let h = server.handle();
    let fx = h.seed_standard();
    let base = server.base_url();
    let client = Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    Env {
        server,
        h,
        fx,
        base,
        client,
    }
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request with key and token in the query string.
    pub fn req(&self, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .query(&[("key", self.fx.api_key.as_str()), ("token", token)])
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, String) {
        read(
            self.req(Method::GET, path, token)
                .send()
                .await
                .expect("response"),
        )
        .await
    }

    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        let (status, body) = self.get(path, token).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).expect("json body")
    }

    pub fn full(&self) -> &str {
        &self.fx.tokens.full
    }
}

pub async fn read(resp: Response) -> (u16, String) {
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

pub fn json(body: &str) -> Value {
    serde_json::from_str(body).expect("json body")
}
