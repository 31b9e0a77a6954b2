//! The suggested `securityContext`, enforced: its fields become the container's OCI config
//! (capability sets, no_new_privs, read-only root, user), and what the kernel then reports
//! for the running container is compared with what was asked.

use std::{collections::BTreeSet, fs, path::Path};

use k8s_openapi::api::core::v1::SecurityContext;
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, Spec};

use crate::model::CAPABILITY_NAMES;

#[derive(Debug, thiserror::Error)]
pub enum SecurityContextError {
    #[error("{path}: {message}")]
    Read { path: String, message: String },
    #[error("capability {0} is not a Linux capability")]
    UnknownCapability(String),
    #[error("runAsNonRoot is set but the container would run as uid 0: set runAsUser")]
    RootWithRunAsNonRoot,
    #[error("the bundle's config has no process section")]
    NoProcess,
}

/// Reads `securitycontext.yaml` (a Kubernetes `SecurityContext`).
pub fn load(path: &Path) -> Result<SecurityContext, SecurityContextError> {
    let read = |message: String| SecurityContextError::Read {
        path: path.display().to_string(),
        message,
    };
    let text = fs::read_to_string(path).map_err(|e| read(e.to_string()))?;
    serde_norway::from_str(&text).map_err(|e| read(format!("not a securityContext: {e}")))
}

/// What the container must show once running.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expected {
    /// Bounding and effective sets, as capability numbers; `None` when the securityContext
    /// leaves capabilities alone.
    pub capabilities: Option<BTreeSet<u32>>,
    pub no_new_privs: bool,
    pub read_only_root: bool,
    pub uid: Option<u32>,
}

fn capability_number(name: &str) -> Result<u32, SecurityContextError> {
    let bare = name.trim_start_matches("CAP_").to_ascii_lowercase();
    CAPABILITY_NAMES
        .iter()
        .position(|n| *n == bare)
        .map(|i| i as u32)
        .ok_or_else(|| SecurityContextError::UnknownCapability(name.to_owned()))
}

fn oci_capability(number: u32) -> Result<Capability, SecurityContextError> {
    let name = format!(
        "CAP_{}",
        CAPABILITY_NAMES[number as usize].to_ascii_uppercase()
    );
    serde_json::from_value(serde_json::Value::String(name.clone()))
        .map_err(|_| SecurityContextError::UnknownCapability(name))
}

fn numbers(set: &Option<Capabilities>) -> BTreeSet<u32> {
    set.iter()
        .flatten()
        .filter_map(|c| {
            let name = serde_json::to_value(c).ok()?;
            capability_number(name.as_str()?).ok()
        })
        .collect()
}

/// Writes `sc` into `spec` the way a kubelet and runc would, and says what to expect.
/// seccompProfile and appArmorProfile are not touched: the seccomp profile comes from the
/// check itself and AppArmor is proven in its own VM.
pub fn apply(spec: &mut Spec, sc: &SecurityContext) -> Result<Expected, SecurityContextError> {
    let mut expected = Expected::default();
    if sc.read_only_root_filesystem == Some(true) {
        if let Some(root) = spec.root_mut() {
            root.set_readonly(Some(true));
        }
        expected.read_only_root = true;
    }
    let process = spec
        .process_mut()
        .as_mut()
        .ok_or(SecurityContextError::NoProcess)?;
    if sc.allow_privilege_escalation == Some(false) {
        process.set_no_new_privileges(Some(true));
        expected.no_new_privs = true;
    }
    if let Some(uid) = sc.run_as_user {
        let mut user = process.user().clone();
        user.set_uid(uid as u32);
        if let Some(gid) = sc.run_as_group {
            user.set_gid(gid as u32);
        }
        process.set_user(user);
    }
    let uid = process.user().uid();
    if sc.run_as_non_root == Some(true) && uid == 0 {
        return Err(SecurityContextError::RootWithRunAsNonRoot);
    }
    expected.uid = Some(uid);
    if let Some(caps) = &sc.capabilities {
        let current = process.capabilities().clone().unwrap_or_default();
        let drop: BTreeSet<u32> = match &caps.drop {
            Some(d) if d.iter().any(|c| c == "ALL") => (0..CAPABILITY_NAMES.len() as u32).collect(),
            Some(d) => d
                .iter()
                .map(|c| capability_number(c))
                .collect::<Result<_, _>>()?,
            None => BTreeSet::new(),
        };
        let add: BTreeSet<u32> = caps
            .add
            .iter()
            .flatten()
            .map(|c| capability_number(c))
            .collect::<Result<_, _>>()?;
        let set = |existing: &Option<Capabilities>| -> Result<Option<Capabilities>, _> {
            let mut n = numbers(existing);
            n.retain(|c| !drop.contains(c));
            n.extend(&add);
            n.into_iter()
                .map(oci_capability)
                .collect::<Result<Capabilities, _>>()
                .map(Some)
        };
        let bounding = set(current.bounding())?;
        let mut sets = LinuxCapabilities::default();
        sets.set_bounding(bounding.clone());
        sets.set_effective(bounding.clone());
        sets.set_permitted(bounding.clone());
        sets.set_inheritable(None);
        sets.set_ambient(None);
        process.set_capabilities(Some(sets));
        expected.capabilities = Some(numbers(&bounding));
    }
    Ok(expected)
}

