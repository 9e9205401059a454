use persistdict::memoize;

#[memoize(path = "cache/double")]
fn double<T: Clone>(x: T) -> (T, T) {
    (x.clone(), x)
}

fn main() {
    let _ = double(2);
}
