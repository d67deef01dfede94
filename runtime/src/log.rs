//! runc-compatible logging: `--log FILE` (default stderr) in `text` or
//! `json` lines (`{"level","msg","time"}`, which containerd's shim parses).

use std::io::Write;
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

struct Config {
    path: Option<std::path::PathBuf>,
    format: Format,
    debug: bool,
}

static CONFIG: OnceLock<Config> = OnceLock::new();

pub fn init(path: Option<std::path::PathBuf>, format: Format, debug: bool) {
    let _ = CONFIG.set(Config {
        path,
        format,
        debug,
    });
}

fn emit(level: &str, msg: &str) {
    let cfg = CONFIG.get();
    let format = cfg.map(|c| c.format).unwrap_or(Format::Text);
    let time = crate::state::now_rfc3339();
    let line = match format {
        Format::Json => format!(
            "{}\n",
            serde_json::json!({"level": level, "msg": msg, "time": time})
        ),
        Format::Text => format!("time=\"{time}\" level={level} msg={msg:?}\n"),
    };
    match cfg.and_then(|c| c.path.as_ref()) {
        Some(p) => {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
            {
                let _ = f.write_all(line.as_bytes());
            }
        }
        None => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

pub fn error(msg: &str) {
    emit("error", msg);
}

pub fn warn(msg: &str) {
    emit("warning", msg);
}

pub fn debug(msg: &str) {
    if CONFIG.get().is_some_and(|c| c.debug) {
        emit("debug", msg);
    }
}

/// Whether errors already go to stderr through the log (no `--log` given).
pub fn logs_to_stderr() -> bool {
    CONFIG.get().is_none_or(|c| c.path.is_none())
}
