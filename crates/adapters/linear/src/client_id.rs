//! The deterministic client id of an issue: a UUID v4-shaped id derived from the tenant,
//! the team and the finding, sent as `IssueCreateInput.id` ("identifier in UUID v4
//! format", FACTS.md "Create issue"). The same finding on the same team always gets the
//! same id, so a retried create collides instead of making a second issue.

use sha2::{Digest, Sha256};
use webriskops_domain::{FindingId, TenantId};

/// Domain separation: another use of SHA-256 over the same fields never gives this id.
const CONTEXT: &[u8] = b"webriskops/linear/issue-id/v1";

/// The issue id for `finding` of `tenant` on `team`: the first 16 bytes of a SHA-256
/// over the length-prefixed fields, with the version nibble set to 4 and the variant
/// bits to `10` (RFC 9562 §4.1-4.2), written `8-4-4-4-12` in lowercase hex.
pub fn issue_client_id(tenant: &TenantId, team_id: &str, finding: &FindingId) -> String {
    let mut h = Sha256::new();
    h.update(CONTEXT);
    for field in [tenant.as_str(), team_id, finding.as_str()] {
        // Length prefixes: ("a", "bc") and ("ab", "c") hash differently.
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    let digest = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// Whether `s` is a UUID in the v4 shape [`issue_client_id`] produces (lowercase hex,
/// version 4, RFC variant).
pub fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        })
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(t: &str, team: &str, f: &str) -> String {
        issue_client_id(
            &TenantId::new(t).unwrap(),
            team,
            &FindingId::new(f).unwrap(),
        )
    }

    #[test]
    fn stable_and_v4_shaped() {
        let a = id("acme", "team-1", "F-1");
        assert_eq!(a, id("acme", "team-1", "F-1"), "same inputs, same id");
        assert!(is_uuid_v4(&a), "{a}");
        // Pinned: a change of derivation would give every finding a new id, and a
        // retried create would no longer collide with the issue it made before.
        assert_eq!(a, "d567a743-20b5-40b6-b098-f7e81e073ce9");
    }

    #[test]
    fn distinct_inputs_give_distinct_ids() {
        let base = id("acme", "team-1", "F-1");
        for other in [
            id("acme", "team-1", "F-2"),
            id("acme", "team-2", "F-1"),
            id("acme2", "team-1", "F-1"),
            // Field boundaries matter.
            id("acme", "team-1F", "-1"),
        ] {
            assert_ne!(base, other);
            assert!(is_uuid_v4(&other), "{other}");
        }
    }

    #[test]
    fn shape_check_rejects_other_forms() {
        assert!(is_uuid_v4("123e4567-e89b-42d3-a456-426614174000"));
        assert!(!is_uuid_v4("123e4567-e89b-12d3-a456-426614174000"), "v1");
        assert!(
            !is_uuid_v4("123e4567-e89b-42d3-c456-426614174000"),
            "variant"
        );
        assert!(
            !is_uuid_v4("123E4567-E89B-42D3-A456-426614174000"),
            "uppercase"
        );
        assert!(!is_uuid_v4("123e4567e89b42d3a456426614174000"));
    }
}
