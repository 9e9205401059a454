use persistdict::persistent;
use serde::{Deserialize, Serialize};

#[persistent(path = "state/app")]
#[derive(Serialize, Deserialize)]
struct Config {
    #[persistent(default = 8080)]
    port: u16,
    host: String,
}

fn main() {}
