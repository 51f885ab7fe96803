//! Line edits anchored on what is already there: "add this line after the last line of that
//! kind, in that part of the file". An edit whose line is present already changes nothing (so
//! running it twice is harmless), and one whose anchor is gone fails with a message that says
//! what to add by hand instead of guessing a place.

use crate::workspace::Result;

/// The part of a file an edit looks in.
#[derive(Debug, Clone, Copy)]
pub enum Region {
    /// A TOML table: from its `[header]` line to the next header.
    TomlTable(&'static str),
    /// A Rust function: from the line holding `signature` to the first `}` at its indentation.
    RustFn(&'static str),
    /// The whole file.
    Whole,
}

/// One line to add after the last line that `is_anchor` accepts, with that line's indentation.
pub struct LineEdit {
    /// The file, as the developer knows it (for messages).
    pub file: &'static str,
    pub region: Region,
    /// What the anchor lines are, for the message when there is none.
    pub anchor: &'static str,
    pub is_anchor: Box<dyn Fn(&str) -> bool>,
    /// The line to add, without indentation or line break.
    pub line: String,
}

impl LineEdit {
    /// `text` with the line added; `text` itself when the line is there already.
    pub fn apply(&self, text: &str) -> Result<String> {
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let (from, to) = self.region_lines(&lines)?;
        let wanted = self.line.trim();
        if lines[from..to].iter().any(|l| l.trim() == wanted) {
            return Ok(text.to_owned());
        }
        let anchor = (from..to)
            .rev()
            .find(|&i| (self.is_anchor)(lines[i].trim_end()))
            .ok_or_else(|| {
                format!(
                    "{}: cannot find {} (the line `{wanted}` goes after the last of them); \
                     add it by hand or restore the anchor, then run again",
                    self.file, self.anchor
                )
            })?;
        let indent: String = lines[anchor]
            .chars()
            .take_while(|c| c.is_whitespace() && *c != '\n')
            .collect();
        let mut out = String::with_capacity(text.len() + wanted.len() + 8);
        for (i, line) in lines.iter().enumerate() {
            out.push_str(line);
            if i == anchor {
                if !line.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str(&indent);
                out.push_str(wanted);
                out.push('\n');
            }
        }
        Ok(out)
    }

    /// The line range `[from, to)` of the region.
    fn region_lines(&self, lines: &[&str]) -> Result<(usize, usize)> {
        match self.region {
            Region::Whole => Ok((0, lines.len())),
            Region::TomlTable(header) => {
                let start = lines
                    .iter()
                    .position(|l| l.trim() == header)
                    .ok_or_else(|| format!("{}: no `{header}` table", self.file))?;
                let end = lines[start + 1..]
                    .iter()
                    .position(|l| l.trim_start().starts_with('['))
                    .map_or(lines.len(), |n| start + 1 + n);
                Ok((start + 1, end))
            }
            Region::RustFn(signature) => {
                let start = lines
                    .iter()
                    .position(|l| l.contains(signature))
                    .ok_or_else(|| format!("{}: no function `{signature}`", self.file))?;
                let indent = lines[start].len() - lines[start].trim_start().len();
                let closing = format!("{}}}", &lines[start][..indent]);
                let end = lines[start + 1..]
                    .iter()
                    .position(|l| l.trim_end() == closing)
                    .map(|n| start + 1 + n)
                    .ok_or_else(|| {
                        format!("{}: cannot find the end of `{signature}`", self.file)
                    })?;
                Ok((start + 1, end))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARGO: &str = "[workspace.dependencies]\n# internal crates\nkernel = { path = \"modules/kernel\" }\nauth = { path = \"modules/auth\" }\nconnections = { path = \"connections\" }\n\ntokio = \"1\"\n\n[profile.dev]\ndebug = 1\n";

    fn module_dep(line: &str) -> bool {
        line.contains("path = \"modules/")
    }

    fn workspace_dep(name: &str) -> LineEdit {
        LineEdit {
            file: "Cargo.toml",
            region: Region::TomlTable("[workspace.dependencies]"),
            anchor: "a `<crate> = { path = \"modules/<crate>\" }` line",
            is_anchor: Box::new(module_dep),
            line: format!("{name} = {{ path = \"modules/{name}\" }}"),
        }
    }

    #[test]
    fn a_line_goes_after_the_last_anchor_and_a_second_run_changes_nothing() {
        let once = workspace_dep("reviews").apply(CARGO).unwrap();
        assert_eq!(
            once,
            CARGO.replace(
                "auth = { path = \"modules/auth\" }\n",
                "auth = { path = \"modules/auth\" }\nreviews = { path = \"modules/reviews\" }\n"
            )
        );
        assert_eq!(workspace_dep("reviews").apply(&once).unwrap(), once);
    }

    #[test]
    fn a_missing_anchor_or_table_is_an_error_that_names_the_line() {
        let err = workspace_dep("reviews")
            .apply("[workspace.dependencies]\ntokio = \"1\"\n")
            .unwrap_err();
        assert!(
            err.contains("reviews = { path = \"modules/reviews\" }"),
            "{err}"
        );
        assert!(err.contains("Cargo.toml"), "{err}");
        let err = workspace_dep("reviews").apply("[package]\n").unwrap_err();
        assert!(err.contains("no `[workspace.dependencies]` table"), "{err}");
    }

    #[test]
    fn the_anchor_is_looked_for_only_inside_the_function_and_indentation_is_kept() {
        let src = "fn other() {\n    vec![Box::new(a::A)]\n}\n\npub fn modules() -> V {\n    vec![\n        Box::new(auth::AuthModule),\n        Box::new(connections::C),\n    ]\n}\n\nfn after() {\n    Box::new(b::B);\n}\n";
        let edit = LineEdit {
            file: "lib.rs",
            region: Region::RustFn("pub fn modules("),
            anchor: "a module line",
            is_anchor: Box::new(|l: &str| l.trim_start().starts_with("Box::new(auth::")),
            line: "Box::new(reviews::ReviewsModule),".into(),
        };
        let out = edit.apply(src).unwrap();
        assert!(out.contains(
            "        Box::new(auth::AuthModule),\n        Box::new(reviews::ReviewsModule),\n        Box::new(connections::C),\n"
        ), "{out}");
        let none = LineEdit {
            is_anchor: Box::new(|l: &str| l.trim_start().starts_with("Box::new(b::")),
            ..edit
        };
        assert!(none.apply(src).is_err());
    }
}
