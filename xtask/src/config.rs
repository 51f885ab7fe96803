//! `cargo xtask config [--check]`: the environment variables the server's configuration code
//! reads, against the rows of `docs/configuration.md`'s table, so the table cannot drift from
//! the code (`.ci/run` runs `--check`).
//!
//! The code side is every string literal shaped like an environment variable (`[A-Z][A-Z0-9_]{3,}`,
//! the shape the before-stop hook looks for too) in `apps/api/src/config.rs` and any file under
//! `apps/api/src/config/`, outside comments and `#[cfg(test)]` modules: the names passed to
//! `get`, `parse`, `parse_bool` and `err`, and to any helper added later. The documentation side
//! is every name in backticks in the first cell of a table row of `docs/configuration.md`
//! (`` `HOST` / `PORT` `` names two). Each variable must be in both, and in one row only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::workspace::{self, Result};

/// The configuration code, relative to the workspace root.
pub const SOURCE: &str = "apps/api/src/config.rs";
/// A folder the configuration code may be split into later.
pub const SOURCE_DIR: &str = "apps/api/src/config";
/// The documented table, relative to the workspace root.
pub const TABLE: &str = "docs/configuration.md";

pub enum Mode {
    Print,
    Check,
}

/// Where something was found: a file (relative to the root) and a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub file: String,
    pub line: usize,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

pub fn run(root: &Path, mode: Mode) -> Result<()> {
    let mut read: BTreeMap<String, Place> = BTreeMap::new();
    for path in sources(root)? {
        let rel = relative(root, &path);
        for (name, line) in variables_read(&workspace::read(&path)?) {
            read.entry(name).or_insert(Place {
                file: rel.clone(),
                line,
            });
        }
    }
    if read.is_empty() {
        return Err(format!(
            "found no environment variable in {SOURCE}: has the configuration code moved? \
             Point xtask/src/config.rs at it"
        ));
    }
    let table = workspace::read(&root.join(TABLE))?;
    let rows = table_rows(&table, TABLE);
    match mode {
        Mode::Print => {
            for (name, place) in &read {
                let row = rows
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or_else(|| "no row".to_owned(), |(_, p)| p.to_string());
                println!("{name}\tread at {place}\trow {row}");
            }
            Ok(())
        }
        Mode::Check => {
            let problems = compare(&read, &rows);
            if problems.is_empty() {
                println!(
                    "{TABLE} has one row for each of the {} variables {SOURCE} reads",
                    read.len()
                );
                Ok(())
            } else {
                Err(format!(
                    "{TABLE} and the configuration code disagree:\n{}",
                    problems
                        .iter()
                        .map(|p| format!("- {p}\n"))
                        .collect::<String>()
                ))
            }
        }
    }
}

