//! The recording: what a workload did, as a deterministic, versioned, mergeable JSON
//! document. Everything downstream (synthesis, verification) reads only this.

pub mod activity;
pub mod args;
pub mod coverage;
mod error;
mod io;
mod merge;
mod recording;

pub use activity::*;
pub use args::{ArgSet, ArgValues, CallArgs};
pub use coverage::{Coverage, SeenFlow, SeenPath};
pub use error::ModelError;
pub(crate) use merge::fold_as_one;
pub use recording::*;

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;
