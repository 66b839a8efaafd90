//! Drift test: `docs/errors.md` lists every error code with its number and name, so the user
//! documentation cannot fall behind the table in `src/error_code.rs`.

use rapidmq_proto::ErrorCode;

#[test]
fn errors_doc_lists_every_code_with_its_number_and_name() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/errors.md");
    let doc = std::fs::read_to_string(path).unwrap_or_else(|err| panic!("read {path}: {err}"));
    let rows: Vec<&str> = doc
        .lines()
        .filter(|line| line.trim_start().starts_with('|'))
        .collect();
    let missing: Vec<String> = ErrorCode::ALL
        .iter()
        .filter(|code| {
            let number = format!("| {} |", code.code());
            let name = format!("`{}`", code.name());
            !rows
                .iter()
                .any(|row| row.contains(&number) && row.contains(&name))
        })
        .map(|code| code.to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "docs/errors.md has no table row with the number and name of: {}",
        missing.join(", ")
    );
}
