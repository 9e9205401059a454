use persistdict::memoize;

#[memoize(path = "cache/total")]
fn total(items: impl IntoIterator<Item = u64>) -> u64 {
    items.into_iter().sum()
}

fn main() {
    let _ = total([1, 2]);
}
