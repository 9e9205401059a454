use persistdict::memoize;

#[memoize(path = "cache/add")]
fn add((a, b): (u32, u32)) -> u32 {
    a + b
}

fn main() {
    let _ = add((1, 2));
}
