//! Compiles proto/etcd.proto (the etcd KV.Put subset) with protox, so no
//! system protoc is needed, and generates a tonic client only.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("proto");
    println!("cargo:rerun-if-changed={}", root.join("etcd.proto").display());
    let fds = protox::compile(["etcd.proto"], [&root])?;
    tonic_prost_build::configure().build_server(false).compile_fds(fds)?;
    Ok(())
}
