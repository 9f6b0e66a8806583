//! dbops-engines (under construction).
