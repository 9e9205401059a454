use persistdict::persistent;
use serde::{Deserialize, Serialize};

#[persistent(path = "state/app")]
#[derive(Serialize, Deserialize, Default)]
struct AppState<T> {
    value: T,
}

fn main() {}
