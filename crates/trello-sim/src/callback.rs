//! A webhook receiver for tests: an HTTP server on 127.0.0.1 that records every request
//! (method, path, headers, raw body) and answers scripted statuses, so a test can
//! watch a simulator deliver webhooks over real HTTP. Used by the simulators' and the
//! adapters' tests; the product's own receiver is the server.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// One request the receiver got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    /// The first header called `name` (case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
struct Inner {
    received: Vec<Received>,
    head_status: u16,
    /// Statuses for the next POSTs, in order; then `post_status`.
    scripted: VecDeque<u16>,
    post_status: u16,
}

/// A running receiver; stops when dropped.
#[derive(Debug)]
pub struct CallbackServer {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    notify: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Drop for CallbackServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CallbackServer {
    /// Starts on a free port, answering 200 to everything.
    pub async fn start() -> CallbackServer {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("bound address");
        let inner = Arc::new(Mutex::new(Inner {
            received: Vec::new(),
            head_status: 200,
            scripted: VecDeque::new(),
            post_status: 200,
        }));
        let notify = Arc::new(Notify::new());
        let (i2, n2) = (inner.clone(), notify.clone());
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (inner, notify) = (i2.clone(), n2.clone());
                async move {
                    let mut g = inner.lock().unwrap_or_else(|e| e.into_inner());
                    g.received.push(Received {
                        method: method.as_str().to_owned(),
                        path: uri
                            .path_and_query()
                            .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned()),
                        headers: headers
                            .iter()
                            .map(|(k, v)| {
                                (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())
                            })
                            .collect(),
                        body: body.to_vec(),
                    });
                    let status = if method == Method::HEAD {
                        g.head_status
                    } else {
                        g.scripted.pop_front().unwrap_or(g.post_status)
                    };
                    drop(g);
                    notify.notify_waiters();
                    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
                }
            },
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        CallbackServer {
            addr,
            inner,
            notify,
            task,
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The status HEAD requests get (default 200).
    pub fn set_head_status(&self, status: u16) {
        self.lock().head_status = status;
    }

    /// The status POSTs get once the scripted ones are used up (default 200).
    pub fn set_post_status(&self, status: u16) {
        self.lock().post_status = status;
    }

    /// Statuses for the next POSTs, in order.
    pub fn script_posts(&self, statuses: &[u16]) {
        self.lock().scripted.extend(statuses.iter().copied());
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// The POSTs received so far.
    pub fn posts(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.method == "POST")
            .collect()
    }

    /// Waits until at least `n` POSTs arrived and returns them all.
    ///
    /// # Panics
    /// When they have not arrived within `within` (a test failure, not a timing check).
    pub async fn wait_for_posts(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.notify.notified();
            let posts = self.posts();
            if posts.len() >= n {
                return posts;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("expected {n} POSTs, got {}", self.posts().len());
            }
        }
    }
}
