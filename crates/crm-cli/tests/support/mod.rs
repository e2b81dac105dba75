//! Running `crm` as a process on a temporary SQLite file.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// A temporary folder holding the database.
pub struct Shell {
    pub dir: tempfile::TempDir,
}

impl Shell {
    pub fn new() -> Self {
        Shell {
            dir: tempfile::tempdir().expect("a temporary folder"),
        }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("crm.db")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `crm ARGS` on this folder's database, stdin closed.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_crm"))
            .arg("--database")
            .arg(self.db())
            .args(args)
            .env_remove("CRM_DATABASE")
            .env_remove("CRM_TENANT")
            .stdin(Stdio::null())
            .current_dir(self.dir.path())
            .output()
            .expect("crm runs")
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "crm {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8")
    }

    /// Runs and expects failure with exactly one line on stderr; returns that line.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(1), "crm {args:?} should fail");
        let err = String::from_utf8(out.stderr).expect("UTF-8");
        assert_eq!(err.lines().count(), 1, "one line on stderr: {err:?}");
        assert!(out.stdout.is_empty(), "nothing on stdout");
        err
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let text = self.ok(args);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
    }

    /// A shell with the demo company loaded.
    pub fn demo() -> Self {
        let shell = Shell::new();
        let said = shell.ok(&["demo", "--customers", "120"]);
        assert!(said.contains("120 customers"), "{said}");
        shell
    }
}

pub fn rows(v: &Value) -> &Vec<Value> {
    v.as_array().expect("an array of rows")
}
