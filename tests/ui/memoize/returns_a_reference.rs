use persistdict::memoize;

#[memoize(path = "cache/names")]
fn name(id: u32) -> &'static str {
    if id == 0 { "zero" } else { "other" }
}

fn main() {
    let _ = name(0);
}
