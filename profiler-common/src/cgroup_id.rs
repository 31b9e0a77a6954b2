//! Where the current task's cgroup id is, for the BTF program to read it with four loads
//! instead of calling `bpf_get_current_cgroup_id` (about half of the hook's own cost).
//!
//! `task_struct.cgroups → css_set.dfl_cgrp → cgroup.kn → kernfs_node.id`: the helper walks
//! the same chain. The offsets differ between kernel builds, so userspace reads them from the
//! running kernel's BTF and sets them before loading; all zero means "use the helper".

/// Byte offsets of the four fields, in chain order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CgroupIdPath {
    /// `task_struct.cgroups` (`struct css_set __rcu *`).
    pub task_cgroups: u32,
    /// `css_set.dfl_cgrp` (`struct cgroup *`).
    pub css_set_dfl_cgrp: u32,
    /// `cgroup.kn` (`struct kernfs_node *`).
    pub cgroup_kn: u32,
    /// `kernfs_node.id` (`u64`).
    pub kernfs_node_id: u32,
}

impl CgroupIdPath {
    /// No offsets known: the program calls the helper.
    pub const HELPER: Self = Self {
        task_cgroups: 0,
        css_set_dfl_cgrp: 0,
        cgroup_kn: 0,
        kernfs_node_id: 0,
    };

    /// Whether the program should walk the chain.
    #[inline(always)]
    pub const fn known(&self) -> bool {
        self.task_cgroups != 0
    }
}

/// Name of the program's global holding the path.
pub const GLOBAL: &str = "CGROUP_ID_PATH";

#[cfg(feature = "user")]
// SAFETY: repr(C), four u32, no padding.
unsafe impl aya::Pod for CgroupIdPath {}
