//! Compiles proto/ into Rust without a system protoc: protox parses the files into a descriptor
//! set, tonic-prost-build generates messages, clients and servers from it.

const PROTOS: &[&str] = &[
    "mvccpb/kv.proto",
    "authpb/auth.proto",
    "etcdserverpb/rpc.proto",
    "v3electionpb/v3election.proto",
    "v3lockpb/v3lock.proto",
    "peer.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    for p in PROTOS {
        println!("cargo:rerun-if-changed=proto/{p}");
    }
    let fds = protox::compile(PROTOS, ["proto"])?;
    let mut config = tonic_prost_build::configure()
        // The replicated log carries etcd requests as they arrive, so they must serialize.
        .type_attribute(".", "#[derive(serde::Serialize, serde::Deserialize)]");
    // serde sees a `Vec<u8>` as a sequence and codes it one byte at a time (a fifth of the
    // leader's CPU at 100 clients went to keys and values); as bytes it is one copy. bincode
    // writes both the same way (length, then the bytes), so the log on disk reads back.
    for path in bytes_fields(&fds) {
        config = config.field_attribute(path, "#[serde(with = \"serde_bytes\")]");
    }
    config.compile_fds(fds)?;
    Ok(())
}

/// Every singular `bytes` field, as prost-build names it: `.package.Message.field`.
fn bytes_fields(fds: &prost_types::FileDescriptorSet) -> Vec<String> {
    fn walk(prefix: &str, message: &prost_types::DescriptorProto, out: &mut Vec<String>) {
        let name = format!("{prefix}.{}", message.name());
        for field in &message.field {
            let bytes = field.r#type() == prost_types::field_descriptor_proto::Type::Bytes;
            let repeated = field.label() == prost_types::field_descriptor_proto::Label::Repeated;
            if bytes && !repeated {
                out.push(format!("{name}.{}", field.name()));
            }
        }
        for nested in &message.nested_type {
            walk(&name, nested, out);
        }
    }
    let mut out = Vec::new();
    for file in &fds.file {
        let package = format!(".{}", file.package());
        for message in &file.message_type {
            walk(&package, message, &mut out);
        }
    }
    out
}
