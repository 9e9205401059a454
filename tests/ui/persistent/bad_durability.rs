use persistdict::persistent;
use serde::{Deserialize, Serialize};

#[persistent(path = "state/app", durability = "sometimes")]
#[derive(Serialize, Deserialize, Default)]
struct AppState {
    counter: u64,
}

fn main() {}
