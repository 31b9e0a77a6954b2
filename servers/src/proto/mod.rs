//! The servers' own protocols, spoken directly: no client binary needed on the host or in a
//! guest.

pub mod memtext;
pub mod pgwire;
pub mod resp;
