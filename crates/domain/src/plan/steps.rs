//! Step groups: findings whose remediation steps are identical share one step list that
//! the tracker holds once as a template, and their items copy it (ADR 0006).
//!
//! Everything here is tracker-neutral arithmetic and text: which key names a step list,
//! how a template says which list it holds, whether copying is cheaper than writing the
//! steps one by one, and whether a template the tracker shows is still exactly the one
//! the exporter made.

use sha2::{Digest, Sha256};

/// Opens the marker that names a step template's key in its description:
/// `[webriskops:template:<key>]`. It differs from the finding marker, so a template is
/// never read as a finding's item.
pub const TEMPLATE_MARKER_PREFIX: &str = "[webriskops:template:";

/// Hex digits of a step group key.
const KEY_LEN: usize = 24;

/// The key of a step list: the same steps in the same order give the same key, and any
/// change of a step, of the order or of the number of steps gives another one.
pub fn step_group_key(steps: &[String]) -> String {
    let mut h = Sha256::new();
    h.update(b"webriskops-steps-v1");
    for s in steps {
        // Length-prefixed so that no two lists share a byte stream.
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    }
    let mut key = hex::encode(h.finalize());
    key.truncate(KEY_LEN);
    key
}

/// The marker a template carries in its description.
pub fn template_marker(key: &str) -> String {
    format!("{TEMPLATE_MARKER_PREFIX}{key}]")
}

/// The key of the first well-formed template marker in a description.
pub fn extract_template_marker(body: &str) -> Option<String> {
    let at = body.find(TEMPLATE_MARKER_PREFIX)?;
    let after = &body[at + TEMPLATE_MARKER_PREFIX.len()..];
    let end = after.find(']')?;
    let key = &after[..end];
    (key.len() == KEY_LEN && key.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| key.to_ascii_lowercase())
}

/// Requests to write `steps` steps one by one on a new item: one step list and one
/// request per step (the item's own create is not counted: both paths send it).
pub fn step_requests(steps: usize) -> u64 {
    if steps == 0 {
        0
    } else {
        1 + steps as u64
    }
}

/// Requests to make a template of `steps` steps: its item, hiding it, its step list and
/// one request per step.
pub fn template_requests(steps: usize) -> u64 {
    2 + step_requests(steps)
}

/// Whether `items` new items of one step group cost fewer requests by copying a
/// template than by writing their steps one by one: the template costs
/// [`template_requests`] once unless `template_ready`, and each copy costs nothing
/// beyond its create.
pub fn copying_pays(items: u64, steps: usize, template_ready: bool) -> bool {
    if steps == 0 || items == 0 {
        return false;
    }
    let once = if template_ready {
        0
    } else {
        template_requests(steps)
    };
    once < items * step_requests(steps)
}

/// One step list of a template as the tracker shows it: its name and each step with
/// whether it is ticked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedStepList {
    pub name: String,
    pub steps: Vec<(String, bool)>,
}

/// Whether a template can be copied as it is: out of people's sight (`hidden`), holding
/// exactly one step list, named `list_name`, with exactly `expected` in order and nothing
/// ticked. A copy takes every step list of its source with its ticks, so anything else
/// (a person's tick, an added or renamed step, a second list, a template put back on the
/// board) would reach every item copied from it.
pub fn template_intact(
    expected: &[String],
    list_name: &str,
    hidden: bool,
    lists: &[ObservedStepList],
) -> bool {
    hidden
        && matches!(lists, [only] if only.name == list_name
            && only.steps.len() == expected.len()
            && only.steps.iter().zip(expected).all(|((name, ticked), want)| name == want && !ticked))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn keys_follow_content_and_order() {
        let a = step_group_key(&steps(&["patch", "restart"]));
        assert_eq!(a, step_group_key(&steps(&["patch", "restart"])));
        assert_ne!(a, step_group_key(&steps(&["restart", "patch"])));
        assert_ne!(a, step_group_key(&steps(&["patchrestart"])));
        assert_ne!(a, step_group_key(&steps(&["patch", "restart", ""])));
        assert_eq!(a.len(), KEY_LEN);
    }

    #[test]
    fn template_markers_round_trip_and_are_not_finding_markers() {
        let key = step_group_key(&steps(&["a"]));
        let body = format!("Steps shared by findings\n\n{}", template_marker(&key));
        assert_eq!(
            extract_template_marker(&body).as_deref(),
            Some(key.as_str())
        );
        assert_eq!(crate::extract_marker(&body), None);
        assert_eq!(extract_template_marker("[webriskops:template:xyz]"), None);
        assert_eq!(
            extract_template_marker(&crate::marker(&crate::FindingId::new("f-1").unwrap())),
            None
        );
    }

    #[test]
    fn copying_pays_from_two_items_and_always_with_a_ready_template() {
        // k = 4: the template costs 7, each item saves 5.
        assert!(!copying_pays(1, 4, false));
        assert!(copying_pays(2, 4, false));
        assert!(copying_pays(1, 4, true));
        // One step: the template (4) against 2 per item.
        assert!(!copying_pays(2, 1, false));
        assert!(copying_pays(3, 1, false));
        assert!(!copying_pays(5, 0, true));
    }

    #[test]
    fn a_template_is_intact_only_hidden_exact_and_unticked() {
        let want = steps(&["a", "b"]);
        let list = |items: &[(&str, bool)]| ObservedStepList {
            name: "Remediation".into(),
            steps: items.iter().map(|(n, t)| ((*n).to_owned(), *t)).collect(),
        };
        let good = [list(&[("a", false), ("b", false)])];
        assert!(template_intact(&want, "Remediation", true, &good));
        assert!(!template_intact(&want, "Remediation", false, &good));
        assert!(!template_intact(
            &want,
            "Remediation",
            true,
            &[list(&[("a", true), ("b", false)])]
        ));
        assert!(!template_intact(
            &want,
            "Remediation",
            true,
            &[list(&[("a", false)])]
        ));
        assert!(!template_intact(
            &want,
            "Remediation",
            true,
            &[good[0].clone(), list(&[])]
        ));
        assert!(!template_intact(&want, "Other", true, &good));
    }
}
