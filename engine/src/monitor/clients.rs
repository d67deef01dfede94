//! The monitor's side of attach (protocol in `crate::attach`): the
//! listening socket, the connected clients, and the container's stdin (a
//! pipe for `-i`, the pty master for `-t`), written without blocking so a
//! container that does not read its input never stalls its output.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::{sys, MonitorError};
use crate::attach::{frame, socket_path, Decoder, RESIZE, STDIN, STDIN_CLOSE};
use crate::layout::ATTACH_SOCKET;

/// Input not yet taken by the container; clients are not read beyond it.
const STDIN_BACKLOG: usize = 1 << 16;
/// A client that cannot take output for this long is dropped (until then
/// the container's output waits for it, as docker's attach does).
const CLIENT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

struct Client {
    sock: UnixStream,
    dec: Decoder,
}

pub(super) struct Clients {
    listener: UnixListener,
    clients: Vec<Client>,
    /// Where client input goes: the stdin pipe's write end, or a duplicate
    /// of the pty master.
    stdin: Option<OwnedFd>,
    pending: Vec<u8>,
    close_stdin: bool,
    tty: bool,
}

/// What [`Clients::register`] put in the poll set, to read the answers.
pub(super) struct Polled {
    start: usize,
    clients: usize,
    stdin: bool,
}

impl Clients {
    /// Listen on the run dir's attach socket.
    pub fn bind(run_dir: &Path) -> Result<Clients, MonitorError> {
        let (_dir, path) = socket_path(run_dir, ATTACH_SOCKET)
            .map_err(sys(format!("open {}", run_dir.display())))?;
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(sys("bind the attach socket"))?;
        listener
            .set_nonblocking(true)
            .map_err(sys("attach socket"))?;
        Ok(Clients {
            listener,
            clients: Vec::new(),
            stdin: None,
            pending: Vec::new(),
            close_stdin: false,
            tty: false,
        })
    }

    /// Client input goes to `fd` from now on (made non-blocking).
    pub fn set_stdin(&mut self, fd: OwnedFd, tty: bool) {
        let _ = fcntl(&fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
        self.stdin = Some(fd);
        self.tty = tty;
    }

    /// Wait up to `limit` for the first client (a foreground `run` or
    /// `start -a` connects before the container starts, so it misses
    /// nothing).
    pub fn wait_first(&mut self, limit: Duration) {
        let end = Instant::now() + limit;
        while self.clients.is_empty() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.listener.as_fd(), PollFlags::POLLIN)];
            if let Err(e) = poll(&mut fds, PollTimeout::from(ms)) {
                if e != nix::errno::Errno::EINTR {
                    return;
                }
            }
            self.accept();
        }
    }

    fn accept(&mut self) {
        while let Ok((sock, _)) = self.listener.accept() {
            let _ = sock.set_nonblocking(false);
            let _ = sock.set_write_timeout(Some(CLIENT_WRITE_TIMEOUT));
            self.clients.push(Client {
                sock,
                dec: Decoder::default(),
            });
        }
    }

    /// Add our descriptors to a poll set.
    pub fn register<'a>(&'a self, fds: &mut Vec<PollFd<'a>>) -> Polled {
        let start = fds.len();
        fds.push(PollFd::new(self.listener.as_fd(), PollFlags::POLLIN));
        // Backpressure: no more client input while the container lags.
        let take_input = self.pending.len() < STDIN_BACKLOG;
        for c in &self.clients {
            let ev = if take_input {
                PollFlags::POLLIN
            } else {
                PollFlags::empty()
            };
            fds.push(PollFd::new(c.sock.as_fd(), ev));
        }
        let stdin = match &self.stdin {
            Some(fd) if !self.pending.is_empty() => {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLOUT));
                true
            }
            _ => false,
        };
        Polled {
            start,
            clients: self.clients.len(),
            stdin,
        }
    }

    /// Act on what poll reported for our descriptors (before anything else
    /// changes the client list: the answers are by index).
    pub fn service(&mut self, p: &Polled, ready: &[bool]) {
        debug_assert_eq!(p.clients, self.clients.len());
        if p.stdin && ready[p.start + 1 + p.clients] {
            self.flush_stdin();
        }
        let mut gone = Vec::new();
        for i in 0..p.clients {
            if ready[p.start + 1 + i] && !self.read_client(i) {
                gone.push(i);
            }
        }
        for i in gone.into_iter().rev() {
            self.clients.remove(i);
        }
        if ready[p.start] {
            self.accept();
        }
    }

    /// Take what client `i` sent; `false` when it has gone.
    fn read_client(&mut self, i: usize) -> bool {
        let mut buf = [0u8; 16384];
        let n = match self.clients[i].sock.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) => return e.kind() == std::io::ErrorKind::Interrupted,
        };
        self.clients[i].dec.push(&buf[..n]);
        loop {
            match self.clients[i].dec.next_frame() {
                Ok(None) => return true,
                Err(_) => return false,
                Ok(Some((STDIN, data))) => {
                    self.pending.extend_from_slice(&data);
                    self.flush_stdin();
                }
                Ok(Some((STDIN_CLOSE, _))) if !self.tty => {
                    self.close_stdin = true;
                    self.flush_stdin();
                }
                Ok(Some((RESIZE, p))) if p.len() == 4 => {
                    if let (true, Some(fd)) = (self.tty, &self.stdin) {
                        let rows = u16::from_le_bytes([p[0], p[1]]);
                        let cols = u16::from_le_bytes([p[2], p[3]]);
                        let _ = crate::sys::set_window_size(fd.as_fd(), rows, cols);
                    }
                }
                Ok(Some(_)) => {}
            }
        }
    }

    /// Write pending input as far as the container takes it; close the
    /// pipe once a client ended its input and all of it is through.
    fn flush_stdin(&mut self) {
        if let Some(fd) = &self.stdin {
            while !self.pending.is_empty() {
                match nix::unistd::write(fd, &self.pending) {
                    Ok(n) => {
                        self.pending.drain(..n);
                    }
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(nix::errno::Errno::EAGAIN) => return,
                    // The reader is gone: input has nowhere to go.
                    Err(_) => {
                        self.pending.clear();
                        self.stdin = None;
                        return;
                    }
                }
            }
        }
        if self.close_stdin && self.pending.is_empty() {
            self.stdin = None;
        }
    }

    /// Send output to every client; one that cannot take it is dropped.
    pub fn broadcast(&mut self, kind: u8, data: &[u8]) {
        if self.clients.is_empty() {
            return;
        }
        let f = frame(kind, data);
        self.clients.retain_mut(|c| c.sock.write_all(&f).is_ok());
    }

    /// The container's output has ended: clients see end of file.
    pub fn close_all(&mut self) {
        self.clients.clear();
        self.stdin = None;
    }
}
