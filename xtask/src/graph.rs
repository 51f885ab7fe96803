//! `cargo xtask graph`: which workspace crate depends on which, drawn as Mermaid from
//! `cargo metadata`, so README's module graph comes from the code and CI can hold it there.
//!
//! Only normal dependencies between workspace crates count (not dev- or build-dependencies);
//! the black-box test crate (`tests/`) and this tool (`xtask/`) are left out. The output is
//! sorted, so it changes only when a dependency does.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;

use serde_json::Value;

use crate::workspace::{self, Result};

/// The README block between these lines is generated; edit the code, then `--write`.
pub const START: &str = "<!-- module-graph:start -->";
pub const END: &str = "<!-- module-graph:end -->";

/// Folders (relative to the workspace root) of crates that are not part of the architecture.
const LEFT_OUT: &[&str] = &["tests", "xtask"];

pub enum Mode {
    Print,
    Check,
    Write,
}

pub fn run(root: &Path, mode: Mode) -> Result<()> {
    let graph = Graph::from_metadata(&workspace::metadata(root)?)?;
    let block = graph.readme_block();
    let readme_path = root.join("README.md");
    match mode {
        Mode::Print => {
            print!("{}", graph.mermaid());
            Ok(())
        }
        Mode::Check => {
            let readme = workspace::read(&readme_path)?;
            let current = between_markers(&readme)?;
            if current == block {
                println!("README.md's module graph matches the code");
                Ok(())
            } else {
                Err(format!(
                    "README.md's module graph is out of date (- README, + code):\n{}\
                     run `cargo xtask graph --write` and commit README.md",
                    line_diff(current, &block)
                ))
            }
        }
        Mode::Write => {
            let readme = workspace::read(&readme_path)?;
            let range = block_range(&readme)?;
            if readme[range.clone()] == block {
                println!("README.md's module graph is up to date");
                return Ok(());
            }
            let mut updated = readme.clone();
            updated.replace_range(range, &block);
            workspace::write(&readme_path, &updated)?;
            println!("README.md's module graph updated");
            Ok(())
        }
    }
}

/// Crates and their internal dependency edges (`from` depends on `to`), both sorted.
#[derive(Debug, Default, PartialEq)]
pub struct Graph {
    pub crates: BTreeSet<String>,
    pub edges: BTreeSet<(String, String)>,
}

impl Graph {
    /// The graph of the workspace described by `cargo metadata --format-version 1 --no-deps`.
    pub fn from_metadata(meta: &Value) -> Result<Graph> {
        let root = meta["workspace_root"]
            .as_str()
            .ok_or("cargo metadata has no workspace_root")?;
        let members: BTreeSet<&str> = meta["workspace_members"]
            .as_array()
            .ok_or("cargo metadata has no workspace_members")?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let packages = meta["packages"]
            .as_array()
            .ok_or("cargo metadata has no packages")?;
        let mut included: BTreeMap<&str, &Value> = BTreeMap::new();
        for package in packages {
            let id = package["id"].as_str().unwrap_or_default();
            let name = package["name"]
                .as_str()
                .ok_or("a package without a name in cargo metadata")?;
            let manifest = package["manifest_path"].as_str().unwrap_or_default();
            let dir = Path::new(manifest)
                .parent()
                .and_then(|d| d.strip_prefix(root).ok())
                .map(|d| d.to_string_lossy().into_owned())
                .unwrap_or_default();
            if members.contains(id) && !LEFT_OUT.contains(&dir.as_str()) {
                included.insert(name, package);
            }
        }
        let mut graph = Graph::default();
        for (name, package) in &included {
            graph.crates.insert((*name).to_owned());
            for dep in package["dependencies"].as_array().into_iter().flatten() {
                let normal = dep["kind"].is_null();
                let dep_name = dep["name"].as_str().unwrap_or_default();
                if normal && included.contains_key(dep_name) {
                    graph
                        .edges
                        .insert(((*name).to_owned(), dep_name.to_owned()));
                }
            }
        }
        Ok(graph)
    }

    /// `flowchart TD`: every crate once (so one without internal edges shows too), then every
    /// edge, both in name order.
    pub fn mermaid(&self) -> String {
        let mut out = String::from("flowchart TD\n");
        for name in &self.crates {
            let id = node_id(name);
            if id == *name {
                out.push_str(&format!("    {id}\n"));
            } else {
                out.push_str(&format!("    {id}[\"{name}\"]\n"));
            }
        }
        for (from, to) in &self.edges {
            out.push_str(&format!("    {} --> {}\n", node_id(from), node_id(to)));
        }
        out
    }

    /// What stands between README's markers: the Mermaid graph in a `mermaid` fence.
    pub fn readme_block(&self) -> String {
        format!("```mermaid\n{}```\n", self.mermaid())
    }
}

