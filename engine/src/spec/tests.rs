use super::*;

fn image(entry: Value, cmd: Value, env: Value) -> Value {
    json!({"config": {"Entrypoint": entry, "Cmd": cmd, "Env": env, "WorkingDir": "/srv", "User": "user"}})
}

fn opts(entry: Option<&str>, cmd: &[&str]) -> RunOptions {
    RunOptions {
        entrypoint: entry.map(String::from),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        ..RunOptions::default()
    }
}

/// (image Entrypoint, image Cmd, --entrypoint, CMD, expected args or NoCommand)
type ArgsCase<'a> = (
    Value,
    Value,
    Option<&'a str>,
    &'a [&'a str],
    Option<&'a [&'a str]>,
);

#[test]
fn args_follow_docker_rules() {
    let cases: &[ArgsCase<'_>] = &[
        (json!(null), json!(["sh"]), None, &[], Some(&["sh"])),
        (
            json!(null),
            json!(["sh"]),
            None,
            &["echo", "hi"],
            Some(&["echo", "hi"]),
        ),
        (json!(["/ep"]), json!(["a"]), None, &[], Some(&["/ep", "a"])),
        (
            json!(["/ep"]),
            json!(["a"]),
            None,
            &["b"],
            Some(&["/ep", "b"]),
        ),
        (
            json!(["/ep"]),
            json!(["a"]),
            Some("/other"),
            &[],
            Some(&["/other"]),
        ),
        (
            json!(["/ep"]),
            json!(["a"]),
            Some("/other"),
            &["x"],
            Some(&["/other", "x"]),
        ),
        (json!(["/ep"]), json!(["a"]), Some(""), &["x"], Some(&["x"])),
        (json!(null), json!(null), None, &[], None),
        (json!(["/ep"]), json!(null), Some(""), &[], None),
    ];
    for (entry, cmd, e, c, want) in cases {
        let got = process_args(&image(entry.clone(), cmd.clone(), json!([])), &opts(*e, c));
        match want {
            Some(w) => assert_eq!(
                got.unwrap(),
                w.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                "{entry} {cmd} {e:?} {c:?}"
            ),
            None => assert!(matches!(got, Err(EngineError::NoCommand))),
        }
    }
}

#[test]
fn env_merges_image_then_options() {
    let img = image(
        json!(null),
        json!(["sh"]),
        json!(["PATH=/img", "A=1", "B=2"]),
    );
    let mut o = opts(None, &[]);
    o.env = vec!["B=3".into(), "C=4".into(), "NOVALUE".into()];
    let e = env(&img, &o, "h1", "/home/user");
    assert_eq!(
        e,
        vec![
            "HOSTNAME=h1",
            "PATH=/img",
            "A=1",
            "B=3",
            "C=4",
            "HOME=/home/user"
        ]
    );
    o.env.push("HOME=/x".into());
    assert!(env(&img, &o, "h1", "/root").contains(&"HOME=/x".to_string()));
    assert_eq!(user_spec(&img, &o), "user");
    o.user = Some("0".into());
    assert_eq!(user_spec(&img, &o), "0");
    assert_eq!(workdir(&img, &o), "/srv");
    assert_eq!(workdir(&json!({}), &o), "/");
}

#[test]
fn capabilities_add_drop_privileged() {
    let host: Vec<String> = DEFAULT_CAPS
        .iter()
        .map(|s| s.to_string())
        .chain(["CAP_SYS_ADMIN".to_string()])
        .collect();
    let mut o = RunOptions::default();
    assert_eq!(capabilities(&o, &host).unwrap().len(), DEFAULT_CAPS.len());
    o.cap_drop = vec!["net_raw".into()];
    o.cap_add = vec!["SYS_ADMIN".into()];
    let c = capabilities(&o, &host).unwrap();
    assert!(!c.contains(&"CAP_NET_RAW".to_string()) && c.contains(&"CAP_SYS_ADMIN".to_string()));
    o.cap_drop = vec!["ALL".into()];
    o.cap_add = vec![];
    assert!(capabilities(&o, &host).unwrap().is_empty());
    o.cap_add = vec!["CAP_BOGUS".into()];
    assert!(capabilities(&o, &host).is_err());
    let p = RunOptions {
        privileged: true,
        ..RunOptions::default()
    };
    assert_eq!(capabilities(&p, &host).unwrap(), host);
}

#[test]
fn resolv_conf_drops_loopback_without_host_network() {
    let text = resolv_conf(NetworkMode::None);
    assert!(
        !text.lines().any(|l| l.starts_with("nameserver 127.")),
        "{text}"
    );
}
