//! dbops-config-formats (under construction).
