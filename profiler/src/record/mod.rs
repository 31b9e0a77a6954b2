//! Recording: the only part of profgen that touches the kernel.
//!
//! * [`kernel`] loads the eBPF programs and reads their maps;
//! * [`facts`] decodes kernel events and [`activity`] resolves them (paths in the workload's
//!   mount namespace, fds, listening ports) into each cgroup's activity, reading what it
//!   needs of each process through `procfs`;
//! * [`live`] is the recorder every front end drives: targets added while it runs, events
//!   drained as they arrive, cgroup names learnt, a [`snapshot::Snapshot`] so far or at the
//!   end, which [`snapshot`] turns into a [`crate::model::Recording`];
//! * [`session`] is `profgen record -- CMD | --cgroup | --pid`: it picks the target cgroup,
//!   runs the workload and stops on time, exit or signal (`record --pod` and the agent are in
//!   [`crate::k8s::agent_run`]);
//! * [`progress`] is the live line every front end shows.

pub mod activity;
pub mod btf;
pub mod facts;
pub mod kernel;
pub mod live;
mod procfs;
pub mod progress;
pub mod session;
pub mod snapshot;

pub use live::{LiveOptions, LiveRecorder};
pub use session::{record, Options, TargetSpec};

use crate::cgroup::CgroupError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Permission(String),
    #[error("this profgen was built without its eBPF programs (bpf-linker was missing at build time); run `cargo xtask setup` and rebuild")]
    NoEbpf,
    #[error("{0}")]
    OldKernel(String),
    #[error("loading eBPF programs: {0}")]
    Kernel(String),
    #[error("{0}")]
    Target(String),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error("command not found: {0}")]
    CommandNotFound(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Missing privilege or kernel feature: the user must change how profgen runs.
    pub fn is_permission(&self) -> bool {
        matches!(
            self,
            Error::Permission(_) | Error::OldKernel(_) | Error::NoEbpf
        )
    }
}
