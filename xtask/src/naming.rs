//! The naming rule of docs/architecture.md: the source of `ports` and `service` names no
//! tracker and none of a tracker's objects (ADR 0005 §10). The words a user reads come
//! from the record's provider vocabulary (`ProviderKey::vocabulary` in the domain).
//!
//! The scanner reads Rust source as tokens, so that comments (`//`, `///`, `//!`, `/* */`)
//! never count and string literals always do:
//!
//! - the tracker names `trello` and `linear` are caught, case-insensitively, as any part of
//!   an identifier or a string's word split at `_` and at camel-case humps (`TrelloId`,
//!   `new_trello`, `"trello_cloud"`);
//! - the object nouns `board`, `boards`, `card`, `cards`, `team`, `teams` are caught as
//!   whole words only (`obs.board`, `"no board"`), never inside a longer identifier
//!   (`board_id`, `CardExport`);
//! - `list` and `lists` are everywhere in code (`list_items`, `Vec` "lists"), so they are
//!   caught only as whole words inside string literals (`"no board and list"`).
//!
//! Unit-test modules (`#[cfg(test)]` items) are skipped, as the crates' `tests/` folders
//! are: a test exercises the neutral code with one concrete provider's fixtures.

use std::path::{Path, PathBuf};

/// Tracker names: caught as any part of an identifier or string word.
const TRACKER_NAMES: &[&str] = &["trello", "linear"];

/// A tracker's object nouns: caught as whole identifiers or whole string words.
const OBJECT_NOUNS: &[&str] = &["board", "boards", "card", "cards", "team", "teams"];

/// Nouns too common in code to check outside string literals.
const STRING_ONLY_NOUNS: &[&str] = &["list", "lists"];

/// What genuinely neutral text may keep a caught word, each entry with its reason:
/// `(file suffix, the exact line text after trimming, why)`. Empty: nothing needed one.
const ALLOWED: &[(&str, &str, &str)] = &[];

/// The crates whose `src/` trees must stay tracker-neutral.
pub const NEUTRAL_TREES: &[&str] = &["crates/ports/src", "crates/service/src"];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok<'a> {
    Ident(&'a str),
    Str(&'a str),
    Punct(char),
}

/// One caught word: where, which word, and in what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub line: usize,
    pub word: String,
    pub context: String,
}

/// Rust source as identifiers, string literal contents and punctuation, each with its
/// line; comments, numbers, lifetimes and char literals dropped.
fn tokens(src: &str) -> Vec<(usize, Tok<'_>)> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut line) = (0usize, 1usize);
    let newlines = |s: &[u8]| s.iter().filter(|&&c| c == b'\n').count();
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let (start, mut depth) = (i, 0usize);
                while i < b.len() {
                    if b[i..].starts_with(b"/*") {
                        depth += 1;
                        i += 2;
                    } else if b[i..].starts_with(b"*/") {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                line += newlines(&b[start..i.min(b.len())]);
            }
            b'"' => {
                let start = i + 1;
                i = start;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                let end = i.min(b.len());
                out.push((line, Tok::Str(&src[start..end])));
                line += newlines(&b[start..end]);
                i = end + 1;
            }
            b'\'' => {
                // A char literal ('a', '\n', '\'') or a lifetime ('a).
                if b.get(i + 1) == Some(&b'\\') {
                    i += 3;
                    while i < b.len() && b[i] != b'\'' {
                        i += 1;
                    }
                    i += 1;
                } else {
                    let ch_len = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                    i += if b.get(i + 1 + ch_len) == Some(&b'\'') {
                        ch_len + 2
                    } else {
                        1
                    };
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                let word = &src[start..i];
                let hashes = b[i..].iter().take_while(|&&c| c == b'#').count();
                let is_raw_str =
                    matches!(word, "r" | "br" | "cr") && b.get(i + hashes) == Some(&b'"');
                if is_raw_str {
                    let body = i + hashes + 1;
                    let close = format!("\"{}", "#".repeat(hashes));
                    let end = src[body..].find(&close).map_or(src.len(), |p| body + p);
                    out.push((line, Tok::Str(&src[body..end])));
                    line += newlines(&b[body..end]);
                    i = (end + close.len()).min(b.len());
                } else if matches!(word, "b" | "c") && b.get(i) == Some(&b'"') {
                    // b"..." and c"...": the string arm reads the literal next.
                } else if word == "r"
                    && hashes == 1
                    && b.get(i + 1).is_some_and(u8::is_ascii_alphabetic)
                {
                    i += 1; // r#ident: the identifier follows.
                } else {
                    out.push((line, Tok::Ident(word)));
                }
            }
            c if c.is_ascii_digit() => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
            }
            c if c.is_ascii() => {
                if !c.is_ascii_whitespace() {
                    out.push((line, Tok::Punct(c as char)));
                }
                i += 1;
            }
            _ => i += src[i..].chars().next().map_or(1, char::len_utf8),
        }
    }
    out
}

