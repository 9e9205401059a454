use persistdict::memoize;

#[memoize(path = "cache/square", version = 1, version = 2)]
fn square(x: u64) -> u64 {
    x * x
}

fn main() {
    let _ = square(2);
}
