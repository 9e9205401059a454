use persistdict::memoize;

#[memoize(path = "cache/broken")]
fn broken(x: u32) -> u32 {
    let y = x +;
    y
}

fn main() {
    let _ = broken(1);
}
