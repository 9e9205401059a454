// A body that opens with inner attributes.
use persistdict::memoize;

#[memoize(path = "ui-memo-inner")]
fn quiet(x: u32) -> u32 {
    #![allow(unused_variables)]
    let unused = 1;
    x + 1
}

fn main() {
    assert_eq!(quiet(1), 2);
}
