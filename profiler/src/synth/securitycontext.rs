//! securityContext suggestions from a recording (in progress).
