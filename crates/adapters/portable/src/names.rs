//! Safe, collision-free Markdown file names for finding ids of any shape.

use sha2::{Digest, Sha256};

/// The longest readable stem kept from an id before the hash suffix.
pub const MAX_STEM: usize = 80;
/// Hex digits of the SHA-256 of the original id appended to changed names.
const HASH_DIGITS: usize = 16;
/// Separates the readable stem from the hash. It never occurs in an unchanged name,
/// so a changed name can never equal an unchanged one.
const HASH_SEPARATOR: char = '~';

/// Windows device names, reserved with or without an extension.
const RESERVED: &[&str] = &[
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

fn is_reserved(stem: &str) -> bool {
    let base = stem.split('.').next().unwrap_or(stem);
    RESERVED.iter().any(|r| base.eq_ignore_ascii_case(r))
}

/// The readable part: lowercase `[a-z0-9._-]`, other runs become one `_`, no leading,
/// trailing or doubled dots, at most [`MAX_STEM`] characters.
fn readable_stem(id: &str) -> String {
    let mut out = String::with_capacity(id.len().min(MAX_STEM));
    for c in id.chars() {
        // One byte is kept free for the reserved-name prefix.
        if out.len() >= MAX_STEM - 1 {
            break;
        }
        let mapped = match c {
            'a'..='z' | '0'..='9' | '-' | '_' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            '.' if !out.is_empty() && !out.ends_with('.') => '.',
            _ => '_',
        };
        if mapped == '_' && out.ends_with('_') && !matches!(c, '_') {
            continue;
        }
        out.push(mapped);
    }
    while out.ends_with('.') {
        out.pop();
        out.push('_');
    }
    if is_reserved(&out) {
        out.insert(0, '_');
    }
    out
}

/// The Markdown file name (without directory) for a card of `id`.
///
/// Any string is accepted. The result is a single path component of at most
/// `MAX_STEM + 20` ASCII bytes that never contains a separator, `:`, `..` or a Windows
/// reserved device name, never starts with a dot, and ends in `.md`. Ids that are
/// already safe (lowercase letters, digits, `-`, `_`, inner single dots) keep their
/// name; every other id gets `~` and 64 bits of the SHA-256 of the original appended,
/// so distinct ids do not share a name, not even on a case-insensitive file system
/// (the writer still checks, and refuses the astronomically unlikely hash collision).
pub fn card_file_name(id: &str) -> String {
    let stem = readable_stem(id);
    if !stem.is_empty() && stem == id {
        return format!("{stem}.md");
    }
    let digest = hex::encode(Sha256::digest(id.as_bytes()));
    let stem = if stem.is_empty() { "card" } else { &stem };
    format!("{stem}{HASH_SEPARATOR}{}.md", &digest[..HASH_DIGITS])
}

/// Whether a relative path read from a manifest stays inside the bundle: one or two
/// plain components separated by `/`, none empty, `.`, `..` or containing `\` or `:`.
pub(crate) fn is_safe_relative(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    !parts.is_empty()
        && parts.len() <= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && !p.starts_with('.') && !p.contains(['\\', ':', '\0']))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    fn assert_safe(id: &str, name: &str) {
        assert!(!name.contains(['/', '\\', ':', '\0']), "{id:?} -> {name}");
        assert!(!name.contains(".."), "{id:?} -> {name}");
        assert!(!name.starts_with('.'), "{id:?} -> {name}");
        assert!(
            !is_reserved(name.trim_end_matches(".md")),
            "{id:?} -> {name}"
        );
        assert!(name.is_ascii() && name.ends_with(".md"), "{id:?} -> {name}");
        assert!(name.len() <= MAX_STEM + 20, "{id:?} -> {name}");
    }

    proptest! {
        #[test]
        fn any_string_gets_a_safe_name(id in any::<String>()) {
            assert_safe(&id, &card_file_name(&id));
        }

        #[test]
        fn near_identical_ids_get_different_names(a in "[A-Za-z0-9._:-]{0,100}|\\PC{0,40}", edit in 0..5usize) {
            let b = match edit {
                0 => a.to_uppercase(),
                1 => a.replace(':', "_"),
                2 => format!("{a}."),
                3 => format!(".{a}"),
                _ => format!("{a}x"),
            };
            prop_assume!(a != b);
            prop_assert_ne!(card_file_name(&a).to_lowercase(), card_file_name(&b).to_lowercase());
        }

        #[test]
        fn a_set_of_ids_gets_as_many_names(ids in proptest::collection::hash_set("[A-Za-z0-9._:-]{1,6}", 1..200)) {
            let names: HashSet<String> = ids.iter().map(|id| card_file_name(id).to_lowercase()).collect();
            prop_assert_eq!(names.len(), ids.len());
        }
    }

    #[test]
    fn safe_ids_keep_their_name() {
        assert_eq!(card_file_name("wro-f-0001"), "wro-f-0001.md");
        assert_eq!(card_file_name("a.b_c"), "a.b_c.md");
    }

    #[test]
    fn changed_ids_get_a_hash_of_the_original() {
        let a = card_file_name("a:b");
        let b = card_file_name("a_b");
        assert_eq!(b, "a_b.md");
        assert!(a.starts_with("a_b~"), "{a}");
        assert_ne!(a, b);
        assert_ne!(card_file_name("ABC"), card_file_name("abc"));
    }

    #[test]
    fn hostile_ids_become_single_safe_components() {
        for id in [
            "../../etc/passwd",
            "..\\..\\windows",
            "/abs",
            ".",
            "..",
            ".hidden",
            "CON",
            "con.txt",
            "Lpt9.md",
            "nul",
            "trailing.",
            "",
            "🔥🔥",
            "測試",
            "a\0b",
        ] {
            assert_safe(id, &card_file_name(id));
        }
        assert!(card_file_name("").starts_with("card~"));
        assert!(card_file_name("CON").starts_with("_con~"));
        assert!(card_file_name(&"x".repeat(10_000)).len() <= MAX_STEM + 20);
    }

    #[test]
    fn manifest_paths_must_stay_inside_the_bundle() {
        assert!(is_safe_relative("cards.json"));
        assert!(is_safe_relative("cards/a.md"));
        for bad in [
            "",
            "../x",
            "cards/../x",
            "/etc/passwd",
            "a/b/c",
            "c:x",
            ".x",
            "a\\b",
        ] {
            assert!(!is_safe_relative(bad), "{bad}");
        }
    }
}
