//! Tells the integration tests whether `mongod` is installed, so MongoDB's
//! live tests are reported as ignored (with the reason) on machines without
//! it instead of passing without running. Re-runs when a directory on PATH
//! changes, so installing MongoDB brings the tests back.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(mongod_available)");
    println!("cargo::rerun-if-env-changed=PATH");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<std::path::PathBuf> = std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/sbin", "/usr/local/bin"].map(Into::into))
        .collect();
    for dir in &dirs {
        if dir.is_dir() {
            println!("cargo::rerun-if-changed={}", dir.display());
        }
    }
    let installed = ["mongod", "mongodump", "mongorestore"]
        .iter()
        .all(|program| dirs.iter().any(|dir| dir.join(program).is_file()));
    if installed {
        println!("cargo::rustc-cfg=mongod_available");
    }
}
