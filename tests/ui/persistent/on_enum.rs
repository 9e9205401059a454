use persistdict::persistent;

#[persistent(path = "state/app")]
enum Mode {
    Light,
    Dark,
}

fn main() {
    let _ = (Mode::Light, Mode::Dark);
}