/// The parts of a word split at `_` and at camel-case humps, lowercased:
/// `TrelloId` → `trello`, `id`; `new_trello` → `new`, `trello`.
fn parts(word: &str) -> Vec<String> {
    let mut out = Vec::new();
    for piece in word.split('_').filter(|p| !p.is_empty()) {
        let mut cur = String::new();
        let mut prev_lower = false;
        for ch in piece.chars() {
            if ch.is_uppercase() && prev_lower && !cur.is_empty() {
                out.push(cur.to_lowercase());
                cur.clear();
            }
            prev_lower = ch.is_lowercase() || ch.is_ascii_digit();
            cur.push(ch);
        }
        if !cur.is_empty() {
            out.push(cur.to_lowercase());
        }
    }
    out
}

/// The caught words of one word (an identifier, or a word of a string literal).
fn caught(word: &str, in_string: bool) -> Vec<String> {
    let lower = word.to_lowercase();
    let mut found: Vec<String> = parts(word)
        .into_iter()
        .filter(|p| TRACKER_NAMES.contains(&p.as_str()))
        .collect();
    if OBJECT_NOUNS.contains(&lower.as_str())
        || (in_string && STRING_ONLY_NOUNS.contains(&lower.as_str()))
    {
        found.push(lower);
    }
    found.dedup();
    found
}

