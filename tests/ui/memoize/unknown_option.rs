use persistdict::memoize;

#[memoize(path = "cache/square", expire = 30)]
fn square(x: u64) -> u64 {
    x * x
}

fn main() {
    let _ = square(2);
}
