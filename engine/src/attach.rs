//! Attaching to a container: the protocol between `berth-monitor` and its
//! clients (`berth run -i/-t`, `start -a`, `attach`), and the client side.
//!
//! The monitor listens on `attach.sock` in the run dir (a stream socket).
//! Both directions carry frames: one type byte, a little-endian u32
//! length, the payload. Monitor → client: [`STDOUT`], [`STDERR`] (the
//! container's output as it comes, raw: a tty's output is all `STDOUT`).
//! Client → monitor: [`STDIN`] (bytes for the container's stdin),
//! [`STDIN_CLOSE`] (the client's stdin ended: the container's stdin pipe is
//! closed, docker's "stdin once"; ignored for a tty), [`RESIZE`] (rows and
//! columns, two u16 LE: the pty's window size). The monitor closes every
//! client once the container has exited and its output is drained; the
//! exit code is then in the run dir's exit file.
//!
//! Unix socket paths are limited to 108 bytes and run dirs can be deep, so
//! both sides name the socket through `/proc/self/fd/N/` of a handle on
//! the run dir.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::SigSet;
pub use nix::sys::signal::Signal;
use nix::sys::signalfd::{SfdFlags, SignalFd};

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const STDIN_CLOSE: u8 = 3;
pub const RESIZE: u8 = 4;

/// Largest payload a peer sends in one frame (bigger frames are refused).
pub const MAX_FRAME: usize = 1 << 16;

/// One frame, encoded.
pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + payload.len());
    v.push(kind);
    v.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    v.extend_from_slice(payload);
    v
}

/// A peer sent a frame over [`MAX_FRAME`]: it is not speaking this protocol.
#[derive(Debug, PartialEq, Eq)]
pub struct FrameTooBig;

/// Frames out of a byte stream that arrives in arbitrary pieces.
#[derive(Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame; `Err` for a frame over [`MAX_FRAME`].
    pub fn next_frame(&mut self) -> Result<Option<(u8, Vec<u8>)>, FrameTooBig> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        let len = u32::from_le_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > MAX_FRAME {
            return Err(FrameTooBig);
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        let kind = self.buf[0];
        let payload = self.buf[5..5 + len].to_vec();
        self.buf.drain(..5 + len);
        Ok(Some((kind, payload)))
    }

    /// Bytes waiting for the rest of their frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// poll(2) over `fds`: which of them have events; `None` when a signal
/// interrupted it (poll again).
pub(crate) fn poll_ready(
    fds: &mut [PollFd],
    timeout: PollTimeout,
) -> nix::Result<Option<Vec<bool>>> {
    match poll(fds, timeout) {
        Err(nix::errno::Errno::EINTR) => Ok(None),
        Err(e) => Err(e),
        Ok(_) => Ok(Some(
            fds.iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect(),
        )),
    }
}

/// `/proc/self/fd/N/NAME` for a socket in `dir`, with the handle that keeps
/// N valid.
pub fn socket_path(dir: &Path, name: &str) -> std::io::Result<(File, PathBuf)> {
    let d = File::open(dir)?;
    let p = PathBuf::from(format!("/proc/self/fd/{}/{name}", d.as_raw_fd()));
    Ok((d, p))
}

/// docker's `--detach-keys` syntax: comma-separated keys, each `ctrl-X`
/// (X a letter or one of `@[\]^_`) or a single character.
pub fn parse_detach_keys(spec: &str) -> Result<Vec<u8>, String> {
    let mut keys = Vec::new();
    for k in spec.split(',') {
        let b = k.as_bytes();
        match b {
            [c] => keys.push(*c),
            _ if k.len() == 6 && k[..5].eq_ignore_ascii_case("ctrl-") => {
                let c = b[5].to_ascii_lowercase();
                match c {
                    b'a'..=b'z' => keys.push(c - b'a' + 1),
                    b'@' => keys.push(0),
                    b'[' | b'\\' | b']' | b'^' | b'_' => keys.push(c - b'@'),
                    _ => return Err(format!("invalid detach key {k:?}")),
                }
            }
            _ => return Err(format!("invalid detach key {k:?}")),
        }
    }
    if keys.is_empty() {
        return Err("empty detach key sequence".into());
    }
    Ok(keys)
}

