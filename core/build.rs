//! Embeds the git revision the core is built from as `RAPIDMQ_GIT_REVISION`, which every SDK
//! reports beside the version (`rapidmq --version`, `rapidmq.__git_revision__`, …).
//!
//! In order: the `RAPIDMQ_GIT_REVISION` environment variable (a release build may set it), the
//! checkout's `HEAD`, the `.cargo_vcs_info.json` that `cargo package` writes into a published
//! crate, else "unknown".

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=RAPIDMQ_GIT_REVISION");
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest_dir);
    let revision = std::env::var("RAPIDMQ_GIT_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| checkout_revision(dir))
        .or_else(|| packaged_revision(dir))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=RAPIDMQ_GIT_REVISION={revision}");
}

/// `git rev-parse` of the checkout `dir` is in, watching the files that move when it changes.
fn checkout_revision(dir: &Path) -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
    };
    let revision = git(&["rev-parse", "--short=12", "HEAD"])?;
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        let git_dir = Path::new(&git_dir);
        watch(&git_dir.join("HEAD"));
        watch(&git_dir.join("packed-refs"));
        if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watch(&git_dir.join(head));
        }
    }
    Some(revision)
}

/// Reruns the script when `path` changes. Only a file that exists: cargo counts a missing one
/// as changed on every build, which would rebuild the core and everything on it each time.
fn watch(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// The `"sha1"` that `cargo package` recorded in `.cargo_vcs_info.json`.
fn packaged_revision(dir: &Path) -> Option<String> {
    let path = dir.join(".cargo_vcs_info.json");
    watch(&path);
    let info = std::fs::read_to_string(path).ok()?;
    let after = &info[info.find("\"sha1\"")? + "\"sha1\"".len()..];
    let start = after.find('"')? + 1;
    let sha1 = &after[start..];
    let sha1 = &sha1[..sha1.find('"')?];
    Some(sha1.chars().take(12).collect())
}
