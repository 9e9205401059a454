use persistdict::persistent;

#[derive(Default)]
struct Handle;

#[persistent(path = "state/app")]
#[derive(Default)]
struct AppState {
    counter: u64,
    handle: Handle,
}

fn main() {}
