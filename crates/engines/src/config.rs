//! Configuration files, formats, TLS settings and dynamic keys per engine (owned by the patch-config work).
