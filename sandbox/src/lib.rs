//! dbops-sandbox (under construction).