/// Watches input for the detach sequence. Bytes that might start it are
/// held back until the sequence completes (detach) or breaks (they are
/// passed on).
pub struct DetachWatch {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachWatch {
    pub fn new(keys: Vec<u8>) -> DetachWatch {
        DetachWatch { keys, matched: 0 }
    }

    /// The bytes to forward; `true` once the whole sequence was typed.
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if self.keys.is_empty() {
                out.push(b);
                continue;
            }
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (out, true);
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

/// What an attached client does.
#[derive(Clone, Debug)]
pub struct AttachOptions {
    /// Forward our stdin to the container.
    pub stdin: bool,
    /// The container has a tty: put our terminal in raw mode and keep the
    /// pty's size in step with ours.
    pub tty: bool,
    /// `None`: detaching by keys is off.
    pub detach_keys: Option<Vec<u8>>,
    /// Forward INT, TERM, HUP, QUIT, USR1, USR2 to the container.
    pub sig_proxy: bool,
}

/// How an attach session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum AttachEnd {
    /// The container exited (its output is all here); read the exit code.
    Exited,
    /// The detach keys were typed; the container runs on.
    Detached,
}

/// Our terminal in raw mode until dropped.
pub(crate) struct RawMode {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawMode {
    pub(crate) fn enter(on: bool) -> RawMode {
        let stdin = std::io::stdin();
        if !on || !nix::unistd::isatty(stdin.as_fd()).unwrap_or(false) {
            return RawMode { saved: None };
        }
        let Ok(saved) = nix::sys::termios::tcgetattr(stdin.as_fd()) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        nix::sys::termios::cfmakeraw(&mut raw);
        let _ =
            nix::sys::termios::tcsetattr(stdin.as_fd(), nix::sys::termios::SetArg::TCSANOW, &raw);
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin().as_fd(),
                nix::sys::termios::SetArg::TCSANOW,
                t,
            );
        }
    }
}

/// The signals a foreground client passes on (and SIGWINCH, which it
/// turns into a resize).
fn client_signals() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        s.add(sig);
    }
    s
}

/// Signals routed to a signalfd while a foreground client runs; restored
/// when dropped.
pub struct SignalGuard {
    fd: SignalFd,
    old: SigSet,
}

impl SignalGuard {
    pub fn new() -> std::io::Result<SignalGuard> {
        let set = client_signals();
        let old = set.thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK)?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
        Ok(SignalGuard { fd, old })
    }

    /// Signals received since the last call.
    pub fn drain(&self) -> Vec<Signal> {
        let mut v = Vec::new();
        while let Ok(Some(s)) = self.fd.read_signal() {
            if let Ok(sig) = Signal::try_from(s.ssi_signo as i32) {
                v.push(sig);
            }
        }
        v
    }

    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        let _ = self.old.thread_set_mask();
    }
}

/// The frame telling the monitor our window size, if our stdout is a tty.
fn resize_frame() -> Option<Vec<u8>> {
    let (rows, cols) = crate::sys::window_size(std::io::stdin().as_fd())
        .or_else(|| crate::sys::window_size(std::io::stdout().as_fd()))?;
    let mut p = rows.to_le_bytes().to_vec();
    p.extend_from_slice(&cols.to_le_bytes());
    Some(frame(RESIZE, &p))
}

