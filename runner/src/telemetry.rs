//! OpenTelemetry and log set-up (under construction).
