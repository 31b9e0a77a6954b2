//! Recording: load the eBPF programs, target cgroups, drain the maps into a recording.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("permission denied: {0}")]
    Permission(String),
}

impl Error {
    pub fn is_permission(&self) -> bool {
        matches!(self, Error::Permission(_))
    }
}
