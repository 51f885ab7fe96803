//! Where the workspace is and what cargo says about it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Every failure of a task is a message for the developer.
pub type Result<T, E = String> = std::result::Result<T, E>;

/// The standard output of `cargo <args>` run in `dir`, with the cargo that runs this task
/// (`cargo xtask` sets `CARGO`), else the one on `PATH`.
fn cargo(dir: Option<&Path>, args: &[&str]) -> Result<Vec<u8>> {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let what = format!("cargo {}", args.join(" "));
    let out = command
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `{what}`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`{what}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout)
}

/// The workspace this command was run in (asked of cargo at run time, never baked in at
/// build time: the same binary may serve a copy of the tree).
pub fn root() -> Result<PathBuf> {
    let out = cargo(
        None,
        &["locate-project", "--workspace", "--message-format", "plain"],
    )?;
    let manifest = PathBuf::from(String::from_utf8_lossy(&out).trim());
    manifest
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("{} has no parent folder", manifest.display()))
}

/// `cargo metadata --format-version 1 --no-deps` of the workspace at `root`.
pub fn metadata(root: &Path) -> Result<serde_json::Value> {
    let out = cargo(
        Some(root),
        &["metadata", "--format-version", "1", "--no-deps"],
    )?;
    serde_json::from_slice(&out)
        .map_err(|e| format!("cannot read the output of `cargo metadata`: {e}"))
}

pub fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

pub fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
