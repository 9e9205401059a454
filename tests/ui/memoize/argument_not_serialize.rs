use persistdict::memoize;

struct Config {
    scale: u64,
}

#[memoize(path = "cache/scaled")]
fn scaled(x: u64, config: &Config) -> u64 {
    x * config.scale
}

fn main() {
    let _ = scaled(2, &Config { scale: 3 });
}
