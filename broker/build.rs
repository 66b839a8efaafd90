//! Generates the node-to-node `Cluster` service from `proto/rapidmq/cluster/v1/cluster.proto`
//! with the vendored protoc, as `rapidmq-proto` does for the client API. It lives here, not in
//! `rapidmq-proto`, because no client speaks it: the SDKs never compile it.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; prost-build reads PROTOC from the environment.
    unsafe { std::env::set_var("PROTOC", protoc) };
    tonic_prost_build::configure()
        .bytes(".")
        .compile_protos(&["proto/rapidmq/cluster/v1/cluster.proto"], &["proto"])?;
    Ok(())
}
