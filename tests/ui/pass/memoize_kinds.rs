//! Memoized functions of every supported shape compile without warnings.

#![deny(missing_docs, warnings)]

use persistdict::memoize;

/// Plain values are stored.
#[memoize(path = "ui-memo", expire_days = 7, version = 2)]
pub fn square(x: u64) -> u64 {
    x * x
}

/// Only `Ok` is stored.
#[memoize(path = "ui-memo", invalidate_on_change = false)]
pub fn parse(text: &str) -> Result<u32, std::num::ParseIntError> {
    text.parse()
}

/// Only `Some` is stored.
#[memoize(path = "ui-memo", durability = "immediate", cache = 0)]
pub fn first(words: &[String]) -> Option<String> {
    words.first().cloned()
}

/// `io::Result` counts as a `Result`.
#[memoize(path = "ui-memo", ignore(verbose))]
pub fn size(path: &str, verbose: bool) -> std::io::Result<u64> {
    if verbose {
        println!("{path}");
    }
    Ok(std::fs::metadata(path)?.len())
}

/// Async functions.
#[memoize(path = "ui-memo", store_all = true)]
pub async fn fetch(id: u32) -> Result<String, String> {
    Ok(id.to_string())
}

/// A type with memoized associated functions.
pub struct Model;

impl Model {
    /// A method that ignores `self`.
    #[memoize(path = "ui-memo", ignore(self))]
    pub fn embed(&self, text: &str) -> Vec<f32> {
        text.bytes().map(f32::from).collect()
    }

    /// An associated function.
    #[memoize(path = "ui-memo")]
    pub fn tokens(text: &str) -> usize {
        text.split_whitespace().count()
    }
}

fn main() {
    let _ = (square, parse, first, size, fetch, Model::embed, Model::tokens);
    let _ = (square_invalidate, parse_memo, Model::embed_invalidate, Model::tokens_memo);
}
