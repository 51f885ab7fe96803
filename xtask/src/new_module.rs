//! `cargo xtask new-module <name>`: a domain module that builds, is registered everywhere a
//! module must be, has its migration and a passing black-box test, in one command.
//!
//! Nothing is written until every file is rendered and every registration edit has found its
//! anchor, so a refused or failed run leaves the tree as it was. The files come from
//! `xtask/templates/` (placeholders: `{{name}}` snake_case, `{{Name}}` UpperCamelCase,
//! `{{path}}` the URL segment, `{{migration}}` the migration's module name).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Utc};

use crate::edit::{LineEdit, Region};
use crate::workspace::{self, Result};

/// The files of a new module: where each goes (with placeholders) and its template.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "modules/{{name}}/Cargo.toml",
        include_str!("../templates/module/Cargo.toml.tmpl"),
    ),
    (
        "modules/{{name}}/src/lib.rs",
        include_str!("../templates/module/src/lib.rs.tmpl"),
    ),
    (
        "modules/{{name}}/src/routes.rs",
        include_str!("../templates/module/src/routes.rs.tmpl"),
    ),
    (
        "modules/{{name}}/src/service.rs",
        include_str!("../templates/module/src/service.rs.tmpl"),
    ),
    (
        "modules/{{name}}/src/dto.rs",
        include_str!("../templates/module/src/dto.rs.tmpl"),
    ),
    (
        "modules/{{name}}/src/entity/mod.rs",
        include_str!("../templates/module/src/entity/mod.rs.tmpl"),
    ),
    (
        "modules/{{name}}/src/entity/item.rs",
        include_str!("../templates/module/src/entity/item.rs.tmpl"),
    ),
    (
        "modules/{{name}}/src/subscribers.rs",
        include_str!("../templates/module/src/subscribers.rs.tmpl"),
    ),
    (
        "migrations/src/{{migration}}.rs",
        include_str!("../templates/migration.rs.tmpl"),
    ),
    (
        "tests/tests/suite/{{name}}.rs",
        include_str!("../templates/test.rs.tmpl"),
    ),
];

/// Names a module cannot take whatever the tree holds: Rust's own crates and keywords.
const RESERVED: &str = "std core alloc proc_macro test self super crate as async await break \
    const continue dyn else enum extern false fn for gen if impl in let loop match mod move mut \
    pub ref return static struct trait true try type union unsafe use where while abstract \
    become box do final macro override priv typeof unsized virtual yield";

/// The longest module name (it is also a table name, and PostgreSQL cuts identifiers at 63
/// bytes, index names included).
const MAX_LEN: usize = 40;

/// The spellings of one module name.
#[derive(Debug, Clone, PartialEq)]
pub struct Names {
    /// `order_notes`: crate, module, table and OpenAPI tag.
    pub name: String,
    /// `OrderNotes`: type names.
    pub camel: String,
    /// `order-notes`: the URL segment, `/api/order-notes`.
    pub path: String,
    /// `m20261206_120000_order_notes_table`: the migration's module.
    pub migration: String,
}

impl Names {
    fn new(name: &str, migration_stamp: &str) -> Names {
        Names {
            name: name.to_owned(),
            camel: name
                .split('_')
                .map(|part| {
                    let mut chars = part.chars();
                    chars.next().map_or(String::new(), |first| {
                        first.to_ascii_uppercase().to_string() + chars.as_str()
                    })
                })
                .collect(),
            path: name.replace('_', "-"),
            migration: format!("m{migration_stamp}_{name}_table"),
        }
    }

    /// `template` with every placeholder filled; an unknown `{{placeholder}}` is an error
    /// (a template edited with a typo must not produce a module that fails to build later).
    pub fn render(&self, template: &str) -> Result<String> {
        let out = template
            .replace("{{name}}", &self.name)
            .replace("{{Name}}", &self.camel)
            .replace("{{path}}", &self.path)
            .replace("{{migration}}", &self.migration);
        for (at, _) in out.match_indices("{{") {
            let rest = &out[at + 2..];
            let Some(end) = rest.find("}}") else { break };
            let inner = &rest[..end];
            if !inner.is_empty() && inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "a template has the unknown placeholder `{{{{{inner}}}}}`"
                ));
            }
        }
        Ok(out)
    }
}

