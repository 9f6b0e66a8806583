//! dbops-certs (under construction).
