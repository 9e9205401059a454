use persistdict::memoize;

#[derive(Clone)]
struct Report {
    lines: Vec<String>,
}

#[memoize(path = "cache/report")]
fn report(n: u32) -> Report {
    Report {
        lines: vec![n.to_string()],
    }
}

fn main() {
    let _ = report(2).lines;
}
