//! `SCMP_ACT_NOTIFY`: handing the filter's notification descriptor to the
//! seccomp agent listening on `listenerPath`, as runc does: one `sendmsg`
//! whose payload is the container process state JSON (runtime-spec
//! "ContainerProcessState": ociVersion, fds, pid, metadata, state) and whose
//! `SCM_RIGHTS` carries the descriptor named by `fds[0]` ("seccompFd").
//!
//! The listener path is a host path. The filter is loaded inside the
//! container (after pivot_root for the init, inside its mount namespace for
//! `exec`), where that path is not reachable, and where connecting to it
//! would let the container choose the listener (and so answer its own
//! notifications). So the runtime connects while it still has the host's
//! view ([`connect_listener`]) and carries the connected socket down to the
//! loader in a [`Notify`].

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use oci_spec::runtime::LinuxSeccomp;
use serde_json::{json, Value};

use super::SeccompError as E;

/// The name runtime-spec gives the notify descriptor in `fds`.
pub const SECCOMP_FD_NAME: &str = "seccompFd";

/// What the loader needs to deliver the notify descriptor.
#[derive(Debug)]
pub struct Notify {
    socket: OwnedFd,
    payload: String,
}

impl Notify {
    /// `socket`: from [`connect_listener`]. `state_json`: the container's
    /// OCI state. `pid`: the (host) pid of the process the filter is for;
    /// `None` takes the state's `pid` (the container's init).
    pub fn new(
        s: &LinuxSeccomp,
        socket: OwnedFd,
        state_json: &str,
        pid: Option<i32>,
    ) -> Result<Notify, E> {
        Ok(Notify {
            socket,
            payload: payload(s, state_json, pid)?,
        })
    }

    /// From a payload made elsewhere with [`payload`] (for `exec`, whose
    /// parent knows the new process's host pid and passes the payload down).
    pub fn from_payload(socket: OwnedFd, payload: String) -> Notify {
        Notify { socket, payload }
    }
}

/// Whether `s` needs a listener: some rule notifies and a path is set.
pub fn wants_listener(s: &LinuxSeccomp) -> bool {
    s.listener_path().is_some()
        && s.syscalls()
            .iter()
            .flatten()
            .any(|c| c.action() == oci_spec::runtime::LinuxSeccompAction::ScmpActNotify)
}

/// Check, without connecting, that a notifying profile's `listenerPath` is
/// a unix socket (so a missing agent fails `create` with a clear error).
pub fn check_listener(s: &LinuxSeccomp) -> Result<(), E> {
    use std::os::unix::fs::FileTypeExt;
    if !wants_listener(s) {
        return Ok(());
    }
    let path = s
        .listener_path()
        .as_ref()
        .expect("checked by wants_listener");
    match std::fs::metadata(path) {
        Ok(m) if m.file_type().is_socket() => Ok(()),
        Ok(_) => Err(E::ListenerNotSocket {
            path: path.clone(),
            source: None,
        }),
        Err(e) => Err(E::ListenerNotSocket {
            path: path.clone(),
            source: Some(e),
        }),
    }
}

/// Connect to `listenerPath` if the profile notifies (call with the host's
/// view of the filesystem, before entering the container's mount
/// namespace). The socket is close-on-exec.
pub fn connect_listener(s: &LinuxSeccomp) -> Result<Option<OwnedFd>, E> {
    if !wants_listener(s) {
        return Ok(None);
    }
    let path = s
        .listener_path()
        .as_ref()
        .expect("checked by wants_listener");
    let sock = UnixStream::connect(path).map_err(|source| E::ListenerConnect {
        path: path.clone(),
        source,
    })?;
    Ok(Some(OwnedFd::from(sock)))
}

/// The ContainerProcessState JSON.
pub fn payload(s: &LinuxSeccomp, state_json: &str, pid: Option<i32>) -> Result<String, E> {
    let state: Value = serde_json::from_str(state_json).map_err(E::StateJson)?;
    let pid = match pid {
        Some(p) => json!(p),
        None => state.get("pid").cloned().unwrap_or(Value::Null),
    };
    let mut v = json!({
        "ociVersion": crate::container::OCI_VERSION,
        "fds": [SECCOMP_FD_NAME],
        "pid": pid,
        "state": state,
    });
    if let Some(m) = s.listener_metadata() {
        v["metadata"] = json!(m);
    }
    Ok(v.to_string())
}

/// Send `fd` with the payload; nothing is allocated here (the filter is
/// already loaded and may trap memory syscalls).
pub fn deliver(n: &Notify, fd: RawFd) -> Result<(), E> {
    crate::sys::send_fd(n.socket.as_raw_fd(), fd, &n.payload).map_err(E::ListenerSend)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(meta: Option<&str>) -> LinuxSeccomp {
        let mut v = json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]});
        if let Some(m) = meta {
            v["listenerMetadata"] = json!(m);
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn payload_is_a_container_process_state() {
        let state =
            r#"{"ociVersion":"1.2.0","id":"c1","status":"creating","pid":4242,"bundle":"/b"}"#;
        let p: Value =
            serde_json::from_str(&payload(&profile(Some("meta")), state, None).unwrap()).unwrap();
        assert_eq!(p["fds"], json!(["seccompFd"]));
        assert_eq!(p["pid"], json!(4242), "the init's pid comes from the state");
        assert_eq!(p["metadata"], json!("meta"));
        assert_eq!(p["state"]["id"], json!("c1"));
        let p: Value =
            serde_json::from_str(&payload(&profile(None), state, Some(7)).unwrap()).unwrap();
        assert_eq!(p["pid"], json!(7), "an exec'd process has its own pid");
        assert!(p.get("metadata").is_none());
    }

    #[test]
    fn the_listener_must_be_a_socket() {
        let d = tempfile::tempdir().unwrap();
        let sock = d.path().join("agent.sock");
        let mut p = profile(None);
        p.set_listener_path(Some(sock.clone()));
        assert!(check_listener(&p).is_err(), "missing socket");
        std::fs::write(&sock, "").unwrap();
        assert!(check_listener(&p).is_err(), "regular file");
        std::fs::remove_file(&sock).unwrap();
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        check_listener(&p).unwrap();
        assert!(connect_listener(&p).unwrap().is_some());
    }

    #[test]
    fn bad_state_is_an_error() {
        assert!(payload(&profile(None), "not json", None).is_err());
    }

    #[test]
    fn only_notifying_profiles_want_a_listener() {
        assert!(wants_listener(&profile(None)));
        let quiet: LinuxSeccomp = serde_json::from_value(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x"}),
        )
        .unwrap();
        assert!(!wants_listener(&quiet));
        assert!(connect_listener(&quiet).unwrap().is_none());
    }
}
