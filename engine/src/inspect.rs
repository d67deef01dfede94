//! `inspect`: a docker-like JSON view of a container.

use serde_json::{json, Value};

use crate::db::ContainerRecord;
use crate::engine::Engine;
use crate::error::Result;
use crate::options::NetworkMode;
use crate::state::Status;

impl Engine {
    pub fn inspect(&self, key: &str) -> Result<Value> {
        let rec = self.find(key)?;
        let st = self.state(&rec);
        Ok(view(&rec, &st))
    }
}

fn view(rec: &ContainerRecord, st: &crate::state::State) -> Value {
    let o = &rec.options;
    json!({
        "Id": rec.id,
        "Name": format!("/{}", rec.name),
        "Created": rec.created_at,
        "Path": rec.args.first(),
        "Args": rec.args.get(1..).unwrap_or_default(),
        "State": {
            "Status": st.status.as_str(),
            "Running": st.is_running(),
            "Paused": st.status == Status::Paused,
            "Pid": st.pid.unwrap_or(0),
            "ExitCode": st.exit_code.unwrap_or(0),
            "Error": st.error.clone().unwrap_or_default(),
            "StartedAt": rec.started_at.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            "FinishedAt": st.finished_at.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        },
        "Image": rec.image_id,
        "LogPath": rec.log_path,
        "Driver": "overlay",
        "GraphDriver": {"Data": {"MergedDir": rec.rootfs}, "Name": "overlay"},
        "Config": {
            "Hostname": rec.hostname,
            "User": o.user.clone().unwrap_or_default(),
            "Env": o.env,
            "Cmd": o.cmd,
            "Entrypoint": o.entrypoint,
            "WorkingDir": o.workdir.clone().unwrap_or_default(),
            "Image": rec.image,
            "Labels": o.labels,
        },
        "HostConfig": {
            "AutoRemove": o.auto_remove,
            "Binds": o.mounts.iter().map(|m| format!("{}:{}{}", m.source.display(), m.destination, if m.readonly { ":ro" } else { "" })).collect::<Vec<_>>(),
            "ReadonlyRootfs": o.read_only,
            "Memory": o.memory.unwrap_or(0),
            "PidsLimit": o.pids_limit,
            "CapAdd": o.cap_add,
            "CapDrop": o.cap_drop,
            "Privileged": o.privileged,
            "NetworkMode": match o.network { NetworkMode::None => "none", NetworkMode::Host => "host" },
            "Runtime": rec.runtime,
        },
    })
}