/// A Mermaid node id for a crate name (`marketplace-api` → `marketplace_api`; a dash would
/// read as part of an arrow).
fn node_id(name: &str) -> String {
    name.replace('-', "_")
}

/// The text between the marker lines (from the line after the start marker up to the end
/// marker's line).
pub fn between_markers(readme: &str) -> Result<&str> {
    Ok(&readme[block_range(readme)?])
}

/// Where [`between_markers`] is in `readme`.
fn block_range(readme: &str) -> Result<Range<usize>> {
    let missing = || {
        format!(
            "README.md needs exactly one `{START}` line followed later by one `{END}` line \
             (around a ```mermaid block in the Architecture section); add them, then run \
             `cargo xtask graph --write`"
        )
    };
    if readme.matches(START).count() != 1 || readme.matches(END).count() != 1 {
        return Err(missing());
    }
    let start = readme.find(START).ok_or_else(missing)?;
    let after_start = readme[start..]
        .find('\n')
        .map(|n| start + n + 1)
        .ok_or_else(missing)?;
    let end = readme.find(END).ok_or_else(missing)?;
    if end < after_start {
        return Err(missing());
    }
    Ok(after_start..end)
}

/// The lines only in `old` (`-`) and only in `new` (`+`), in their order: enough to see what
/// changed in a sorted list of edges.
fn line_diff(old: &str, new: &str) -> String {
    let old_lines: BTreeSet<&str> = old.lines().collect();
    let new_lines: BTreeSet<&str> = new.lines().collect();
    let mut out = String::new();
    for line in old.lines().filter(|l| !new_lines.contains(l)) {
        out.push_str(&format!("-{line}\n"));
    }
    for line in new.lines().filter(|l| !old_lines.contains(l)) {
        out.push_str(&format!("+{line}\n"));
    }
    if out.is_empty() {
        out.push_str("(the same lines in another order or spacing)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn package(name: &str, dir: &str, deps: Value) -> Value {
        json!({
            "id": format!("path+file:///w/{dir}#{name}@0.1.0"),
            "name": name,
            "manifest_path": format!("/w/{dir}/Cargo.toml"),
            "dependencies": deps,
        })
    }

    fn dep(name: &str, kind: Option<&str>) -> Value {
        json!({ "name": name, "kind": kind, "path": format!("/w/{name}") })
    }

    fn metadata() -> Value {
        let packages = vec![
            package("kernel", "modules/kernel", json!([dep("serde", None)])),
            package(
                "offers",
                "modules/offers",
                json!([dep("kernel", None), dep("requests", None)]),
            ),
            package(
                "requests",
                "modules/requests",
                json!([dep("kernel", None), dep("offers", Some("dev"))]),
            ),
            package(
                "marketplace-api",
                "apps/api",
                json!([
                    dep("offers", None),
                    dep("requests", None),
                    dep("kernel", Some("build"))
                ]),
            ),
            package(
                "marketplace-tests",
                "tests",
                json!([dep("marketplace-api", None)]),
            ),
            package("xtask", "xtask", json!([])),
        ];
        let members: Vec<Value> = packages.iter().map(|p| p["id"].clone()).collect();
        json!({ "workspace_root": "/w", "workspace_members": members, "packages": packages })
    }

    #[test]
    fn only_normal_dependencies_between_architecture_crates_count() {
        let graph = Graph::from_metadata(&metadata()).unwrap();
        assert_eq!(
            graph.crates.iter().map(String::as_str).collect::<Vec<_>>(),
            ["kernel", "marketplace-api", "offers", "requests"]
        );
        assert_eq!(
            graph.mermaid(),
            "flowchart TD\n    kernel\n    marketplace_api[\"marketplace-api\"]\n    offers\n    \
             requests\n    marketplace_api --> offers\n    marketplace_api --> requests\n    \
             offers --> kernel\n    offers --> requests\n    requests --> kernel\n"
        );
    }

    #[test]
    fn the_block_between_the_markers_is_found_and_a_change_is_shown() {
        let readme =
            format!("# A\n\n{START}\n```mermaid\nflowchart TD\n    a --> b\n```\n{END}\n\nafter\n");
        let block = between_markers(&readme).unwrap();
        assert_eq!(block, "```mermaid\nflowchart TD\n    a --> b\n```\n");
        let diff = line_diff(block, "```mermaid\nflowchart TD\n    a --> c\n```\n");
        assert_eq!(diff, "-    a --> b\n+    a --> c\n");
    }

    #[test]
    fn a_readme_without_both_markers_is_refused_with_the_way_out() {
        for readme in [
            String::from("# A\n"),
            format!("{START}\n"),
            format!("{END}\n{START}\n"),
            format!("{START}\n{START}\n{END}\n"),
        ] {
            let err = between_markers(&readme).unwrap_err();
            assert!(err.contains("cargo xtask graph --write"), "{err}");
        }
    }
}
