use persistdict::persistent;

#[persistent(path = "cache/list")]
type List = Vec<u32>;

fn main() {
    let _: List = Vec::new();
}
