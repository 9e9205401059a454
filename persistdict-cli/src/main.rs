//! `persistdict`: look inside any persistdict dict, `#[persistent]` store or `#[memoize]`
//! store, check it, expire it, compact it, export and import it, without the program that
//! made it.
//!
//! Exit codes: 0 when the command did its job and found nothing wrong; 1 when `check` found
//! problems, or the command failed (the message, on standard error, names the path and the
//! cause); 2 for a usage error.

mod commands;
mod shaped;
mod transfer;
mod view;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

/// Look inside persistdict dicts: list, show, check, expire, compact, export, import.
///
/// Every command takes the dict's directory first: the one a program opened with
/// `PersistDict::open(dir)`, or where `#[persistent]` and `#[memoize]` keep their stores
/// (`$PERSISTDICT_DIR/<package>/<path>`, `~/.local/share/<package>/<path>` and
/// `~/.cache/<package>/<path>` on Linux). Commands that only read never write to the dict:
/// no access times, no background work. Commands that write say so.
///
/// Exit codes: 0 fine; 1 problems found (`check`) or the command failed, with a one-line
/// message on standard error; 2 usage error.
#[derive(Debug, Parser)]
#[command(name = "persistdict", version, about, long_about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// The doc comments are the commands' `--help`, read in a terminal: no Markdown.
#[allow(clippy::doc_markdown)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Entries, sizes, settings, types, access times, hashed keys, quarantine, readers.
    ///
    /// Example: persistdict stats ~/.cache/myapp/embeddings
    Stats {
        /// The dict's directory.
        dir: PathBuf,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Keys in insertion order, with their sizes and times.
    ///
    /// Example: persistdict ls data/docs --prefix user: --idle 30d --json
    Ls {
        /// The dict's directory.
        dir: PathBuf,
        /// Only keys whose text (as shown) starts with this.
        #[arg(long)]
        prefix: Option<String>,
        /// Only entries not accessed for at least this long (`30d`, `12h`, `90s`).
        #[arg(long, value_parser = humantime::parse_duration)]
        idle: Option<Duration>,
        /// Only entries created at least this long ago.
        #[arg(long, value_parser = humantime::parse_duration)]
        older: Option<Duration>,
        /// At most this many entries.
        #[arg(long)]
        limit: Option<u64>,
        /// One JSON object a line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The value of one key, decoded where the dict's settings allow.
    ///
    /// A string key is given as it is; other keys as JSON (`7`, `[1, "a"]`); any key as the
    /// hex of its stored bytes with --hex (as `ls` shows keys it can't decode).
    ///
    /// Example: persistdict get data/scores ada
    Get {
        #[command(flatten)]
        at: KeyArgs,
        /// The value as JSON only (an error if it can't be decoded).
        #[arg(long)]
        json: bool,
    },
    /// Creation time, access time and size of one key.
    ///
    /// Example: persistdict meta data/scores ada
    Meta {
        #[command(flatten)]
        at: KeyArgs,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Removes one key. Writes to the dict.
    ///
    /// Example: persistdict rm data/scores ada
    Rm {
        #[command(flatten)]
        at: KeyArgs,
    },
    /// The integrity check: unreadable records, times out of order, insertion order,
    /// values that don't read as their recorded type. Exit code 1 when it finds anything.
    ///
    /// Without --repair it only reads. With --repair (which writes to the dict) unreadable
    /// records are moved to the quarantine (never deleted) and times and order are repaired;
    /// values that don't decode are reported and kept.
    ///
    /// Example: persistdict check data/docs --repair
    Check {
        /// The dict's directory.
        dir: PathBuf,
        /// Quarantine and repair what is found. Writes to the dict.
        #[arg(long)]
        repair: bool,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Removes entries past their expiry now: idle longer than the dict's `expire_days`
    /// (as last opened for writing), or than --idle. Writes to the dict.
    ///
    /// Example: persistdict expire ~/.cache/myapp/embed --idle 14d
    Expire {
        /// The dict's directory.
        dir: PathBuf,
        /// Remove entries not accessed for this long instead (`14d`, `6h`).
        #[arg(long, value_parser = humantime::parse_duration)]
        idle: Option<Duration>,
        /// Count what would be removed; remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Rewrites the data file without free pages, in place. Refused while any process has
    /// the dict open; a process that opens it meanwhile waits. Writes to the dict.
    ///
    /// Example: persistdict compact ~/.cache/myapp/embed
    Compact {
        /// The dict's directory.
        dir: PathBuf,
    },
    /// Writes every entry as JSON Lines, loss-free: a first line with the dict's settings
    /// and types, then one line an entry (key, value, type, times). Values and keys are JSON
    /// where that gives back the very bytes stored, else base64.
    ///
    /// Example: persistdict export data/docs -o docs.jsonl
    Export {
        /// The dict's directory.
        dir: PathBuf,
        /// The file to write (standard output if not given).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Reads an export into a dict: a new directory gets a dict made with the exported
    /// settings, an existing dict must have the same ones. Entries keep their times; an
    /// existing key is overwritten. Writes to the dict.
    ///
    /// Example: persistdict import restored/docs docs.jsonl
    Import {
        /// The dict's directory.
        dir: PathBuf,
        /// The export to read (standard input if not given).
        input: Option<PathBuf>,
    },
    /// The functions of a `#[memoize]` store: entries, bytes and access times per function;
    /// or, with --clear, removes one function's results (which writes to the store).
    ///
    /// Example: persistdict memo ~/.cache/myapp/embed --clear myapp::embed
    Memo {
        /// The store's directory.
        dir: PathBuf,
        /// Remove every result of this function (its path, as listed), of all versions.
        #[arg(long, value_name = "FUNCTION")]
        clear: Option<String>,
        /// One JSON object a line instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// A dict and one of its keys.
#[derive(Debug, clap::Args)]
struct KeyArgs {
    /// The dict's directory.
    dir: PathBuf,
    /// The key: a string key as it is, another key as JSON.
    key: String,
    /// The key is the hex of its stored bytes.
    #[arg(long)]
    hex: bool,
}

/// What a command found: fine, or problems worth exit code 1.
pub(crate) enum Outcome {
    Fine,
    Problems,
}

/// A command's failure: one line on standard error.
pub(crate) type Failure = String;

fn main() -> ExitCode {
    // Output cut short by a closed pipe (`persistdict ls DIR | head`) ends the process
    // quietly, as for other Unix tools; Rust's runtime ignores SIGPIPE, which would turn
    // the closed pipe into an error on every later line.
    #[cfg(unix)]
    // SAFETY: restores the default disposition of one signal, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    match commands::run(cli.command) {
        Ok(Outcome::Fine) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(1),
        Err(failure) => {
            eprintln!("persistdict: {failure}");
            ExitCode::from(1)
        }
    }
}

/// A progress bar on standard error for `len` steps (`None`: unknown), drawn only when
/// standard error is a terminal.
pub(crate) fn progress(len: Option<u64>, what: &'static str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = len.map_or_else(ProgressBar::new_spinner, ProgressBar::new);
    let template = if len.is_some() {
        "{msg} [{bar:40}] {pos}/{len} ({eta})"
    } else {
        "{msg} {spinner} {pos}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what);
    bar
}

/// A time as RFC 3339, to the second.
pub(crate) fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Milliseconds since the Unix epoch.
pub(crate) fn ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Bytes for people: `12.3 MiB`.
pub(crate) fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    // Shown to one decimal: the precision lost past 2^52 bytes never shows.
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
