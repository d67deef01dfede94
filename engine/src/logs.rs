//! Container logs: docker's json-file format (`{"log","stream","time"}`
//! per line) or the CRI's k8s-file format (`TIME STREAM F|P TEXT`, what
//! podman writes), with size-based rotation (`max-size`, `max-file`:
//! `LOG.1` … `LOG.N-1` hold older output). The monitor writes with
//! [`LogWriter`]; `logs`, `run` and `attach` read with [`LogFollower`],
//! which takes both formats and follows a rotation.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{io, Result};
use crate::monitor::time::json_str;

/// `--log-driver`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogDriver {
    #[default]
    JsonFile,
    K8sFile,
}

impl std::str::FromStr for LogDriver {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<LogDriver, String> {
        match s {
            "json-file" => Ok(LogDriver::JsonFile),
            "k8s-file" => Ok(LogDriver::K8sFile),
            _ => Err(format!(
                "unknown log driver {s:?}: use json-file or k8s-file"
            )),
        }
    }
}

impl LogDriver {
    pub fn as_str(self) -> &'static str {
        match self {
            LogDriver::JsonFile => "json-file",
            LogDriver::K8sFile => "k8s-file",
        }
    }
}

/// How a container's log is written (`--log-driver`, `--log-opt`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    pub driver: LogDriver,
    /// `max-size`: rotate when the file would grow past this.
    pub max_size: Option<u64>,
    /// `max-file`: files kept, the current one included (default 1: the
    /// file starts over).
    pub max_files: Option<u32>,
}

/// The nth rotated file of `log` (`log.1` is the newest).
pub fn rotated(log: &Path, n: u32) -> PathBuf {
    let mut s = log.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Most rotated files [`LogFollower`] looks for.
const MAX_ROTATED: u32 = 64;

/// Appends log records, rotating by size.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    cfg: LogConfig,
}

impl LogWriter {
    pub fn open(path: &Path, cfg: LogConfig) -> std::io::Result<LogWriter> {
        let file = File::options().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            size,
            cfg,
        })
    }

    /// One record: `data` as the container wrote it (a line with its
    /// newline, or a partial line without).
    pub fn write(&mut self, stream: &str, data: &[u8], time: &str) {
        let rec = encode(self.cfg.driver, stream, data, time);
        if let Some(max) = self.cfg.max_size {
            if self.size > 0 && self.size + rec.len() as u64 > max {
                let _ = self.rotate();
            }
        }
        if self.file.write_all(&rec).is_ok() {
            self.size += rec.len() as u64;
        }
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let keep = self.cfg.max_files.unwrap_or(1).max(1);
        if keep == 1 {
            self.file.set_len(0)?;
        } else {
            let _ = std::fs::remove_file(rotated(&self.path, keep - 1));
            for n in (1..keep - 1).rev() {
                let _ = std::fs::rename(rotated(&self.path, n), rotated(&self.path, n + 1));
            }
            std::fs::rename(&self.path, rotated(&self.path, 1))?;
            self.file = File::options().create(true).append(true).open(&self.path)?;
        }
        self.size = 0;
        Ok(())
    }
}

