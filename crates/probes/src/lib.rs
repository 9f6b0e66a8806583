//! dbops-probes (under construction).
