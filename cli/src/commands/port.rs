//! `berth port CONTAINER [PRIVATE_PORT[/PROTO]]`: published ports, as docker
//! prints them (`80/tcp -> 127.0.0.1:8080`).

use std::process::ExitCode;

use anyhow::Context as _;

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub container: String,
    /// Only this container port (`80` or `80/udp`)
    pub port: Option<String>,
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let v = ctx
        .engine()?
        .inspect(&a.container)
        .with_context(|| format!("port {}", a.container))?;
    let want = a.port.as_deref().map(|p| {
        if p.contains('/') {
            p.to_string()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut found = false;
    if let Some(ports) = v["NetworkSettings"]["Ports"].as_object() {
        for (k, binds) in ports {
            if want.as_deref().is_some_and(|w| w != k) {
                continue;
            }
            for b in binds.as_array().into_iter().flatten() {
                let ip = b["HostIp"].as_str().unwrap_or("0.0.0.0");
                let port = b["HostPort"].as_str().unwrap_or("");
                if want.is_some() {
                    println!("{ip}:{port}");
                } else {
                    println!("{k} -> {ip}:{port}");
                }
                found = true;
            }
        }
    }
    if let (Some(w), false) = (&want, found) {
        anyhow::bail!("no public port {w} published for {}", a.container);
    }
    Ok(ExitCode::SUCCESS)
}
