use std::collections::HashMap;

use persistdict::persistent;

#[persistent(path = "cache/words")]
#[derive(Default)]
struct Words(HashMap<String, u32>);

fn main() {}
