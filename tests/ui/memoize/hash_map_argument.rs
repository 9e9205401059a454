use std::collections::HashMap;

use persistdict::memoize;

#[memoize(path = "cache/total")]
fn total(prices: &HashMap<String, u32>) -> u32 {
    prices.values().sum()
}

fn main() {
    let _ = total(&HashMap::new());
}