pub fn run(root: &Path, name: &str) -> Result<()> {
    check_name(name)?;
    let stamp = migration_stamp(&existing_migrations(root)?, Utc::now())?;
    let names = Names::new(name, &stamp);
    refuse_existing(root, &names)?;

    let mut files: Vec<(PathBuf, String)> = Vec::new();
    for (target, template) in TEMPLATES {
        files.push((root.join(names.render(target)?), names.render(template)?));
    }
    let mut changed: Vec<(PathBuf, String)> = Vec::new();
    for (file, edits) in registrations(root, &names)? {
        let path = root.join(file);
        let mut text = workspace::read(&path)?;
        for edit in &edits {
            text = edit.apply(&text)?;
        }
        changed.push((path, text));
    }

    for (path, text) in files.iter().chain(&changed) {
        workspace::write(path, text)?;
    }
    let formatted = rustfmt(&[
        root.join(format!("modules/{name}/src/lib.rs")),
        root.join(format!("migrations/src/{}.rs", names.migration)),
        root.join(format!("tests/tests/suite/{name}.rs")),
    ]);

    let rel = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
    println!("created:");
    for (path, _) in &files {
        println!("  {}", rel(path));
    }
    println!("registered in:");
    for (path, _) in &changed {
        println!("  {}", rel(path));
    }
    if let Err(e) = formatted {
        println!("note: the new files are not formatted ({e}); run `cargo fmt --all`");
    }
    // README's module graph gains the new crate (`cargo xtask graph --check` runs in CI).
    if let Err(e) = crate::graph::run(root, crate::graph::Mode::Write) {
        println!(
            "note: README.md's module graph is not updated ({e}); run `cargo xtask graph --write`"
        );
    }
    println!(
        "\nnext:\n  cargo build\n  cargo test -p marketplace-tests --test suite -- {name}::\n\
         then the hand steps in docs/adding-a-module.md (your columns, your rules, your \
         events)."
    );
    Ok(())
}

/// A module name is a snake_case Rust identifier: lowercase ASCII letters and digits in
/// words joined by single underscores, starting with a letter, not a keyword.
pub fn check_name(name: &str) -> Result<()> {
    let words_ok = !name.is_empty()
        && name.split('_').all(|w| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    let starts_with_letter = name.starts_with(|c: char| c.is_ascii_lowercase());
    if !words_ok || !starts_with_letter {
        return Err(format!(
            "`{name}` is not a snake_case identifier: use lowercase letters and digits in words \
             joined by single underscores, starting with a letter (e.g. `reviews`, `order_notes`)"
        ));
    }
    if name.len() > MAX_LEN {
        return Err(format!(
            "`{name}` is longer than {MAX_LEN} characters (it is also a table name)"
        ));
    }
    if RESERVED.split_whitespace().any(|word| word == name) {
        return Err(format!(
            "`{name}` is a Rust keyword or a crate of Rust itself"
        ));
    }
    Ok(())
}

/// Refuses a name any crate, dependency, table, route or test of the tree already uses.
fn refuse_existing(root: &Path, names: &Names) -> Result<()> {
    let name = names.name.as_str();
    let taken = |what: &str| {
        Err(format!(
            "`{name}` exists already: {what}; choose another name"
        ))
    };
    if root.join("modules").join(name).exists() {
        return taken(&format!("modules/{name}"));
    }
    let test = format!("tests/tests/suite/{name}.rs");
    if root.join(&test).exists() {
        return taken(&test);
    }
    let meta = workspace::metadata(root)?;
    for package in meta["packages"].as_array().into_iter().flatten() {
        let package_name = package["name"].as_str().unwrap_or_default();
        if package_name.replace('-', "_") == name {
            return taken(&format!("the workspace crate `{package_name}`"));
        }
    }
    for (file, table) in [
        ("Cargo.toml", "[workspace.dependencies]"),
        ("apps/api/Cargo.toml", "[dependencies]"),
    ] {
        let keys = toml_keys(&workspace::read(&root.join(file))?, table);
        if keys.iter().any(|k| k.replace('-', "_") == name) {
            return taken(&format!("a dependency in {file} {table}"));
        }
    }
    let sources = rust_files(root)?;
    let route = format!("\"/api/{}", names.path);
    for path in &sources {
        let text = workspace::read(path)?;
        let rel = path.strip_prefix(root).unwrap_or(path).display();
        if tables_in(&text).contains(name) {
            return taken(&format!("a table in {rel}"));
        }
        let route_taken = text.match_indices(&route).any(|(at, _)| {
            matches!(
                text[at + route.len()..].chars().next(),
                Some('"' | '/' | '?')
            )
        });
        if route_taken {
            return taken(&format!("the route /api/{} in {rel}", names.path));
        }
    }
    Ok(())
}

/// The keys of one TOML table (`key = ...` or `key.workspace = true`).
fn toml_keys(text: &str, table: &str) -> Vec<String> {
    let mut inside = false;
    let mut keys = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == table;
        } else if inside && !line.starts_with('#') && line.contains('=') {
            let key = line.split(['=', '.']).next().unwrap_or_default().trim();
            keys.push(key.trim_matches('"').to_owned());
        }
    }
    keys
}

