// Serde field attributes that have no meaning for a field stored as its own entry.
use persistdict::persistent;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Default)]
struct Inner {
    a: u32,
}

#[persistent(path = "state/app")]
#[derive(Serialize, Deserialize, Default)]
struct Config {
    #[serde(flatten)]
    inner: Inner,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(rename = "stored")]
    #[persistent(rename = "other")]
    port: u16,
}

fn main() {}
