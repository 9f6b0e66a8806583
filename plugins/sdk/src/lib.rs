//! dbops-plugin-sdk (under construction).