/// The table names a Rust file declares: sea-orm entities (`table_name = "x"`) and migration
/// identifiers (`enum X { Table, ... }` or `#[sea_orm(iden = "x")]`).
fn tables_in(text: &str) -> BTreeSet<String> {
    let mut tables = BTreeSet::new();
    for marker in ["table_name = \"", "iden = \""] {
        for (at, _) in text.match_indices(marker) {
            let rest = &text[at + marker.len()..];
            if let Some(end) = rest.find('"') {
                tables.insert(rest[..end].to_owned());
            }
        }
    }
    if text.contains("DeriveIden") {
        for (at, _) in text.match_indices("enum ") {
            let rest = &text[at + 5..];
            let ident: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !ident.is_empty() {
                tables.insert(snake(&ident));
            }
        }
    }
    tables
}

/// `OrderNotes` → `order_notes` (how sea-orm's `DeriveIden` names a table).
fn snake(ident: &str) -> String {
    let mut out = String::new();
    for (i, c) in ident.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Every `.rs` file of the product code (apps, modules, connections, migrations).
fn rust_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = ["apps", "modules", "connections", "migrations"]
        .iter()
        .map(|d| root.join(d))
        .filter(|d| d.exists())
        .collect();
    while let Some(dir) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry
                .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
                .path();
            let skip = path
                .file_name()
                .is_some_and(|n| n == "target" || n == "node_modules");
            if skip {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The `YYYYMMDD_HHMMSS` stamps of the migrations in `migrations/src`.
fn existing_migrations(root: &Path) -> Result<Vec<String>> {
    let dir = root.join("migrations/src");
    let entries =
        std::fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut stamps = Vec::new();
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if let Some(stamp) = stamp_of(&file) {
            stamps.push(stamp.to_owned());
        }
    }
    Ok(stamps)
}

/// `20261122_000101` of `m20261122_000101_requests_purchase_requests.rs`.
fn stamp_of(file: &str) -> Option<&str> {
    let stamp = file.strip_prefix('m')?.get(..15)?;
    let (date, time) = stamp.split_once('_')?;
    let digits = |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_digit());
    (digits(date, 8) && digits(time, 6)).then_some(stamp)
}

