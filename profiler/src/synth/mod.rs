//! TODO
pub mod securitycontext;
