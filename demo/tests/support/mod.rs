//! Shared by the integration tests: deciding whether the machine can run them.
#![allow(dead_code, reason = "each test crate uses a different part")]

use std::{net::TcpListener, path::Path, process::Command};

/// Skips (returns false, printing why) when `missing` names something the test needs, unless
/// `CI=true`: there a skipped test would hide a broken environment, so it fails instead.
pub fn require(missing: Option<String>) -> bool {
    let Some(reason) = missing else {
        return true;
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("cannot run: {reason} (CI=true: refusing to skip)");
    }
    eprintln!("skipping: {reason}");
    false
}

/// What building the bundle needs: the host's nginx and a C compiler.
pub fn bundle_prerequisites() -> Option<String> {
    if !Path::new("/usr/sbin/nginx").exists() {
        return Some("/usr/sbin/nginx not installed (Debian package nginx)".into());
    }
    if Command::new("cc").arg("--version").output().is_err() {
        return Some("no C compiler `cc`".into());
    }
    None
}

/// What running the container needs on top: root and runc.
pub fn container_prerequisites() -> Option<String> {
    if let Some(missing) = bundle_prerequisites() {
        return Some(missing);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (runc needs root to create containers)".into());
    }
    if Command::new("runc").arg("--version").output().is_err() {
        return Some("runc not installed".into());
    }
    None
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a loopback port")
        .port()
}