/// The new migration's stamp: now, or just after the newest migration when the clock is
/// behind it (migrations run in list order and their names must say that order).
fn migration_stamp(existing: &[String], now: DateTime<Utc>) -> Result<String> {
    let now = now.format("%Y%m%d_%H%M%S").to_string();
    let Some(newest) = existing.iter().max() else {
        return Ok(now);
    };
    if now > *newest {
        return Ok(now);
    }
    let (date, time) = newest
        .split_once('_')
        .ok_or("a malformed migration stamp")?;
    let next: u32 = time.parse::<u32>().map_err(|e| e.to_string())? + 1;
    if next > 999_999 {
        return Err(format!(
            "no stamp left after {newest} on that day; name the migration by hand"
        ));
    }
    Ok(format!("{date}_{next:06}"))
}

/// Every edit that registers the module, grouped by file; the anchors are the lines of the
/// modules and migrations that are there already.
fn registrations(root: &Path, names: &Names) -> Result<Vec<(&'static str, Vec<LineEdit>)>> {
    let modules: Vec<String> = std::fs::read_dir(root.join("modules"))
        .map_err(|e| format!("cannot list modules/: {e}"))?
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let is_module = move |krate: &str| modules.iter().any(|m| m == krate);
    let is_module_dep = {
        let is_module = is_module.clone();
        move |line: &str| {
            let key = line.split(['.', '=']).next().unwrap_or_default().trim();
            is_module(key) && line.contains("workspace = true")
        }
    };
    // A whole entry on one line (`Box::new(x::XModule),`): after the opening line of an entry
    // that spans several, the new line would land inside it.
    let is_module_entry = move |line: &str| {
        line.trim_end().ends_with("),")
            && line
                .trim_start()
                .strip_prefix("Box::new(")
                .and_then(|rest| rest.split("::").next())
                .is_some_and(&is_module)
    };
    let is_migration_mod = |line: &str| {
        line.trim_start()
            .strip_prefix("mod ")
            .is_some_and(|rest| stamp_of(rest).is_some())
    };
    let is_migration_entry = |line: &str| {
        line.trim_start()
            .strip_prefix("Box::new(")
            .is_some_and(|rest| stamp_of(rest).is_some() && rest.ends_with("::Migration),"))
    };
    let name = &names.name;
    Ok(vec![
        (
            "Cargo.toml",
            vec![LineEdit {
                file: "Cargo.toml",
                region: Region::TomlTable("[workspace.dependencies]"),
                anchor: "a `<module> = { path = \"modules/<module>\" }` line",
                is_anchor: Box::new(|line: &str| line.contains("{ path = \"modules/")),
                line: format!("{name} = {{ path = \"modules/{name}\" }}"),
            }],
        ),
        (
            "apps/api/Cargo.toml",
            vec![LineEdit {
                file: "apps/api/Cargo.toml",
                region: Region::TomlTable("[dependencies]"),
                anchor: "a `<module>.workspace = true` line of a crate in modules/",
                is_anchor: Box::new(is_module_dep),
                line: format!("{name}.workspace = true"),
            }],
        ),
        (
            "apps/api/src/lib.rs",
            vec![LineEdit {
                file: "apps/api/src/lib.rs",
                region: Region::RustFn("pub fn modules("),
                anchor: "a `Box::new(<module>::...)` line of a crate in modules/ in `modules()`",
                is_anchor: Box::new(is_module_entry),
                line: format!("Box::new({name}::{}Module),", names.camel),
            }],
        ),
        (
            "migrations/src/lib.rs",
            vec![
                LineEdit {
                    file: "migrations/src/lib.rs",
                    region: Region::Whole,
                    anchor: "a `mod mYYYYMMDD_HHMMSS_...;` line",
                    is_anchor: Box::new(is_migration_mod),
                    line: format!("mod {};", names.migration),
                },
                LineEdit {
                    file: "migrations/src/lib.rs",
                    region: Region::RustFn("fn migrations()"),
                    anchor: "a `Box::new(mYYYYMMDD_HHMMSS_...::Migration),` line in `migrations()`",
                    is_anchor: Box::new(is_migration_entry),
                    line: format!("Box::new({}::Migration),", names.migration),
                },
            ],
        ),
        (
            "tests/tests/suite/main.rs",
            vec![LineEdit {
                file: "tests/tests/suite/main.rs",
                region: Region::Whole,
                anchor: "a `mod <area>;` line",
                is_anchor: Box::new(|line: &str| {
                    line.strip_prefix("mod ")
                        .and_then(|rest| rest.strip_suffix(';'))
                        .is_some_and(|m| {
                            m.chars()
                                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                        })
                }),
                line: format!("mod {name};"),
            }],
        ),
    ])
}

