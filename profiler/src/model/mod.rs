//! The recording: what a workload did, as a deterministic, versioned, mergeable JSON
//! document. Everything downstream (synthesis, verification) reads only this.

mod recording;

pub use recording::*;
