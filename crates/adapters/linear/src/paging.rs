//! Relay pagination over `pageInfo { hasNextPage endCursor }` (FACTS.md "Pagination"),
//! with a page cap so that a server that always says "more" cannot loop forever.

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use webriskops_ports::PortError;

/// The most pages one listing reads: at [`crate::ops::PAGE_SIZE`] per page, 10 000
/// objects. Beyond it the listing fails rather than spend the hour's budget.
pub const MAX_PAGES: usize = 400;

/// One page of a connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub nodes: Vec<T>,
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireConnection<T> {
    nodes: Vec<T>,
    page_info: WirePageInfo,
}

impl<T: DeserializeOwned> Page<T> {
    /// Reads a connection (`{nodes, pageInfo}`) found at `path` in `data`.
    ///
    /// # Errors
    /// The connection is missing or not of the expected shape.
    pub fn from_data(data: &Value, path: &[&str], what: &str) -> Result<Page<T>, PortError> {
        let mut v = data;
        for p in path {
            v = match v.get(p) {
                // `team(id)` answers null for a team the credential cannot see.
                Some(Value::Null) => {
                    return Err(PortError::NotFound {
                        context: Default::default(),
                        what: format!("{p} in Linear's answer to {what}"),
                    })
                }
                Some(x) => x,
                None => return Err(shape(what, &format!("no {p}"))),
            };
        }
        let c: WireConnection<T> =
            serde_json::from_value(v.clone()).map_err(|e| shape(what, &e.to_string()))?;
        Ok(Page {
            nodes: c.nodes,
            has_next_page: c.page_info.has_next_page,
            end_cursor: c.page_info.end_cursor,
        })
    }
}

pub(crate) fn shape(what: &str, detail: &str) -> PortError {
    PortError::Other {
        context: Default::default(),
        message: format!(
            "unexpected answer from Linear to {what}: {}",
            crate::errors::excerpt(detail, 200)
        ),
    }
}

/// Reads every page: `fetch(after)` returns one page; the next is asked with its
/// `endCursor` while `hasNextPage`. At most `max_pages` pages.
///
/// # Errors
/// The first failed page; more than `max_pages` pages; a page that says there is more
/// but gives no cursor, or the same cursor again (the server would loop).
pub async fn collect_pages<T, F, Fut>(
    what: &str,
    max_pages: usize,
    mut fetch: F,
) -> Result<Vec<T>, PortError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<Page<T>, PortError>>,
{
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..max_pages {
        let page = fetch(after.clone()).await?;
        all.extend(page.nodes);
        if !page.has_next_page {
            return Ok(all);
        }
        match page.end_cursor {
            None => return Err(shape(what, "hasNextPage is true but endCursor is missing")),
            Some(c) if after.as_deref() == Some(c.as_str()) => {
                return Err(shape(what, "the same endCursor came twice; stopping"))
            }
            Some(c) => after = Some(c),
        }
    }
    Err(PortError::Other {
        context: Default::default(),
        message: format!(
            "stopped listing {what} after {max_pages} pages: more than the adapter reads in one listing"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(n: u32, next: Option<&str>) -> Page<u32> {
        Page {
            nodes: vec![n],
            has_next_page: next.is_some(),
            end_cursor: next.map(str::to_owned),
        }
    }

    #[tokio::test]
    async fn follows_cursors_until_the_last_page() {
        let mut asked = Vec::new();
        let all = collect_pages("teams", 10, |after| {
            asked.push(after.clone());
            let p = match after.as_deref() {
                None => page(1, Some("c1")),
                Some("c1") => page(2, Some("c2")),
                _ => page(3, None),
            };
            async move { Ok(p) }
        })
        .await
        .unwrap();
        assert_eq!(all, vec![1, 2, 3]);
        assert_eq!(asked, vec![None, Some("c1".into()), Some("c2".into())]);
    }

    #[tokio::test]
    async fn a_server_that_never_ends_is_stopped() {
        let mut n = 0;
        let e = collect_pages("issues", 5, |_| {
            n += 1;
            let p = page(n, Some(&format!("c{n}")));
            async move { Ok(p) }
        })
        .await
        .unwrap_err();
        assert!(e.to_string().contains("after 5 pages"), "{e}");
        let e = collect_pages("issues", 5, |_| async { Ok(page(1, Some("same"))) })
            .await
            .unwrap_err();
        assert!(e.to_string().contains("same endCursor"), "{e}");
        let e = collect_pages("issues", 5, |_| async {
            Ok(Page::<u32> {
                nodes: vec![],
                has_next_page: true,
                end_cursor: None,
            })
        })
        .await
        .unwrap_err();
        assert!(e.to_string().contains("endCursor is missing"), "{e}");
    }

    #[test]
    fn pages_read_from_data() {
        let data = serde_json::json!({"teams": {"nodes": [1, 2], "pageInfo": {"hasNextPage": true, "endCursor": "x"}}});
        let p: Page<u32> = Page::from_data(&data, &["teams"], "teams").unwrap();
        assert_eq!(p.nodes, vec![1, 2]);
        assert_eq!(p.end_cursor.as_deref(), Some("x"));
        assert!(Page::<u32>::from_data(&data, &["users"], "users").is_err());
        let data = serde_json::json!({"team": null});
        let e = Page::<u32>::from_data(&data, &["team", "states"], "TeamStates").unwrap_err();
        assert_eq!(e.kind(), "not_found", "{e}");
    }
}