/// Copy between our stdio and an attach connection until the container's
/// output ends or the detach keys are typed. `kill` forwards a signal.
pub fn session(
    mut sock: UnixStream,
    o: &AttachOptions,
    signals: &SignalGuard,
    kill: &dyn Fn(Signal),
) -> std::io::Result<AttachEnd> {
    let _raw = RawMode::enter(o.tty && o.stdin);
    if o.tty {
        if let Some(f) = resize_frame() {
            sock.write_all(&f)?;
        }
    }
    let mut detach = o.detach_keys.clone().map(DetachWatch::new);
    let mut stdin_open = o.stdin;
    let mut dec = Decoder::default();
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let mut buf = vec![0u8; 32768];
    loop {
        let stdin = std::io::stdin();
        let mut fds = vec![
            PollFd::new(sock.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        let Some(ready) = poll_ready(&mut fds, PollTimeout::NONE)? else {
            continue;
        };
        drop(fds);
        if ready[1] {
            for sig in signals.drain() {
                if sig == Signal::SIGWINCH {
                    if o.tty {
                        if let Some(f) = resize_frame() {
                            let _ = sock.write_all(&f);
                        }
                    }
                } else if o.sig_proxy {
                    kill(sig);
                }
            }
        }
        if stdin_open && ready[2] {
            let n = match stdin.lock().read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => 0,
            };
            if n == 0 {
                stdin_open = false;
                sock.write_all(&frame(STDIN_CLOSE, &[]))?;
            } else {
                let (data, detached) = match &mut detach {
                    Some(w) => w.feed(&buf[..n]),
                    None => (buf[..n].to_vec(), false),
                };
                if !data.is_empty() {
                    sock.write_all(&frame(STDIN, &data))?;
                }
                if detached {
                    return Ok(AttachEnd::Detached);
                }
            }
        }
        if ready[0] {
            let n = match sock.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => 0,
            };
            if n == 0 {
                let _ = out.flush();
                return Ok(AttachEnd::Exited);
            }
            dec.push(&buf[..n]);
            while let Ok(Some((kind, data))) = dec.next_frame() {
                let _ = match kind {
                    STDERR => err.write_all(&data).and_then(|()| err.flush()),
                    _ => out.write_all(&data).and_then(|()| out.flush()),
                };
            }
        }
    }
}

/// Connect to a monitor's attach socket in `run_dir`.
pub fn connect(run_dir: &Path) -> std::io::Result<UnixStream> {
    let (_dir, path) = socket_path(run_dir, crate::layout::ATTACH_SOCKET)?;
    UnixStream::connect(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_survive_any_split() {
        let mut bytes = frame(STDOUT, b"hello");
        bytes.extend(frame(RESIZE, &[24, 0, 80, 0]));
        bytes.extend(frame(STDIN_CLOSE, &[]));
        for cut in 0..bytes.len() {
            let mut d = Decoder::default();
            d.push(&bytes[..cut]);
            let mut got = Vec::new();
            while let Ok(Some(f)) = d.next_frame() {
                got.push(f);
            }
            d.push(&bytes[cut..]);
            while let Ok(Some(f)) = d.next_frame() {
                got.push(f);
            }
            assert_eq!(
                got,
                vec![
                    (STDOUT, b"hello".to_vec()),
                    (RESIZE, vec![24, 0, 80, 0]),
                    (STDIN_CLOSE, vec![])
                ]
            );
            assert_eq!(d.pending(), 0);
        }
        let mut d = Decoder::default();
        d.push(&frame(STDIN, &vec![0u8; MAX_FRAME + 1]));
        assert!(d.next_frame().is_err());
    }

    #[test]
    fn detach_keys_parse_like_docker() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(
            parse_detach_keys("ctrl-@,a,ctrl-[").unwrap(),
            vec![0, b'a', 27]
        );
        assert!(parse_detach_keys("ctrl-1").is_err());
        assert!(parse_detach_keys("ab").is_err());
        assert!(parse_detach_keys("").is_err());
    }

    #[test]
    fn detach_watch_holds_back_only_a_possible_sequence() {
        let mut w = DetachWatch::new(vec![16, 17]);
        assert_eq!(w.feed(b"ab"), (b"ab".to_vec(), false));
        assert_eq!(w.feed(&[16]), (vec![], false));
        // The sequence broke: the held byte goes on with the new one.
        assert_eq!(w.feed(b"x"), (vec![16, b'x'], false));
        assert_eq!(w.feed(&[16, 16]), (vec![16], false));
        assert_eq!(w.feed(&[17, b'z']), (vec![], true));
        let mut w = DetachWatch::new(vec![16, 17]);
        assert_eq!(w.feed(b"ls\r\x10\x11"), (b"ls\r".to_vec(), true));
    }
}