/// What `/proc/<pid>/status` and `/proc/<pid>/mountinfo` say about a running process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    pub cap_bounding: BTreeSet<u32>,
    pub cap_effective: BTreeSet<u32>,
    pub no_new_privs: bool,
    pub uid: Option<u32>,
    pub read_only_root: bool,
}

fn bits(hex: &str) -> BTreeSet<u32> {
    let v = u64::from_str_radix(hex.trim(), 16).unwrap_or(0);
    (0..64).filter(|b| v & (1 << b) != 0).collect()
}

/// Parses the two files' text.
pub fn observed_from(status: &str, mountinfo: &str) -> Observed {
    let mut o = Observed::default();
    for line in status.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key {
            "CapBnd" => o.cap_bounding = bits(value),
            "CapEff" => o.cap_effective = bits(value),
            "NoNewPrivs" => o.no_new_privs = value.trim() == "1",
            "Uid" => o.uid = value.split_whitespace().nth(1).and_then(|v| v.parse().ok()),
            _ => {}
        }
    }
    // Fields: id parent major:minor root mount-point options …
    o.read_only_root = mountinfo.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.get(4) == Some(&"/")
            && f.get(5)
                .is_some_and(|opts| opts.split(',').any(|o| o == "ro"))
    });
    o
}

/// Reads a running process.
pub fn observe(pid: u32) -> std::io::Result<Observed> {
    Ok(observed_from(
        &fs::read_to_string(format!("/proc/{pid}/status"))?,
        &fs::read_to_string(format!("/proc/{pid}/mountinfo"))?,
    ))
}

