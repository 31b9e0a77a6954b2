//! The container the runtimes are measured with: busybox's `true` as the entrypoint (the
//! entrypoint does not matter, its calls come after the exec), an `/etc/passwd` and
//! `/etc/group` for the user lookups runtimes make, and a seccomp profile that logs every
//! call and refuses none.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompBuilder, Spec, UserBuilder,
};

/// The entrypoint, a link to busybox in the container's root filesystem.
pub const ENTRYPOINT: &str = "/bin/true";
pub const BUSYBOX: &str = "/bin/busybox";

/// The container's files besides busybox.
pub const ROOTFS_FILES: &[(&str, &str)] = &[
    (
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    ),
    ("/etc/group", "root:x:0:\nnogroup:x:65534:\n"),
];

/// What the runtime is asked to do differently: the settings its post-filter path depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    /// `process.noNewPrivileges`: runtimes install the filter after switching credentials
    /// when true, before when false.
    pub no_new_privileges: bool,
    /// Run as `nobody` (65534, with a supplementary group) instead of root.
    pub non_root: bool,
    /// `create` then `start`, as Kubernetes' runtimes (containerd, CRI-O) drive a runtime,
    /// instead of `run`: the container's process waits for `start` after its filter.
    pub create_start: bool,
}

const fn v(no_new_privileges: bool, non_root: bool, create_start: bool) -> Variant {
    Variant {
        no_new_privileges,
        non_root,
        create_start,
    }
}

/// Every combination, each measured `runs` times.
pub const VARIANTS: [Variant; 8] = [
    v(true, false, false),
    v(false, false, false),
    v(true, true, false),
    v(false, true, false),
    v(true, false, true),
    v(false, false, true),
    v(true, true, true),
    v(false, true, true),
];

impl Variant {
    /// A short name for logs and tables: `nnp-root-run`, `privs-nobody-create`…
    pub fn label(&self) -> &'static str {
        match (self.no_new_privileges, self.non_root, self.create_start) {
            (true, false, false) => "nnp-root-run",
            (false, false, false) => "privs-root-run",
            (true, true, false) => "nnp-nobody-run",
            (false, true, false) => "privs-nobody-run",
            (true, false, true) => "nnp-root-create",
            (false, false, true) => "privs-root-create",
            (true, true, true) => "nnp-nobody-create",
            (false, true, true) => "privs-nobody-create",
        }
    }

    pub fn from_label(label: &str) -> Option<Variant> {
        VARIANTS.into_iter().find(|v| v.label() == label)
    }
}

/// Allows every call and has the kernel log each (`SCMP_ACT_LOG`).
pub fn logging_profile() -> LinuxSeccomp {
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActLog)
        .architectures(vec![Arch::ScmpArchX86_64])
        .syscalls(Vec::new())
        .build()
        .expect("a valid seccomp profile")
}

/// `config.json` for `variant` with its root filesystem at `root`: oci-spec's defaults (those
/// of `runc spec`), with no inheritable or ambient capabilities (as `runc spec` since 1.1.5 and
/// Kubernetes' runtimes) and the logging profile.
pub fn config_json(variant: Variant, root: &str) -> String {
    let mut spec = Spec::default();
    let mut r = spec.root().clone().expect("a default root");
    r.set_path(root.into());
    spec.set_root(Some(r));
    let mut process = spec.process().clone().expect("a default process");
    process.set_args(Some(vec![ENTRYPOINT.to_owned()]));
    process.set_no_new_privileges(Some(variant.no_new_privileges));
    let (id, groups): (u32, _) = match variant.non_root {
        true => (65534, Some(vec![65534])),
        false => (0, None),
    };
    process.set_user(
        UserBuilder::default()
            .uid(id)
            .gid(id)
            .build()
            .expect("a valid user"),
    );
    let mut user = process.user().clone();
    user.set_additional_gids(groups);
    process.set_user(user);
    if let Some(caps) = process.capabilities() {
        let mut caps = caps.clone();
        caps.set_inheritable(None);
        caps.set_ambient(None);
        process.set_capabilities(Some(caps));
    }
    spec.set_process(Some(process));
    spec.set_hostname(Some("measure".into()));
    let mut linux = spec.linux().clone().expect("a default linux section");
    linux.set_seccomp(Some(logging_profile()));
    spec.set_linux(Some(linux));
    serde_json::to_string_pretty(&spec).expect("a spec serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_logs_every_call_of_the_variant_s_user() {
        for v in VARIANTS {
            assert_eq!(Variant::from_label(v.label()), Some(v));
            assert_eq!(VARIANTS.iter().filter(|w| **w == v).count(), 1);
            let c: serde_json::Value = serde_json::from_str(&config_json(v, "/r")).unwrap();
            let p = &c["process"];
            assert_eq!(c["root"]["path"], "/r");
            assert_eq!(p["args"], serde_json::json!([ENTRYPOINT]));
            assert_eq!(p["noNewPrivileges"], v.no_new_privileges);
            assert_eq!(p["user"]["uid"], if v.non_root { 65534 } else { 0 });
            assert!(p["capabilities"].get("ambient").is_none());
            let s = &c["linux"]["seccomp"];
            assert_eq!(s["defaultAction"], "SCMP_ACT_LOG");
            assert!(s["syscalls"].as_array().is_none_or(Vec::is_empty));
        }
        assert_eq!(Variant::from_label("other"), None);
    }
}
