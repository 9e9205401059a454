//! Helpers shared by the behaviour tests.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different part

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The environment variable that hands a child process its working directory.
pub const CHILD_DIR: &str = "PERSISTDICT_TEST_CHILD_DIR";

/// A fresh temporary directory, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

/// Starts this test binary again, running only the ignored test `name` (a child entry point)
/// with `dir` in [`CHILD_DIR`] and the extra environment `env`.
pub fn spawn_child(name: &str, dir: &Path, env: &[(&str, String)]) -> Child {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = Command::new(exe);
    cmd.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_DIR, dir)
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("the child process starts")
}

/// Waits for a child and returns its standard output; panics if it failed.
pub fn finish_child(child: Child) -> String {
    let out = child.wait_with_output().expect("the child process runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child failed with {}; stdout:\n{stdout}",
        out.status
    );
    stdout
}

/// The directory a child process was handed, or `None` when the test runs as a normal test
/// (child entry points are `#[ignore]`d and do nothing then).
pub fn child_dir() -> Option<PathBuf> {
    std::env::var_os(CHILD_DIR).map(PathBuf::from)
}
