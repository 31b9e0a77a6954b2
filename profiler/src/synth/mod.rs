//! Synthesis: pure functions from a [`Recording`] to profiles. One
//! module per kind of profile; they share only [`SynthError`].

pub mod apparmor;
mod error;
pub mod netpol;
pub mod seccomp;
pub mod securitycontext;
pub mod spo;

pub use error::SynthError;
pub use seccomp::{seccomp, SeccompOptions, SeccompSummary};

use std::borrow::Cow;

use crate::model::{Activity, FileAccess, FileOp, Recording};

/// Everything the recording's cgroups did, as the activity of one workload.
///
/// A recording of several cgroups (the containers of a pod, a process tree that made
/// sub-cgroups) yields one set of artifacts allowing what any of them did, the same way the
/// seccomp profile is the union of their syscalls. Per-container artifacts come from
/// per-container recordings (`profgen record --pod` writes one per container).
///
/// Directories are named as AppArmor names them, with a trailing `/`: a path that was made or
/// removed with mkdir/rmdir is a directory even when the recording wrote it without the slash
/// (AppArmor's `mkdir` check is on `dir/`, so `dir w,` would be denied).
///
/// Borrowed from the recording when it holds one cgroup whose directories already end in `/`
/// (what the recorder writes): a recording of a million files is not copied.
pub fn workload_activity(rec: &Recording) -> Cow<'_, Activity> {
    let is_dir = |f: &FileAccess| f.ops.contains(&FileOp::Mkdir) || f.ops.contains(&FileOp::Rmdir);
    let unnamed_dir = |f: &FileAccess| is_dir(f) && !f.path.0.ends_with(b"/");
    let mut activity = match rec.cgroups.as_slice() {
        [] => return Cow::Owned(Activity::default()),
        [one] if !one.activity.files.iter().any(unnamed_dir) => {
            return Cow::Borrowed(&one.activity)
        }
        // `Recording::merge`'s rules for one cgroup seen twice (files by path/failed/owned,
        // "capabilities not recorded" giving way to a run that recorded them, …), every
        // cgroup taken as the first one.
        cgroups => crate::model::fold_as_one(cgroups),
    };
    for f in &mut activity.files {
        if unnamed_dir(f) {
            f.path.0.push(b'/');
        }
    }
    Cow::Owned(activity)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    use crate::model::{FileAccess, FileOp, FsPath};

    fn rec(activities: Vec<Activity>) -> Recording {
        let cgroups: Vec<serde_json::Value> = activities
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                serde_json::json!({
                    "id": i + 1, "path": format!("/pod/c{i}"), "seccomp_filter_seen": true,
                    "syscalls": {"x86_64": ["read"]}, "activity": a
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "schema_version": 1,
            "profgen_version": "0.1.0",
            "host": {"kernel_release": "6.18.0", "machine": "x86_64"},
            "started_at": "2026-01-01T00:00:00Z",
            "ended_at": "2026-01-01T00:01:00Z",
            "target": {"kind": "cgroup", "cgroup": "/pod"},
            "events_lost": {},
            "cgroups": cgroups
        }))
        .unwrap()
    }

    fn file(path: &str, op: FileOp) -> FileAccess {
        FileAccess {
            path: FsPath::from(path),
            ops: BTreeSet::from([op]),
            failed: false,
            owned: false,
        }
    }

    #[test]
    fn several_cgroups_become_one_workload() {
        let a = Activity {
            files: vec![file("/etc/app.conf", FileOp::Read)],
            capabilities: None,
            uids: BTreeSet::from([0]),
            ..Default::default()
        };
        let b = Activity {
            files: vec![file("/etc/app.conf", FileOp::Write)],
            capabilities: Some(BTreeSet::from(["chown".to_string()])),
            uids: BTreeSet::from([33]),
            ..Default::default()
        };
        let both = rec(vec![a.clone(), b]);
        let all = workload_activity(&both);
        assert_eq!(all.files.len(), 1);
        assert_eq!(
            all.files[0].ops,
            BTreeSet::from([FileOp::Read, FileOp::Write])
        );
        assert_eq!(
            all.capabilities,
            Some(BTreeSet::from(["chown".to_string()]))
        );
        assert_eq!(all.uids, BTreeSet::from([0, 33]));
        assert_eq!(*workload_activity(&rec(vec![a.clone()])), a);
        assert!(workload_activity(&rec(vec![])).is_empty());
    }

    #[test]
    fn made_directories_are_named_with_a_slash() {
        let a = Activity {
            files: vec![
                file("/var/lib/nginx/body", FileOp::Mkdir),
                file("/run/old/", FileOp::Rmdir),
                file("/run/nginx.pid", FileOp::Write),
            ],
            ..Default::default()
        };
        let paths: Vec<String> = workload_activity(&rec(vec![a]))
            .files
            .iter()
            .map(|f| f.path.to_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            paths,
            ["/var/lib/nginx/body/", "/run/old/", "/run/nginx.pid"]
        );
    }
}
