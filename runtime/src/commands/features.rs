use anyhow::Result;

pub fn run() -> Result<i32> {
    println!(
        "{}",
        serde_json::to_string_pretty(&berth_runtime::features::features())?
    );
    Ok(0)
}
