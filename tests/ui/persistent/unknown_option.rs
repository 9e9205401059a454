use persistdict::persistent;
use serde::{Deserialize, Serialize};

#[persistent(path = "state/app", expire_day = 30)]
#[derive(Serialize, Deserialize, Default)]
struct AppState {
    counter: u64,
}

fn main() {}
