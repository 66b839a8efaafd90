//! Generates the prost messages and tonic services from `rapidmq/v1/*.proto` with the vendored
//! protoc, so no system protoc is needed. Payload fields are `bytes::Bytes`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; prost-build reads PROTOC from the environment.
    unsafe { std::env::set_var("PROTOC", protoc) };

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let protos = [
        "rapidmq/v1/common.proto",
        "rapidmq/v1/messaging.proto",
        "rapidmq/v1/admin.proto",
        "rapidmq/v1/auth.proto",
    ];
    tonic_prost_build::configure()
        .bytes(".")
        .file_descriptor_set_path(out_dir.join("rapidmq_descriptor.bin"))
        .compile_protos(&protos, &["."])?;
    Ok(())
}
