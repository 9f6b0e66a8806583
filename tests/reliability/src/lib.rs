//! Support for the reliability and security tests in `tests/`.