/// `apps/api/src/config.rs` and every `.rs` file under `apps/api/src/config/`, sorted.
fn sources(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = vec![root.join(SOURCE)];
    let mut dirs = vec![root.join(SOURCE_DIR)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry
                .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
                .path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// Every disagreement, each naming the variable and where it is missing.
pub fn compare(read: &BTreeMap<String, Place>, rows: &[(String, Place)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, place) in read {
        if !rows.iter().any(|(n, _)| n == name) {
            problems.push(format!(
                "`{name}` is read by the code ({place}) but has no row in {TABLE}'s table: \
                 add a row whose first cell is `{name}` in backticks, with its default and meaning"
            ));
        }
    }
    let mut seen: BTreeMap<&str, &Place> = BTreeMap::new();
    for (name, place) in rows {
        if !read.contains_key(name) {
            problems.push(format!(
                "`{name}` has a row in {TABLE}'s table ({place}) but the configuration code \
                 ({SOURCE}) never reads it: remove the row, or read the variable there"
            ));
        }
        if let Some(first) = seen.insert(name, place) {
            problems.push(format!(
                "`{name}` has two rows in {TABLE}'s table ({first} and {place}): keep one"
            ));
        }
    }
    problems
}

/// Whether `s` has the shape of an environment variable: an ASCII capital letter, then at
/// least three capitals, digits or underscores.
fn is_variable(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && s.len() >= 4
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// The variable names among the string literals of Rust `source`, with the line of their first
/// use, skipping comments, char literals and `#[cfg(test)]` items. A small lexer, not a parser:
/// enough for the configuration code, and it fails towards reporting too much, never too little.
pub fn variables_read(source: &str) -> Vec<(String, usize)> {
    let bytes = source.as_bytes();
    let mut found: Vec<(String, usize)> = Vec::new();
    let mut line = 1;
    let mut i = 0;
    // The brace depth of the code, and the depth at which a `#[cfg(test)]` item's block
    // opened (everything inside is skipped).
    let mut depth: usize = 0;
    let mut test_item_pending = false;
    let mut skip_from_depth: Option<usize> = None;
    while i < bytes.len() {
        let rest = &source[i..];
        let c = bytes[i];
        if c == b'\n' {
            line += 1;
            i += 1;
        } else if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(rest.len(), |e| e + 2);
            line += rest[..end].matches('\n').count();
            i += end;
        } else if rest.starts_with("#[cfg(test)]") {
            test_item_pending = true;
            i += "#[cfg(test)]".len();
        } else if c == b'{' {
            if test_item_pending && skip_from_depth.is_none() {
                skip_from_depth = Some(depth);
            }
            test_item_pending = false;
            depth += 1;
            i += 1;
        } else if c == b'}' {
            depth = depth.saturating_sub(1);
            if skip_from_depth == Some(depth) {
                skip_from_depth = None;
            }
            i += 1;
        } else if c == b';' {
            // `#[cfg(test)] use …;` or `mod tests;`: the attribute's item ended without a block.
            if skip_from_depth.is_none() {
                test_item_pending = false;
            }
            i += 1;
        } else if let Some((content, len)) = string_literal(rest) {
            if skip_from_depth.is_none()
                && !test_item_pending
                && is_variable(content)
                && !found.iter().any(|(n, _)| n == content)
            {
                found.push((content.to_owned(), line));
            }
            line += rest[..len].matches('\n').count();
            i += len;
        } else if c == b'\'' {
            i += char_literal_len(rest);
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    found
}

/// A string literal at the start of `s` (`"…"`, `b"…"`, `r"…"`, `r#"…"#`, …): its content
/// (escapes left as written) and its length in bytes. `None` when `s` does not start one.
fn string_literal(s: &str) -> Option<(&str, usize)> {
    let prefix = if s.starts_with("br") || s.starts_with("cr") {
        2
    } else if s.starts_with('b') || s.starts_with('r') || s.starts_with('c') {
        1
    } else {
        0
    };
    let raw = s[..prefix].ends_with('r');
    let after_prefix = &s[prefix..];
    if raw {
        let hashes = after_prefix.bytes().take_while(|&b| b == b'#').count();
        let open = &after_prefix[hashes..];
        if !open.starts_with('"') {
            return None;
        }
        let close = format!("\"{}", "#".repeat(hashes));
        let body_start = prefix + hashes + 1;
        let end = s[body_start..].find(&close)?;
        return Some((
            &s[body_start..body_start + end],
            body_start + end + close.len(),
        ));
    }
    if !after_prefix.starts_with('"') {
        return None;
    }
    let body_start = prefix + 1;
    let bytes = s.as_bytes();
    let mut j = body_start;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' => j += 2,
            b'"' => return Some((&s[body_start..j], j + 1)),
            _ => j += 1,
        }
    }
    Some((&s[body_start..], s.len()))
}

/// The length of the char literal at the start of `s` (`'a'`, `'\n'`, `'"'`), or 1 for a
/// lifetime's quote (`'a`), which is then read as code.
fn char_literal_len(s: &str) -> usize {
    let rest = &s[1..];
    if let Some(escaped) = rest.strip_prefix('\\') {
        // The escaped character, then up to the closing quote (`'\n'`, `'\''`, `'\u{1F600}'`).
        let first = escaped.chars().next().map_or(0, char::len_utf8);
        return escaped[first..]
            .find('\'')
            .map_or(1, |e| 1 + 1 + first + e + 1);
    }
    let mut chars = rest.char_indices();
    match (chars.next(), chars.next()) {
        (Some(_), Some((at, '\''))) => 1 + at + 1,
        _ => 1,
    }
}

/// The variables named in the first cell of each table row of `markdown` (header and
/// separator rows name none), with where each row is.
pub fn table_rows(markdown: &str, file: &str) -> Vec<(String, Place)> {
    let mut rows = Vec::new();
    let mut in_fence = false;
    for (n, text) in markdown.lines().enumerate() {
        let trimmed = text.trim_start();
        if trimmed.starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence || !trimmed.starts_with('|') {
            continue;
        }
        let first_cell = trimmed[1..].split('|').next().unwrap_or_default();
        for (k, piece) in first_cell.split('`').enumerate() {
            // Odd pieces are between backticks.
            if k % 2 == 1 && is_variable(piece) {
                rows.push((
                    piece.to_owned(),
                    Place {
                        file: file.to_owned(),
                        line: n + 1,
                    },
                ));
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODE: &str = r##"
//! Reads `NOT_A_READ` in a doc comment, which does not count.
fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let host: IpAddr = parse(&get, "HOST", "127.0.0.1")?;
    let quote = '"'; let escaped = '\''; let life: &'static str = "x";
    /* "IN_A_BLOCK_COMMENT" */
    let url = get("DATABASE_URL").unwrap_or_else(|| "sqlite://marketplace.db".to_owned());
    let n: u32 = parse(
        &get,
        "DB_MAX_CONNECTIONS",
        "5",
    )?;
    if n == 0 { return Err(err("DB_MAX_CONNECTIONS", "must be at least 1")); }
    let raw = r#"RAW_ONE"#; let message = "says \"HOST\" inside";
    let short = "GET";
}

#[cfg(test)]
mod tests {
    fn cfg() { let _ = [("ONLY_IN_TESTS", "1")]; if true { let _ = "NESTED_IN_TESTS"; } }
}

fn after_the_tests() { let _ = get("AFTER_TESTS"); }
"##;

    #[test]
    fn the_literals_passed_to_the_readers_are_found_with_their_line() {
        assert_eq!(
            variables_read(CODE),
            [
                ("HOST".to_owned(), 4),
                ("DATABASE_URL".to_owned(), 7),
                ("DB_MAX_CONNECTIONS".to_owned(), 10),
                ("RAW_ONE".to_owned(), 14),
                ("AFTER_TESTS".to_owned(), 23),
            ]
        );
    }

    const TABLE_MD: &str = "# Configuration\n\n| variable | default | meaning |\n\
        | --- | --- | --- |\n| `HOST` / `PORT` | `127.0.0.1` / `3000` | listen address |\n\
        | `RUST_LOG` | `info` | not `APP_ENV` here |\n\n```\n| `IN_A_FENCE` | | |\n```\n";

    #[test]
    fn the_first_cell_of_every_row_names_its_variables() {
        let rows = table_rows(TABLE_MD, "docs/configuration.md");
        let names: Vec<(&str, usize)> = rows.iter().map(|(n, p)| (n.as_str(), p.line)).collect();
        assert_eq!(names, [("HOST", 5), ("PORT", 5), ("RUST_LOG", 6)]);
    }

    fn place(file: &str, line: usize) -> Place {
        Place {
            file: file.to_owned(),
            line,
        }
    }

    #[test]
    fn each_disagreement_names_the_variable_and_where_it_is_missing() {
        let read: BTreeMap<String, Place> =
            [("HOST", place(SOURCE, 4)), ("SMTP_URL", place(SOURCE, 90))]
                .into_iter()
                .map(|(n, p)| (n.to_owned(), p))
                .collect();
        let rows = vec![
            ("HOST".to_owned(), place(TABLE, 5)),
            ("GONE_VAR".to_owned(), place(TABLE, 6)),
            ("HOST".to_owned(), place(TABLE, 7)),
        ];
        let problems = compare(&read, &rows);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(
            problems[0].starts_with(
                "`SMTP_URL` is read by the code (apps/api/src/config.rs:90) but has no row in \
                 docs/configuration.md's table"
            ),
            "{}",
            problems[0]
        );
        assert!(
            problems[1].starts_with(
                "`GONE_VAR` has a row in docs/configuration.md's table (docs/configuration.md:6) \
                 but the configuration code (apps/api/src/config.rs) never reads it"
            ),
            "{}",
            problems[1]
        );
        assert!(
            problems[2].contains("`HOST` has two rows"),
            "{}",
            problems[2]
        );
        assert_eq!(compare(&read, &rows[..1]).len(), 1);
    }

    /// The check itself, on this workspace: `cargo test` fails too when the table drifts.
    #[test]
    fn the_configuration_table_is_the_codes() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask/ lies in the workspace root");
        if let Err(e) = run(root, Mode::Check) {
            panic!("{e}");
        }
    }
}