/// Whether `toks[i..]` opens with the attribute `#[cfg(test)]`; its length if so.
fn cfg_test_at(toks: &[(usize, Tok<'_>)], i: usize) -> Option<usize> {
    let want = [
        Tok::Punct('#'),
        Tok::Punct('['),
        Tok::Ident("cfg"),
        Tok::Punct('('),
        Tok::Ident("test"),
        Tok::Punct(')'),
        Tok::Punct(']'),
    ];
    let got = toks.get(i..i + want.len())?;
    got.iter()
        .map(|(_, t)| t)
        .eq(want.iter())
        .then_some(want.len())
}

/// The index after the item that starts at `i`: its `;`, or its braced body.
fn skip_item(toks: &[(usize, Tok<'_>)], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < toks.len() {
        match toks[i].1 {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            Tok::Punct(';') if depth == 0 => return i + 1,
            _ => {}
        }
        i += 1;
    }
    i
}

/// Every caught word of one Rust source file, outside comments and unit-test modules.
pub fn scan(src: &str) -> Vec<Hit> {
    let toks = tokens(src);
    let mut hits = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if let Some(len) = cfg_test_at(&toks, i) {
            i = skip_item(&toks, i + len);
            continue;
        }
        let (line, tok) = &toks[i];
        match tok {
            Tok::Ident(id) => {
                for word in caught(id, false) {
                    hits.push(Hit {
                        line: *line,
                        word,
                        context: format!("identifier `{id}`"),
                    });
                }
            }
            Tok::Str(s) => {
                for (n, text_line) in s.split('\n').enumerate() {
                    for w in text_line.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
                        for word in caught(w, true) {
                            hits.push(Hit {
                                line: line + n,
                                word,
                                context: "a string literal".into(),
                            });
                        }
                    }
                }
            }
            Tok::Punct(_) => {}
        }
        i += 1;
    }
    hits
}

/// Whether `ALLOWED` lets `line_text` of `file` keep its words.
fn allowed(file: &Path, line_text: &str) -> bool {
    ALLOWED
        .iter()
        .any(|(suffix, text, _why)| file.ends_with(suffix) && line_text.trim() == *text)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    Ok(())
}

/// The naming rule over `trees` (relative to `root`): one line per caught word,
/// `path:line: word (where)`.
///
/// # Errors
/// A tree or file that cannot be read.
pub fn check(root: &Path, trees: &[&str]) -> Result<Vec<String>, String> {
    let mut broken = Vec::new();
    for tree in trees {
        let mut files = Vec::new();
        rust_files(&root.join(tree), &mut files)?;
        for file in files {
            let src = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let lines: Vec<&str> = src.lines().collect();
            let rel = file.strip_prefix(root).unwrap_or(&file);
            for hit in scan(&src) {
                let text = lines.get(hit.line - 1).copied().unwrap_or("");
                if !allowed(rel, text) {
                    broken.push(format!(
                        "  {}:{}: `{}` in {}",
                        rel.display(),
                        hit.line,
                        hit.word,
                        hit.context
                    ));
                }
            }
        }
    }
    Ok(broken)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(src: &str) -> Vec<(usize, String)> {
        scan(src).into_iter().map(|h| (h.line, h.word)).collect()
    }

    #[test]
    fn comments_never_count() {
        let src = "//! Trello boards and cards.\n/// The list of the board.\n\
                   // a Linear team\n/* Trello /* nested card */ list */\nfn f() {}\n";
        assert_eq!(words(src), []);
    }

    #[test]
    fn string_literals_count_with_their_line() {
        let src = "fn f() -> String {\n    format!(\"the record names no board and list\")\n}\n\
                   const A: &str = r#\"reconnect Trello\"#;\nconst B: &[u8] = b\"cards\";\n";
        assert_eq!(
            words(src),
            [
                (2, "board".to_owned()),
                (2, "list".to_owned()),
                (4, "trello".to_owned()),
                (5, "cards".to_owned())
            ]
        );
        // A multi-line string names the line the word is on.
        assert_eq!(
            words("let s = \"one\n two\n a team\";"),
            [(3, "team".to_owned())]
        );
        // `webriskops setup trello` and the record's key `trello_cloud`.
        assert_eq!(
            words("let s = \"run `webriskops setup trello` for trello_cloud\";"),
            [(1, "trello".to_owned()), (1, "trello".to_owned())]
        );
    }

    #[test]
    fn identifiers_are_caught_as_whole_nouns_or_by_tracker_name() {
        assert_eq!(words("let x = obs.board;"), [(1, "board".to_owned())]);
        assert_eq!(
            words("for card in cards {}"),
            [(1, "card".to_owned()), (1, "cards".to_owned())]
        );
        assert_eq!(words("use d::card::route;"), [(1, "card".to_owned())]);
        assert_eq!(
            words("TrelloId::new(x); ProviderKey::LinearCloud; new_trello(t);"),
            [
                (1, "trello".to_owned()),
                (1, "linear".to_owned()),
                (1, "trello".to_owned())
            ]
        );
    }

    #[test]
    fn longer_identifiers_and_list_in_code_are_not_caught() {
        let src = "fn list_items(list: &[u8]) { let board_id = 1; let c: CardExport; \
                   let lists = vec![]; let teams_x = 2; let l = 'x'; let q = '\\''; }\n\
                   fn g<'a>(s: &'a str) -> &'a str { s }";
        assert_eq!(words(src), []);
        // In strings `list` counts only as a whole word.
        assert_eq!(words("let s = \"list_items listed listing\";"), []);
    }

    #[test]
    fn unit_test_modules_are_skipped_and_code_after_them_is_not() {
        let src = "#[cfg(test)]\nmod tests {\n    fn f() { let s = \"Trello { board\"; }\n}\n\
                   fn after() { let card = 1; }\n#[cfg(test)]\nuse x::TrelloId;\nconst T: &str = \"team\";\n";
        assert_eq!(words(src), [(5, "card".to_owned()), (8, "team".to_owned())]);
    }

    #[test]
    fn the_check_names_each_file_line_and_word_under_the_trees() {
        let root = std::env::temp_dir().join(format!("xtask-naming-{}", std::process::id()));
        let tree = root.join("crates/service/src");
        std::fs::create_dir_all(tree.join("sub")).unwrap();
        std::fs::write(
            tree.join("clean.rs"),
            "//! Trello, in a comment.\nfn f() {}\n",
        )
        .unwrap();
        std::fs::write(
            tree.join("sub/dirty.rs"),
            "fn f() -> &'static str {\n    \"reconnect Trello\"\n}\n",
        )
        .unwrap();
        let broken = check(&root, &["crates/service/src"]).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(
            broken,
            ["  crates/service/src/sub/dirty.rs:2: `trello` in a string literal"]
        );
        assert!(
            check(&root, &["crates/service/src"]).is_err(),
            "a missing tree is an error"
        );
    }

    #[test]
    fn the_neutral_trees_are_ports_and_service_and_nothing_is_allowlisted() {
        assert_eq!(NEUTRAL_TREES, ["crates/ports/src", "crates/service/src"]);
        assert!(ALLOWED.is_empty() || ALLOWED.iter().all(|(_, _, why)| !why.is_empty()));
    }
}
