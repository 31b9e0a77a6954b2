//! Proving a profile: enforce it and re-run the workload's tests.

/// The profile was enforced and the workload failed under it, or a probe outside it was not
/// refused.
#[derive(Debug, thiserror::Error)]
#[error("verification failed: {0}")]
pub struct VerifyFailed(pub String);
