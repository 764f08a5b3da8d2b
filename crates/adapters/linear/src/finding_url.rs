//! The canonical URL of a finding: the URL of the attachment that ties a Linear issue to
//! its finding (ADR 0005 §2; FACTS.md "Dedupe": the attachment URL is unique per issue
//! and can be looked up with `attachmentsForURL`). Written from a template with `{id}`,
//! and read back by taking `{id}` out of it again.

use url::Url;
use webriskops_domain::FindingId;

use crate::config::ConfigError;

/// The template used when none is configured. The application reads
/// `WEBRISKOPS_FINDING_URL` (with `{id}`) into [`FindingUrl::new`]; the adapter never reads
/// the environment.
pub const DEFAULT_FINDING_URL_TEMPLATE: &str = "https://app.webriskops.example/findings/{id}";

/// The placeholder replaced by the finding id.
const PLACEHOLDER: &str = "{id}";

/// A validated finding URL template: an absolute `https` URL (or `http`), already in the
/// form Linear keeps it, with `{id}` exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingUrl {
    prefix: String,
    suffix: String,
}

impl Default for FindingUrl {
    fn default() -> Self {
        FindingUrl::new(DEFAULT_FINDING_URL_TEMPLATE).expect("the default template is valid")
    }
}

impl FindingUrl {
    /// # Errors
    /// `{id}` missing or repeated; not an absolute `http(s)` URL; credentials in it; not
    /// in canonical form (the error gives the canonical form to write instead), since a
    /// URL that the parser would rewrite could come back from Linear rewritten and no
    /// longer match.
    pub fn new(template: &str) -> Result<Self, ConfigError> {
        let bad = |reason: String| ConfigError::Setting {
            field: "finding_url_template",
            reason,
        };
        let template = template.trim();
        let Some((prefix, suffix)) = template.split_once(PLACEHOLDER) else {
            return Err(bad(format!(
                "{template:?} has no {PLACEHOLDER}; write it where the finding id goes, e.g. {DEFAULT_FINDING_URL_TEMPLATE}"
            )));
        };
        if suffix.contains(PLACEHOLDER) {
            return Err(bad(format!(
                "{template:?} has {PLACEHOLDER} more than once; keep one"
            )));
        }
        // Any valid finding id gives the same shape: its characters (A-Z a-z 0-9 . _ : -)
        // need no escaping anywhere in a URL.
        let sample = format!("{prefix}sample-id{suffix}");
        let url = Url::parse(&sample).map_err(|e| {
            bad(format!(
                "{template:?} is not an absolute URL ({e}); e.g. {DEFAULT_FINDING_URL_TEMPLATE}"
            ))
        })?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(bad(format!(
                "{template:?} must start with https:// (it is shown as a link in Linear)"
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "the template must not contain a user name or password".into()
            ));
        }
        if url.as_str() != sample {
            let canonical = url.as_str().replacen("sample-id", PLACEHOLDER, 1);
            return Err(bad(format!(
                "{template:?} is not in canonical form; write {canonical:?}"
            )));
        }
        Ok(FindingUrl {
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
        })
    }

    /// The canonical URL of `finding`.
    pub fn url(&self, finding: &FindingId) -> String {
        format!("{}{}{}", self.prefix, finding, self.suffix)
    }

    /// The finding whose canonical URL `url` is, if it is one.
    pub fn finding(&self, url: &str) -> Option<FindingId> {
        let id = url.strip_prefix(&self.prefix)?.strip_suffix(&self.suffix)?;
        FindingId::new(id).ok()
    }

    /// The template, `{id}` included.
    pub fn template(&self) -> String {
        format!("{}{PLACEHOLDER}{}", self.prefix, self.suffix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> FindingId {
        FindingId::new(s).unwrap()
    }

    #[test]
    fn urls_round_trip_through_the_template() {
        let t = FindingUrl::default();
        let url = t.url(&f("wro-f:0001.a_b"));
        assert_eq!(
            url,
            "https://app.webriskops.example/findings/wro-f:0001.a_b"
        );
        assert_eq!(t.finding(&url), Some(f("wro-f:0001.a_b")));
        let q = FindingUrl::new("https://risk.example.com/f?id={id}&src=linear").unwrap();
        assert_eq!(q.finding(&q.url(&f("x-1"))), Some(f("x-1")));
        assert_eq!(
            q.template(),
            "https://risk.example.com/f?id={id}&src=linear"
        );
    }

    #[test]
    fn other_urls_are_nobodys_finding() {
        let t = FindingUrl::default();
        for url in [
            "https://app.webriskops.example/findings/",
            "https://app.webriskops.example/findings/a/b",
            "https://app.webriskops.example/findings/a b",
            "https://elsewhere.example/findings/a",
            "https://github.com/acme/app/pull/1",
        ] {
            assert_eq!(t.finding(url), None, "{url}");
        }
    }

    #[test]
    fn bad_templates_are_refused_with_the_fix() {
        let e = FindingUrl::new("https://x.example/findings/").unwrap_err();
        assert!(e.to_string().contains("has no {id}"), "{e}");
        let e = FindingUrl::new("https://x.example/{id}/{id}").unwrap_err();
        assert!(e.to_string().contains("more than once"), "{e}");
        let e = FindingUrl::new("findings/{id}").unwrap_err();
        assert!(e.to_string().contains("not an absolute URL"), "{e}");
        let e = FindingUrl::new("ftp://x.example/{id}").unwrap_err();
        assert!(e.to_string().contains("https://"), "{e}");
        let e = FindingUrl::new("https://user:pw@x.example/{id}").unwrap_err();
        assert!(!e.to_string().contains("pw@"), "{e}");
        let e = FindingUrl::new("https://X.Example/findings/{id}").unwrap_err();
        assert!(
            e.to_string()
                .contains("write \"https://x.example/findings/{id}\""),
            "{e}"
        );
    }
}
