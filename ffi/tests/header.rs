//! Drift test: `include/rapidmq.h` is exactly what cbindgen generates from this crate.

use std::path::Path;

#[test]
fn the_committed_header_is_what_cbindgen_generates() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("ffi/cbindgen.toml is readable");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut generated);
    let path = crate_dir.join("include/rapidmq.h");
    if std::env::var_os("RAPIDMQ_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("write ffi/include/rapidmq.h");
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "ffi/include/rapidmq.h is stale: the C ABI changed. Regenerate it with\n  \
         RAPIDMQ_UPDATE_HEADER=1 cargo test -p rapidmq-ffi --test header\n\
         and copy it to sdk-go/include/rapidmq.h (make go-header does both)."
    );
}
