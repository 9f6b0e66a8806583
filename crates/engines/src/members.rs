//! Member roles, restart order, default probes and ports per engine (owned by the rolling-restart / health-check work).
