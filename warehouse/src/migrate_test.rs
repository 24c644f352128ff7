#![allow(clippy::unwrap_used)]
use super::STATEMENTS;

#[test]
fn embeds_every_ddl_file_in_name_order() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/clickhouse");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    on_disk.sort();
    let embedded: Vec<&str> = STATEMENTS.iter().map(|(f, _)| *f).collect();
    assert_eq!(embedded, on_disk);
}

#[test]
fn every_statement_names_the_database_placeholder() {
    for (file, sql) in STATEMENTS {
        assert!(sql.contains("{db}."), "{file} does not use {{db}}");
        // Creates only what is missing, drops only what exists, or changes a column to the
        // type it keeps after.
        let idempotent = sql.contains("IF NOT EXISTS")
            || sql.contains("DROP TABLE IF EXISTS")
            || sql.contains("MODIFY COLUMN");
        assert!(idempotent, "{file} is not idempotent");
    }
}
