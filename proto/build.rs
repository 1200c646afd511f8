//! Compiles `iea/**/*.proto` with protox (pure Rust: no system `protoc`), generates the
//! tonic clients and servers, and writes the descriptor set that server reflection serves.

use std::path::PathBuf;

/// Messages that carry a secret: prost's derived `Debug` would print it, so the crate
/// writes a redacting `Debug` by hand for each (see `src/redact.rs`).
const SECRET_MESSAGES: &[&str] = &[
    "iea.common.v1.ProxySettings",
    "iea.agent.v1.DeclarantIdentity",
    // DSN content (personal data): its Debug prints the size only.
    "iea.agent.v1.DepositChunk",
    "iea.agent.v1.DownloadReturnChunk",
    "iea.v1.DsnUpload",
    // Personal data (NIR, matricule, withholding rate): Debug prints none of them.
    "iea.v1.PasRate",
    "iea.agent.v1.InstallationIdentity",
    "iea.v1.LoginRequest",
    "iea.v1.LoginResponse",
    "iea.v1.AddUserRequest",
    "iea.v1.ChangePasswordRequest",
    "iea.v1.SetCredentialsRequest",
    "iea.v1.NetEntreprisesIdentity",
    "iea.v1.DeactivateAssistanceRequest",
    "iea.v1.ProxyView",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let mut protos = Vec::new();
    collect(&root.join("iea"), &mut protos)?;
    protos.sort();
    for p in &protos {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    let fds = protox::compile(&protos, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("iea_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .skip_debug(SECRET_MESSAGES.iter().copied())
        .emit_rerun_if_changed(false)
        .compile_fds(fds)?;
    Ok(())
}

fn collect(dir: &std::path::Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    println!("cargo:rerun-if-changed={}", dir.display());
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
