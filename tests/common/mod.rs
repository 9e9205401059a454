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

/// A child process whose standard output is read line by line as it comes.
pub struct LineChild {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl LineChild {
    /// Starts the child entry point `name` (see [`spawn_child`]).
    pub fn spawn(name: &str, dir: &Path, env: &[(&str, String)]) -> Self {
        use std::io::BufRead;
        let mut child = spawn_child(name, dir, env);
        let stdout = child.stdout.take().expect("piped stdout");
        let (send, lines) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        LineChild {
            child,
            lines,
            seen: Vec::new(),
            reader: Some(reader),
        }
    }

    /// Waits until a line contains `marker`; panics after `timeout` or if the child exits.
    pub fn wait_for(&mut self, marker: &str, timeout: std::time::Duration) {
        let deadline = std::time::Instant::now() + timeout;
        if self.seen.iter().any(|l| l.contains(marker)) {
            return;
        }
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(marker);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(e) => panic!(
                    "no line with {marker:?} from the child ({e}); it printed:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Kills the child with SIGKILL and returns every line it printed.
    pub fn kill(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.collect()
    }

    /// Waits for the child to exit, panics if it failed, and returns every line it printed.
    pub fn finish(mut self) -> Vec<String> {
        let status = self.child.wait().expect("the child process runs");
        let lines = self.collect();
        assert!(
            status.success(),
            "child failed with {status}; stdout:\n{}",
            lines.join("\n")
        );
        lines
    }

    fn collect(&mut self) -> Vec<String> {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.seen.extend(self.lines.try_iter());
        std::mem::take(&mut self.seen)
    }
}

/// The text after `marker` on every line that has it (the test harness may print its own
/// words before a child's first line).
pub fn after<'a>(lines: &'a [String], marker: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    lines
        .iter()
        .filter_map(move |l| l.split_once(marker).map(|(_, rest)| rest))
}

/// Whether this process runs as root, for which file permissions don't apply.
pub fn is_root() -> bool {
    // SAFETY: a plain system call.
    unsafe { libc::geteuid() == 0 }
}

/// Gives up root for the user `nobody` (65534), in a child process that tests permissions.
pub fn become_nobody() {
    // SAFETY: plain system calls; the group first, while still allowed.
    assert_eq!(unsafe { libc::setgid(65_534) }, 0, "setgid");
    assert_eq!(unsafe { libc::setuid(65_534) }, 0, "setuid");
}

/// Sets the mode bits of `path`.
pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Where an attribute's relative `path` lives in these tests: under `$PERSISTDICT_DIR` (set by
/// the workspace's `.cargo/config.toml`), in the folder of this package.
pub fn attribute_dir(path: &str) -> PathBuf {
    let base = std::env::var_os("PERSISTDICT_DIR")
        .expect("PERSISTDICT_DIR is set for the tests by .cargo/config.toml");
    PathBuf::from(base).join(env!("CARGO_PKG_NAME")).join(path)
}

/// Runs the child entry point `name` in `cwd` with `env` and returns, for each of `fields`,
/// what it printed after that marker (`"dir: "`); panics if the child failed or printed one
/// of them nowhere.
pub fn child_fields<const N: usize>(
    name: &str,
    cwd: &Path,
    env: &[(&str, String)],
    fields: [&str; N],
) -> [String; N] {
    let out = finish_child(spawn_child(name, cwd, env));
    fields.map(|field| {
        // The harness prints the test's name on the line of the child's first output.
        out.lines()
            .find_map(|l| l.split_once(field).map(|(_, rest)| rest.to_owned()))
            .unwrap_or_else(|| panic!("the child printed no {field:?}:\n{out}"))
    })
}
