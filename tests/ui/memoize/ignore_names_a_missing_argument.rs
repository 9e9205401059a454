use persistdict::memoize;

#[memoize(path = "cache/fetch", ignore(verbos))]
fn fetch(url: &str, verbose: bool) -> usize {
    if verbose {
        println!("{url}");
    }
    url.len()
}

fn main() {
    let _ = fetch("a", true);
}
