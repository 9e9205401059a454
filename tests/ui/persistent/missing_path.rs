use persistdict::persistent;
use serde::{Deserialize, Serialize};

#[persistent(expire_days = 30)]
#[derive(Serialize, Deserialize, Default)]
struct AppState {
    counter: u64,
}

fn main() {}
