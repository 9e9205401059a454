//! The main example: a dict that survives restarts. Run it twice and watch the count grow:
//!
//! ```sh
//! cargo run --example quickstart
//! cargo run --example quickstart
//! ```
//!
//! It keeps its dict in `target/quickstart-dict` (or the directory given as first argument).

use persistdict::PersistDict;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone)]
struct Visit {
    run: u64,
    unix_seconds: u64,
}

fn main() -> persistdict::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/quickstart-dict".into());
    let visits: PersistDict<String, Visit> = PersistDict::open(&dir)?;

    let run = visits.len()? + 1;
    let unix_seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    visits.insert(format!("run-{run}"), Visit { run, unix_seconds })?;

    println!("run {run} of this program on {}", visits.path().display());
    for entry in &visits {
        let (key, visit) = entry?;
        println!("  {key}: {visit:?}");
    }
    if run == 1 {
        println!("run it again: the entries above will still be there");
    }
    Ok(())
}
