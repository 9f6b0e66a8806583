//! The end-to-end tests link this plugin and the health-check plugin into one
//! test binary; both export the entry symbol `dbops_plugin_v1`, which the
//! tests never call (they run the steps through `TestHost`). Allow the
//! duplicate in test binaries only; the cdylib keeps exactly one.

fn main() {
    println!("cargo:rustc-link-arg-tests=-Wl,--allow-multiple-definition");
}
