//! A persistent struct with every option, used through its handle.

#![deny(missing_docs)]

use persistdict::persistent;
use serde::{Deserialize, Serialize};

/// The application's state.
#[persistent(
    path = "~/.local/state/ui-pass",
    expire_days = 30,
    name = "state",
    cache = 16,
    codec = "persistdict::Json",
    durability = "eventual",
    crate = "persistdict",
    handle = "StateHandle"
)]
#[derive(Serialize, Deserialize, Default)]
pub struct AppState {
    /// How many times the app ran.
    pub counter: u64,
    /// Who used it last.
    #[persistent(rename = "user")]
    pub last_user: Option<String>,
    #[persistent(default = 3)]
    retries: u8,
}

fn main() {
    let dir = std::env::temp_dir().join(format!("persistdict-ui-pass-{}", std::process::id()));
    let s: StateHandle = AppState::open_at(&dir).unwrap();
    s.update_counter(|c| *c += 1).unwrap();
    assert_eq!(s.retries().unwrap(), 3);
    assert_eq!(s.load().unwrap().counter, 1);
    assert_eq!(StateHandle::PATH, "~/.local/state/ui-pass");
    drop(s);
    std::fs::remove_dir_all(dir).unwrap();
}
