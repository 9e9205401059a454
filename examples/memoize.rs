//! A slow function made instant on the second run, with `#[memoize]`. Run it twice:
//!
//! ```sh
//! cargo run --example memoize
//! cargo run --example memoize
//! ```
//!
//! The first run computes each result (about 0.3 s apiece) and stores it in `example-memo`,
//! under the platform's cache directory or `$PERSISTDICT_DIR` (the program prints where); the
//! second run reads them back in microseconds. Edit the body of
//! `slow_embedding` and the results are computed afresh: the function's code is part of its
//! namespace.

use std::time::{Duration, Instant};

use persistdict::memoize;

/// Stands for an expensive call: a model, an HTTP request, a heavy computation.
#[memoize(path = "example-memo", expire_days = 30)]
fn slow_embedding(text: &str) -> Result<Vec<f32>, String> {
    if text.is_empty() {
        return Err("empty text".into()); // errors are returned, never stored
    }
    std::thread::sleep(Duration::from_millis(300));
    Ok(text.bytes().map(|b| f32::from(b) / 255.0).collect())
}

fn main() {
    let texts = ["persistent", "typed", "shared by processes"];
    for round in 1..=2 {
        let start = Instant::now();
        for text in texts {
            let embedding = slow_embedding(text).expect("non-empty text");
            assert_eq!(embedding.len(), text.len());
        }
        println!(
            "call round {round}: {} calls in {:.1?}",
            texts.len(),
            start.elapsed()
        );
    }
    assert!(slow_embedding("").is_err());
    if let Some(dict) = slow_embedding_memo().dict() {
        let stats = dict.stats().expect("stats");
        println!(
            "{} results stored in {}; cache hits {}",
            stats.len,
            dict.path().display(),
            stats.hits
        );
    }
    println!("run me again: every call is a hit now, even the first round");
}
