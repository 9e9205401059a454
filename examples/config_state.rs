//! An application's state that survives restarts, with `#[persistent]`. Run it twice: the
//! second run sees what the first one stored.
//!
//! ```sh
//! cargo run --example config_state
//! cargo run --example config_state -- grace
//! ```
//!
//! The state lives in `example-state` (the attribute's `path`) under the platform's data
//! directory, in a folder named after this package, or under `$PERSISTDICT_DIR` when set (this
//! workspace sets it to `target/persistdict-dir`); the program prints where. The first
//! argument, if any, is the user name to record.

use persistdict::persistent;
use serde::{Deserialize, Serialize};

/// What the app remembers between runs. The struct stays a plain data type; the attribute
/// adds the handle type `AppStateStore`.
#[persistent(path = "example-state")]
#[derive(Serialize, Deserialize, Default, Debug)]
struct AppState {
    /// How many times the app ran.
    runs: u64,
    /// The last user who ran it.
    last_user: Option<String>,
    /// The last five users, most recent last.
    recent: Vec<String>,
    /// A setting with its own default, used until someone sets it.
    #[persistent(default = String::from("light"))]
    theme: String,
}

fn main() -> persistdict::Result<()> {
    let user = std::env::args().nth(1).unwrap_or_else(|| "ada".to_string());
    let state: AppStateStore = AppState::open()?;

    let before = state.load()?;
    println!("stored before this run: {before:?}");

    // One field, atomically (several processes can run this at once).
    let runs = state.update_runs(|n| *n += 1)?;
    // Several fields in one transaction.
    state.modify(|s| {
        s.last_user = Some(user.clone());
        s.recent.push(user.clone());
        let excess = s.recent.len().saturating_sub(5);
        s.recent.drain(..excess);
    })?;
    if runs == 3 {
        state.set_theme("dark".into())?;
    }

    println!(
        "run {runs}: hello {user}; recent users {:?}; theme {}",
        state.recent()?,
        state.theme()?
    );
    println!("state is in {}", state.path().display());
    Ok(())
}
