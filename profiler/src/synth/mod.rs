//! Synthesis: pure functions from a [`Recording`](crate::model::Recording) to profiles. One
//! module per kind of profile; they share only [`SynthError`].

pub mod apparmor;
mod error;
pub mod netpol;
pub mod seccomp;
pub mod securitycontext;

pub use error::SynthError;
pub use seccomp::{seccomp, SeccompSummary};
