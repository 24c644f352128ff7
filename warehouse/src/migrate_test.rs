#![allow(clippy::unwrap_used)]
use super::{COPIES_UNTIL, STATEMENTS};

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
        // Creates only what is missing, drops only what exists, changes a column to the
        // type it keeps after, or copies only the rows not copied yet.
        let idempotent = sql.contains("IF NOT EXISTS")
            || sql.contains("DROP TABLE IF EXISTS")
            || sql.contains("MODIFY COLUMN")
            || (sql.contains("INSERT INTO") && sql.contains("NOT IN (SELECT"));
        assert!(idempotent, "{file} is not idempotent");
    }
}

#[test]
fn each_copy_is_gated_by_a_view_a_later_statement_creates() {
    for (copy, view) in COPIES_UNTIL {
        let at = STATEMENTS.iter().position(|(f, _)| f == copy).unwrap();
        let creates = format!("CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{view}\n");
        assert!(
            STATEMENTS[at + 1..]
                .iter()
                .any(|(_, sql)| sql.contains(&creates)),
            "{copy}: no later statement creates {view}"
        );
    }
}
