//! TODO
pub mod netpol;
pub mod securitycontext;
