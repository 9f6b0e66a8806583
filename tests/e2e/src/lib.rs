//! Support for the end-to-end tests in `tests/`: they run the built `dbops`
//! binary (and the plugin libraries next to it in the target directory)
//! against a sandbox started in the test.
