use anyhow::Result;
use berth_runtime::container;

use super::Ctx;
use crate::cli::{ListArgs, ListFormat};

pub fn run(a: ListArgs, ctx: &Ctx) -> Result<i32> {
    let all = container::list(&ctx.root)?;
    if a.quiet {
        for st in &all {
            println!("{}", st.id);
        }
        return Ok(0);
    }
    match a.format {
        ListFormat::Json => {
            let v: Vec<_> = all.iter().map(|s| s.oci()).collect();
            println!("{}", serde_json::to_string(&v)?);
        }
        ListFormat::Table => {
            println!(
                "{:<12} {:<10} {:<10} {:<40} {:<31} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for st in &all {
                let o = st.oci();
                println!(
                    "{:<12} {:<10} {:<10} {:<40} {:<31} root",
                    o.id,
                    o.pid,
                    o.status,
                    o.bundle.display(),
                    o.created
                );
            }
        }
    }
    Ok(0)
}
