use persistdict::persistent;

#[persistent(path = "state/pair")]
struct Pair(u32, u32);

fn main() {
    let _ = Pair(1, 2);
}