fn names(set: &BTreeSet<u32>) -> String {
    if set.is_empty() {
        return "none".into();
    }
    set.iter()
        .map(|&c| {
            CAPABILITY_NAMES
                .get(c as usize)
                .map_or_else(|| c.to_string(), |n| n.to_ascii_uppercase())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One fact per field asked for: `(holds, description)`.
pub fn compare(expected: &Expected, observed: &Observed) -> Vec<(bool, String)> {
    let mut facts = Vec::new();
    if let Some(caps) = &expected.capabilities {
        facts.push((
            observed.cap_bounding == *caps && observed.cap_effective.is_subset(caps),
            format!(
                "capabilities in the container: {} (asked: {})",
                names(&observed.cap_bounding),
                names(caps)
            ),
        ));
    }
    if expected.no_new_privs {
        facts.push((
            observed.no_new_privs,
            format!("no_new_privs in the container: {}", observed.no_new_privs),
        ));
    }
    if expected.read_only_root {
        facts.push((
            observed.read_only_root,
            format!(
                "root filesystem read-only in the container: {}",
                observed.read_only_root
            ),
        ));
    }
    if let Some(uid) = expected.uid {
        let seen = observed
            .uid
            .map_or_else(|| "unknown".into(), |u| u.to_string());
        facts.push((
            observed.uid == Some(uid),
            format!("container runs as uid {seen} (asked: {uid})"),
        ));
    }
    facts
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Capabilities as K8sCapabilities;

    use super::*;

    fn spec() -> Spec {
        // runc's default set: AUDIT_WRITE, KILL, NET_BIND_SERVICE.
        Spec::default()
    }

    #[test]
    fn drop_all_add_keeps_exactly_the_added() {
        let sc = SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(K8sCapabilities {
                add: Some(vec!["CHOWN".into(), "SETUID".into(), "SETGID".into()]),
                drop: Some(vec!["ALL".into()]),
            }),
            ..Default::default()
        };
        let mut s = spec();
        let e = apply(&mut s, &sc).unwrap();
        assert_eq!(e.capabilities, Some([0, 6, 7].into()));
        assert!(e.no_new_privs && e.read_only_root);
        let p = s.process().as_ref().unwrap();
        assert_eq!(p.no_new_privileges(), Some(true));
        let caps = p.capabilities().as_ref().unwrap();
        assert_eq!(numbers(caps.bounding()), [0, 6, 7].into());
        assert_eq!(numbers(caps.effective()), [0, 6, 7].into());
        assert!(caps.ambient().is_none() && caps.inheritable().is_none());
        assert_eq!(s.root().as_ref().unwrap().readonly(), Some(true));
    }

    #[test]
    fn drop_some_keeps_the_rest() {
        let sc = SecurityContext {
            capabilities: Some(K8sCapabilities {
                add: None,
                drop: Some(vec!["KILL".into()]),
            }),
            ..Default::default()
        };
        let mut s = spec();
        let before = numbers(
            s.process()
                .as_ref()
                .unwrap()
                .capabilities()
                .as_ref()
                .unwrap()
                .bounding(),
        );
        let e = apply(&mut s, &sc).unwrap();
        let mut want = before;
        want.remove(&5);
        assert_eq!(e.capabilities, Some(want));
    }

    #[test]
    fn bad_input_is_an_error() {
        let unknown = SecurityContext {
            capabilities: Some(K8sCapabilities {
                add: Some(vec!["FLY".into()]),
                drop: None,
            }),
            ..Default::default()
        };
        assert!(matches!(
            apply(&mut spec(), &unknown),
            Err(SecurityContextError::UnknownCapability(c)) if c == "FLY"
        ));
        let root = SecurityContext {
            run_as_non_root: Some(true),
            ..Default::default()
        };
        assert!(matches!(
            apply(&mut spec(), &root),
            Err(SecurityContextError::RootWithRunAsNonRoot)
        ));
        let user = SecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(33),
            ..Default::default()
        };
        assert_eq!(apply(&mut spec(), &user).unwrap().uid, Some(33));
    }

    #[test]
    fn reads_what_the_kernel_says() {
        let status = "Name:\tnginx\nUid:\t0\t0\t0\t0\nCapEff:\t00000000000000c1\nCapBnd:\t00000000000000c1\nNoNewPrivs:\t1\n";
        let mountinfo = "600 500 0:60 / / ro,relatime - overlay overlay rw\n601 600 0:61 / /run rw - tmpfs tmpfs rw\n";
        let o = observed_from(status, mountinfo);
        assert_eq!(o.cap_bounding, [0, 6, 7].into());
        assert!(o.no_new_privs && o.read_only_root);
        assert_eq!(o.uid, Some(0));
        let expected = Expected {
            capabilities: Some([0, 6, 7].into()),
            no_new_privs: true,
            read_only_root: true,
            uid: Some(0),
        };
        assert!(compare(&expected, &o).iter().all(|(ok, _)| *ok));
        // One capability too many in the container is a failure, named.
        let wider = observed_from(&status.replace("00c1\nNoNew", "00e1\nNoNew"), mountinfo);
        let facts = compare(&expected, &wider);
        assert!(!facts[0].0, "{facts:?}");
        assert!(facts[0].1.contains("KILL"), "{facts:?}");
        let rw = observed_from(status, &mountinfo.replace(" ro,", " rw,"));
        assert!(compare(&expected, &rw)
            .iter()
            .any(|(ok, what)| !ok && what.contains("read-only")));
    }
}
