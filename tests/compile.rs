//! What the macros accept and how they explain what they refuse: each case under `tests/ui/`
//! is compiled, and the errors are compared with the `.stderr` snapshot next to it.

#[test]
fn macros_accept_the_pass_cases_and_point_at_each_mistake() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/persistent/*.rs");
    t.compile_fail("tests/ui/memoize/*.rs");
    t.compile_fail("tests/ui/dict/*.rs");
}
