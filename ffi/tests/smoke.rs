//! The C smoke test: compiles `tests/smoke.c` with the system C compiler against the static
//! library and the generated header, and runs it against a real broker from the shared harness.

use std::path::{Path, PathBuf};
use std::process::Command;

use rapidmq_testkit::TestBroker;

/// `target/<profile>`, where cargo put `librapidmq_ffi.a` before building this test.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

#[test]
fn the_c_smoke_program_runs_end_to_end_against_a_broker() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    // `cargo build` puts the library in target/<profile>; `cargo test` leaves the copy it
    // builds for the test run in target/<profile>/deps. Take the newer one.
    let candidates =
        [profile_dir().join("deps"), profile_dir()].map(|d| d.join("librapidmq_ffi.a"));
    let lib = candidates
        .iter()
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| panic!("librapidmq_ffi.a was not built: looked for {candidates:?}"));
    let out_dir = tempfile::tempdir().expect("temp dir");
    let exe = out_dir.path().join("smoke");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let compiled = Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&exe)
        .arg(crate_dir.join("tests/smoke.c"))
        .arg("-I")
        .arg(crate_dir.join("include"))
        .arg(&lib)
        .args(["-lpthread", "-ldl", "-lm", "-lrt"])
        .output()
        .expect("run the C compiler (cc)");
    assert!(
        compiled.status.success(),
        "cc failed:\n{}",
        String::from_utf8_lossy(&compiled.stderr)
    );

    let broker = TestBroker::start();
    let run = Command::new(&exe)
        .arg(broker.grpc_url())
        .output()
        .expect("run the smoke program");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && stdout.contains("smoke: ok"),
        "smoke program failed ({}):\nstdout:\n{stdout}\nstderr:\n{}\nbroker log:\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr),
        broker.log()
    );
}
