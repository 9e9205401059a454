//! Persistent map types: an alias and a newtype.

#![deny(missing_docs)]

use std::collections::{BTreeMap, HashMap};

use persistdict::persistent;

/// Embeddings by text.
#[persistent(path = "cache/embeddings", expire_days = 30)]
pub type Embeddings = HashMap<String, Vec<f32>>;

/// Names by id.
#[persistent(path = "cache/names")]
pub struct Names(BTreeMap<u32, String>);

fn main() {
    let dir = std::env::temp_dir().join(format!("persistdict-ui-map-{}", std::process::id()));
    let e = Embeddings::open_at(dir.join("e")).unwrap();
    e.insert("a".into(), vec![1.0]).unwrap();
    let n = Names::open_at(dir.join("n")).unwrap();
    assert!(n.is_empty().unwrap());
    drop((e, n));
    std::fs::remove_dir_all(dir).unwrap();
}