/// Formats the new files (and the modules they declare) the way `cargo fmt` would.
fn rustfmt(files: &[PathBuf]) -> Result<()> {
    let status = Command::new("rustfmt")
        .args(["--edition", "2024"])
        .args(files)
        .status()
        .map_err(|e| format!("cannot run rustfmt: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("rustfmt failed ({status})"))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn snake_case_identifiers_are_accepted_and_anything_else_refused() {
        for ok in ["reviews", "order_notes", "v2_items", "a"] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "Reviews",
            "order-notes",
            "order__notes",
            "_x",
            "x_",
            "2fa",
            "ré",
            "a b",
            "type",
            "mod",
            "std",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_name(&"a".repeat(MAX_LEN + 1)).is_err());
    }

    #[test]
    fn a_name_is_spelled_for_types_urls_and_the_migration() {
        let names = Names::new("order_notes", "20261206_120000");
        assert_eq!(names.camel, "OrderNotes");
        assert_eq!(names.path, "order-notes");
        assert_eq!(names.migration, "m20261206_120000_order_notes_table");
        assert_eq!(
            names
                .render("{{Name}}Module /api/{{path}} {{name}} {{migration}} {id} {}")
                .unwrap(),
            "OrderNotesModule /api/order-notes order_notes m20261206_120000_order_notes_table {id} {}"
        );
        assert!(names.render("{{Nmae}}").unwrap_err().contains("{{Nmae}}"));
    }

    #[test]
    fn every_template_renders_without_a_leftover_placeholder() {
        let names = Names::new("reviews", "20261206_120000");
        for (target, template) in TEMPLATES {
            let rendered = names.render(template).unwrap();
            assert!(!rendered.contains("{{"), "{target}");
            assert!(
                names.render(target).unwrap().contains("reviews"),
                "{target}"
            );
        }
    }

    #[test]
    fn the_migration_comes_after_every_existing_one_even_with_a_slow_clock() {
        let existing = vec!["20261122_000101".to_owned(), "20261130_000501".to_owned()];
        let later = Utc.with_ymd_and_hms(2026, 12, 6, 11, 38, 5).unwrap();
        assert_eq!(
            migration_stamp(&existing, later).unwrap(),
            "20261206_113805"
        );
        let earlier = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(
            migration_stamp(&existing, earlier).unwrap(),
            "20261130_000502"
        );
        assert_eq!(
            stamp_of("m20261130_000501_connections_nodes.rs"),
            Some("20261130_000501")
        );
        assert_eq!(stamp_of("lib.rs"), None);
    }

    #[test]
    fn tables_are_found_in_entities_and_migrations() {
        let entity = "#[sea_orm(table_name = \"purchase_requests\")]\npub struct Model {}";
        let migration = "#[derive(DeriveIden)]\nenum UserPresence {\n    Table,\n}\n#[derive(DeriveIden)]\nenum Notes {\n    #[sea_orm(iden = \"my_notes\")]\n    Table,\n}";
        assert!(tables_in(entity).contains("purchase_requests"));
        let found = tables_in(migration);
        assert!(found.contains("user_presence"), "{found:?}");
        assert!(found.contains("my_notes"), "{found:?}");
    }

    #[test]
    fn toml_keys_are_read_from_one_table() {
        let text = "[dependencies]\nkernel.workspace = true\nanyhow = \"1\"\n# x = 1\n\n[dev-dependencies]\ntokio.workspace = true\n";
        assert_eq!(toml_keys(text, "[dependencies]"), ["kernel", "anyhow"]);
    }
}