fn encode(driver: LogDriver, stream: &str, data: &[u8], time: &str) -> Vec<u8> {
    match driver {
        LogDriver::JsonFile => format!(
            "{{\"log\":{},\"stream\":\"{stream}\",\"time\":\"{time}\"}}\n",
            json_str(data)
        )
        .into_bytes(),
        LogDriver::K8sFile => {
            let (text, tag) = match data.strip_suffix(b"\n") {
                Some(t) => (t, "F"),
                None => (data, "P"),
            };
            let mut v = format!("{time} {stream} {tag} ").into_bytes();
            v.extend_from_slice(text);
            v.push(b'\n');
            v
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub stream: String,
    pub log: String,
    pub time: String,
}

/// One record of either format.
fn parse(line: &str) -> Option<LogLine> {
    if line.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        return Some(LogLine {
            stream: v["stream"].as_str()?.to_string(),
            log: v["log"].as_str()?.to_string(),
            time: v["time"].as_str().unwrap_or("").to_string(),
        });
    }
    let mut f = line.splitn(4, ' ');
    let (time, stream, tag) = (f.next()?, f.next()?, f.next()?);
    let mut log = f.next().unwrap_or("").to_string();
    match tag {
        "F" => log.push('\n'),
        "P" => {}
        _ => return None,
    }
    Some(LogLine {
        stream: stream.to_string(),
        log,
        time: time.to_string(),
    })
}

/// Reads a log from its oldest rotated file on, then whatever is appended
/// since the last call, across rotations. Files stay open, so a log can be
/// read to the end even after the container (and the names) are removed.
pub struct LogFollower {
    path: PathBuf,
    /// Older files still to read, oldest first.
    older: Vec<File>,
    file: File,
    ino: u64,
    partial: String,
}

impl LogFollower {
    pub fn open(path: &Path) -> Result<LogFollower> {
        let older = (1..=MAX_ROTATED)
            .rev()
            .filter_map(|n| File::open(rotated(path, n)).ok())
            .collect();
        let file = File::open(path).map_err(io("open", path))?;
        let ino = file.metadata().map(|m| m.ino()).unwrap_or(0);
        Ok(LogFollower {
            path: path.to_path_buf(),
            older,
            file,
            ino,
            partial: String::new(),
        })
    }

    /// Only the last `n` lines are returned by the first `poll`.
    pub fn skip_to_tail(&mut self, n: usize) -> Result<Vec<LogLine>> {
        let mut all = self.poll()?;
        let cut = all.len().saturating_sub(n);
        Ok(all.split_off(cut))
    }

    /// Complete records appended since the last call.
    pub fn poll(&mut self) -> Result<Vec<LogLine>> {
        let mut buf = String::new();
        for mut f in std::mem::take(&mut self.older) {
            let _ = f.read_to_string(&mut buf);
        }
        let _ = self.file.read_to_string(&mut buf);
        // Truncated under us (max-file 1): start over.
        if let (Ok(pos), Ok(m)) = (self.file.stream_position(), self.file.metadata()) {
            if m.len() < pos {
                let _ = self.file.seek(std::io::SeekFrom::Start(0));
                let _ = self.file.read_to_string(&mut buf);
            }
        }
        // Rotated under us: the rest of our file, the files rotated after
        // it (found by walking back to its inode; all of them when it is
        // gone already), then the current one.
        if let Ok(m) = std::fs::metadata(&self.path) {
            if m.ino() != self.ino {
                if let Ok(f) = File::open(&self.path) {
                    let _ = self.file.read_to_string(&mut buf);
                    let newer: Vec<u32> = (1..=MAX_ROTATED)
                        .map_while(|n| {
                            let m = std::fs::metadata(rotated(&self.path, n)).ok()?;
                            (m.ino() != self.ino).then_some(n)
                        })
                        .collect();
                    for n in newer.into_iter().rev() {
                        if let Ok(mut r) = File::open(rotated(&self.path, n)) {
                            let _ = r.read_to_string(&mut buf);
                        }
                    }
                    self.file = f;
                    self.ino = m.ino();
                    let _ = self.file.read_to_string(&mut buf);
                }
            }
        }
        self.partial.push_str(&buf);
        let mut out = Vec::new();
        while let Some(pos) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=pos).collect();
            if let Some(l) = parse(line.trim_end_matches('\n')) {
                out.push(l);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_round_trip() {
        for d in [LogDriver::JsonFile, LogDriver::K8sFile] {
            for (data, stream) in [(&b"hello\n"[..], "stdout"), (&b"part"[..], "stderr")] {
                let rec = encode(d, stream, data, "2026-12-01T00:00:00.000000001Z");
                let text = String::from_utf8(rec).unwrap();
                assert!(
                    text.ends_with('\n') && text.matches('\n').count() == 1,
                    "{text}"
                );
                let l = parse(text.trim_end_matches('\n')).unwrap();
                assert_eq!(l.log.as_bytes(), data, "{d:?}");
                assert_eq!(l.stream, stream);
                assert_eq!(l.time, "2026-12-01T00:00:00.000000001Z");
            }
        }
        assert_eq!(
            String::from_utf8(encode(LogDriver::K8sFile, "stdout", b"a b\n", "T")).unwrap(),
            "T stdout F a b\n"
        );
        assert!(parse("T stdout X a").is_none());
    }

    #[test]
    fn rotation_keeps_max_files_and_the_follower_reads_across() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("ctr.log");
        let cfg = LogConfig {
            driver: LogDriver::K8sFile,
            max_size: Some(100),
            max_files: Some(3),
        };
        let mut w = LogWriter::open(&log, cfg).unwrap();
        let mut f = LogFollower::open(&log).unwrap();
        let mut seen = Vec::new();
        for i in 0..40 {
            w.write("stdout", format!("line {i:02}\n").as_bytes(), "T");
            if i % 7 == 0 {
                seen.extend(f.poll().unwrap().into_iter().map(|l| l.log));
            }
        }
        seen.extend(f.poll().unwrap().into_iter().map(|l| l.log));
        // The follower saw every line, in order, across rotations …
        let want: Vec<String> = (0..40).map(|i| format!("line {i:02}\n")).collect();
        assert_eq!(seen, want);
        // … while the disk keeps at most 3 files of at most 100 bytes.
        assert!(rotated(&log, 2).exists() && !rotated(&log, 3).exists());
        for p in [log.clone(), rotated(&log, 1), rotated(&log, 2)] {
            assert!(
                std::fs::metadata(&p).unwrap().len() <= 100,
                "{}",
                p.display()
            );
        }
        // A new reader starts from the oldest file kept.
        let kept: Vec<String> = LogFollower::open(&log)
            .unwrap()
            .poll()
            .unwrap()
            .into_iter()
            .map(|l| l.log)
            .collect();
        assert_eq!(kept.last().unwrap(), "line 39\n");
        assert!(kept.windows(2).all(|w| w[0] < w[1]), "in order: {kept:?}");
        // max-file 1: the file starts over.
        let one = d.path().join("one.log");
        let mut w = LogWriter::open(
            &one,
            LogConfig {
                driver: LogDriver::JsonFile,
                max_size: Some(200),
                max_files: None,
            },
        )
        .unwrap();
        for i in 0..50 {
            w.write("stdout", format!("{i}\n").as_bytes(), "T");
        }
        assert!(std::fs::metadata(&one).unwrap().len() <= 200);
        assert!(!rotated(&one, 1).exists());
    }
}
