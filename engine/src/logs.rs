//! Reading json-file logs (`{"log","stream","time"}` per line).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::{io, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub stream: String,
    pub log: String,
    pub time: String,
}

fn parse(line: &str) -> Option<LogLine> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    Some(LogLine {
        stream: v["stream"].as_str()?.to_string(),
        log: v["log"].as_str()?.to_string(),
        time: v["time"].as_str().unwrap_or("").to_string(),
    })
}

/// Reads a log from the start, then whatever was appended since the last
/// call. The file stays open, so it can be read to the end even after the
/// container (and the file's name) is removed.
pub struct LogFollower {
    file: File,
    partial: String,
}

impl LogFollower {
    pub fn open(path: &Path) -> Result<LogFollower> {
        Ok(LogFollower {
            file: File::open(path).map_err(io("open", path))?,
            partial: String::new(),
        })
    }

    /// Only the last `n` lines are returned by the first `poll`.
    pub fn skip_to_tail(&mut self, n: usize) -> Result<Vec<LogLine>> {
        let mut all = self.poll()?;
        let cut = all.len().saturating_sub(n);
        Ok(all.split_off(cut))
    }

    /// Complete lines appended since the last call.
    pub fn poll(&mut self) -> Result<Vec<LogLine>> {
        let mut buf = String::new();
        let _ = self.file.read_to_string(&mut buf);
        self.partial.push_str(&buf);
        let mut out = Vec::new();
        while let Some(pos) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=pos).collect();
            if let Some(l) = parse(line.trim_end()) {
                out.push(l);
            }
        }
        Ok(out)
    }
}
