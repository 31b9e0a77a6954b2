//! nginx, the demo's workload: the same binary, nginx.conf and site, with `/run` (the pid
//! file) and `/var/lib/nginx` (the temp directories the master makes) kept on the host, so a
//! restart finds what the last container left.

use std::time::Duration;

use profgen_demo::{
    bundle::nginx_conf,
    config::{self, NGINX_BIN, NGINX_CONF},
    site, suite,
};

use crate::{
    bundle::{Recipe, StateDir, User},
    oci::Process,
    Check, SuiteOptions,
};

pub fn recipe(port: u16) -> Recipe {
    let mime = std::fs::read("/etc/nginx/mime.types").unwrap_or_default();
    let mut files = vec![
        (NGINX_CONF.to_owned(), nginx_conf(port).into_bytes(), 0o644),
        ("/etc/nginx/mime.types".to_owned(), mime, 0o644),
    ];
    for asset in site::ASSETS {
        files.push((
            format!("{}{}", site::ROOT_IN_CONTAINER, asset.path),
            asset.body.to_vec(),
            0o644,
        ));
    }
    Recipe {
        name: "nginx",
        package: "nginx",
        binaries: vec![NGINX_BIN.into()],
        trees: vec![],
        files,
        dirs: vec![],
        users: vec![User {
            name: "www-data",
            uid: 33,
            gid: 33,
            home: "/var/www",
        }],
        process: Process {
            args: [NGINX_BIN, "-c", NGINX_CONF, "-e", "stderr"]
                .map(String::from)
                .to_vec(),
            env: vec![],
            uid: 0,
            gid: 0,
            capabilities: config::capabilities(),
        },
        tmpfs: vec![("/tmp", "mode=1777"), ("/var/log/nginx", "mode=755")],
        state: vec![
            StateDir {
                name: "run",
                destination: "/run",
                uid: 0,
                gid: 0,
                mode: 0o755,
            },
            StateDir {
                name: "lib",
                destination: "/var/lib/nginx",
                uid: 0,
                gid: 0,
                mode: 0o755,
            },
        ],
    }
}

/// The demo's HTTP suite; nginx keeps no data a later suite could look for.
pub fn suite(opts: &SuiteOptions) -> Vec<Check> {
    suite::run(opts.addr(), opts.ready_timeout.max(Duration::from_secs(1)))
}
