//! A pod's network for a runc container: a network namespace joined to the host by a veth
//! pair, as a pod is to its node, so a suite reaches the workload from a non-loopback address
//! and the recorded flows are what a NetworkPolicy governs. Removed on drop whatever happened.

use std::{net::Ipv4Addr, path::PathBuf, process::Command};

/// The namespace (`/run/netns/<name>`) and the host's end of the veth pair.
pub struct PodNetwork {
    pub netns: String,
    host_if: String,
}

impl PodNetwork {
    /// `ip netns add <prefix>-<tag>`, a veth pair `<short><tag>h`/`<short><tag>p`, `node` on
    /// the host's end and `pod` on the namespace's (both /30).
    pub fn create(
        prefix: &str,
        short: &str,
        tag: u32,
        node: Ipv4Addr,
        pod: Ipv4Addr,
    ) -> Result<Self, String> {
        let net = Self {
            netns: format!("{prefix}-{tag}"),
            host_if: format!("{short}{tag}h"),
        };
        let pod_if = format!("{short}{tag}p");
        let n = net.netns.clone();
        ip(&["netns", "add", &n])?;
        ip(&[
            "link",
            "add",
            &net.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &pod_if,
            "netns",
            &n,
        ])?;
        ip(&["addr", "add", &format!("{node}/30"), "dev", &net.host_if])?;
        ip(&["link", "set", &net.host_if, "up"])?;
        ip(&[
            "-n",
            &n,
            "addr",
            "add",
            &format!("{pod}/30"),
            "dev",
            &pod_if,
        ])?;
        ip(&["-n", &n, "link", "set", &pod_if, "up"])?;
        ip(&["-n", &n, "link", "set", "lo", "up"])?;
        Ok(net)
    }

    /// What `linux.namespaces[].path` of a bundle's `config.json` names.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.netns)
    }
}

impl Drop for PodNetwork {
    fn drop(&mut self) {
        // Deleting one end of a veth pair deletes both.
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.netns]);
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("running ip (Debian package iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
