use persistdict::persistent;
use serde::{Deserialize, Serialize};

#[persistent(path = "state/app")]
#[derive(Serialize, Deserialize)]
struct Config {
    #[persistent(defualt = 8080)]
    port: u16,
}

fn main() {}
