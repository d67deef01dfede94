//! Network namespaces given by path (`/run/netns/NAME`, `/proc/PID/ns/net`).
//!
//! To configure the inside of a namespace, netd opens a netlink socket *in*
//! it: a fresh thread joins the namespace with `setns`, creates the socket
//! and exits. A netlink socket keeps talking to the namespace it was created
//! in, so the rest of the work happens from the main thread; the thread that
//! changed namespace is never reused for anything else.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::sched::{setns, CloneFlags};
use nix::sys::statfs::{fstatfs, NSFS_MAGIC};

use crate::netlink::Netlink;
use crate::Error;

/// An open network namespace.
pub struct Netns {
    file: File,
    path: PathBuf,
}

impl Netns {
    /// Open `path` and check that it is a namespace file.
    pub fn open(path: &Path) -> Result<Netns, Error> {
        let file = File::open(path).map_err(|source| Error::OpenNetns {
            path: path.to_path_buf(),
            source,
        })?;
        let fs = fstatfs(&file).map_err(|e| Error::OpenNetns {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        // Namespace files live on nsfs; anything else is a mistake.
        if fs.filesystem_type() != NSFS_MAGIC {
            return Err(Error::NotNetns {
                path: path.to_path_buf(),
            });
        }
        Ok(Netns {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// A netlink socket inside this namespace (fails with EINVAL when the
    /// file is another kind of namespace).
    pub fn netlink(&self) -> Result<Netlink, Error> {
        let file = self
            .file
            .try_clone()
            .map_err(|source| self.socket_error(source))?;
        let joined = std::thread::spawn(move || -> io::Result<Netlink> {
            setns(file.as_fd(), CloneFlags::CLONE_NEWNET)?;
            Netlink::open()
        })
        .join();
        match joined {
            Ok(Ok(nl)) => Ok(nl),
            // setns: another kind of namespace (nsfs, but not a netns).
            Ok(Err(e)) if e.raw_os_error() == Some(nix::errno::Errno::EINVAL as i32) => {
                Err(Error::NotNetns {
                    path: self.path.clone(),
                })
            }
            Ok(Err(source)) => Err(self.socket_error(source)),
            Err(_) => Err(self.socket_error(io::Error::other("netns thread panicked"))),
        }
    }

    fn socket_error(&self, source: io::Error) -> Error {
        Error::NetnsSocket {
            path: self.path.clone(),
            source,
        }
    }
}
