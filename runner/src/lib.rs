//! dbops (under construction).
