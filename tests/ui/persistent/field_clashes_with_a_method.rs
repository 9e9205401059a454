use persistdict::persistent;
use serde::{Deserialize, Serialize};

#[persistent(path = "state/app")]
#[derive(Serialize, Deserialize, Default)]
struct AppState {
    load: f64,
}

fn main() {}
