//! `cargo xtask`: the project's own tools (the cargo-xtask convention; the alias lives in
//! `.cargo/config.toml`).
//!
//! - `cargo xtask new-module <name>`: a new domain module that builds, is registered, has a
//!   migration and a passing black-box test, in one command (templates in `xtask/templates/`).
//! - `cargo xtask graph [--check | --write]`: the dependency graph of the workspace crates as
//!   Mermaid, from `cargo metadata`; `--check` compares it with README.md, `--write` updates it.
//! - `cargo xtask config [--check]`: the environment variables the configuration code reads,
//!   each with its row in docs/configuration.md; `--check` fails on any difference.
//! - `cargo xtask test [--postgres URL] [-- ARGS]`: README's test command: installs or starts
//!   what the tests need and this machine lacks, then runs the whole suite.

mod config;
mod edit;
mod graph;
mod new_module;
mod test;
mod workspace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "The marketplace's own tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a domain module: crate, registration, migration, routes, test.
    NewModule {
        /// The module's name: a snake_case identifier not used yet (e.g. `reviews`).
        name: String,
    },
    /// Print the crate dependency graph as Mermaid (normal dependencies between workspace crates).
    Graph {
        /// Fail when README.md's module graph differs from the code.
        #[arg(long, conflicts_with = "write")]
        check: bool,
        /// Rewrite README.md's module graph from the code.
        #[arg(long)]
        write: bool,
    },
    /// List the environment variables `apps/api/src/config.rs` reads and their rows in
    /// docs/configuration.md.
    Config {
        /// Fail when a variable the code reads has no row, or a row names one it does not read.
        #[arg(long)]
        check: bool,
    },
    /// Make this machine ready for the tests (Redis, Chromium, npm and Python packages), then
    /// run the whole suite.
    Test {
        /// Run on PostgreSQL: a server URL with a database the tests may create databases
        /// from (e.g. `postgres://postgres@127.0.0.1:5432/mk_ci`); SQLite when absent.
        #[arg(long)]
        postgres: Option<String>,
        /// Passed to `cargo test` (after `--`), e.g. `-- -p marketplace-tests --test suite -- mail::`.
        #[arg(last = true)]
        cargo_args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = workspace::root().and_then(|root| match cli.command {
        Command::NewModule { name } => new_module::run(&root, &name),
        Command::Graph { check, write } => {
            let mode = match (check, write) {
                (true, _) => graph::Mode::Check,
                (_, true) => graph::Mode::Write,
                _ => graph::Mode::Print,
            };
            graph::run(&root, mode)
        }
        Command::Test {
            postgres,
            cargo_args,
        } => test::run(&root, postgres, &cargo_args),
        Command::Config { check } => config::run(
            &root,
            if check {
                config::Mode::Check
            } else {
                config::Mode::Print
            },
        ),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
