// A transaction closure whose error type has no `From<persistdict::Error>`.
use persistdict::PersistDict;

fn main() {
    let d: PersistDict<String, u32> = PersistDict::open("unused").unwrap();
    let _ = d.transaction(|tx| {
        tx.insert("a".into(), 1).map_err(|e| e.to_string())?;
        Err::<(), String>("no".to_string())
    });
}
