//! Proving an AppArmor profile: the real parser, and enforcement in a VM whose kernel has
//! AppArmor.

pub mod parser;
