//! Integrity of the embedded data set: every file in `data/` is embedded, every file
//! matches the SHA-256 the generator recorded, and a damaged data set is refused with a
//! clear error instead of a panic.

use std::collections::BTreeSet;

use anpr_tables::{data_files, tables, Tables};
use sha2::{Digest, Sha256};

fn sha256(contents: &str) -> String {
    hex::encode(Sha256::digest(contents.as_bytes()))
}

fn file(name: &str) -> &'static str {
    data_files()
        .iter()
        .find(|file| file.name == name)
        .map(|file| file.contents)
        .unwrap_or_default()
}

#[test]
fn every_data_file_is_embedded() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("the data directory is readable")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    let embedded: BTreeSet<String> = data_files().iter().map(|f| f.name.to_owned()).collect();
    assert_eq!(embedded, on_disk);
}

#[test]
fn files_match_the_recorded_hashes() {
    let t = tables();
    for info in t.table_names() {
        assert_eq!(
            sha256(file(&info.file)),
            info.sha256,
            "{} against manifest.csv",
            info.file
        );
    }
    let sums = file("SHA256SUMS");
    let mut listed = 0;
    for line in sums.lines() {
        let (hash, name) = line.split_once("  ").unwrap_or_default();
        assert_eq!(sha256(file(name)), hash, "{name} against SHA256SUMS");
        listed += 1;
    }
    assert_eq!(
        listed,
        t.table_names().len() + 1,
        "every table plus the manifest is listed"
    );
    assert_eq!(
        sha256(sums),
        t.version().content_sha256,
        "content hash in VERSION"
    );
}

/// The embedded files with one of them replaced (or removed when `replacement` is None).
fn with_file<'a>(name: &str, replacement: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    data_files()
        .iter()
        .filter_map(|f| {
            if f.name == name {
                replacement.map(|contents| (f.name, contents))
            } else {
                Some((f.name, f.contents))
            }
        })
        .collect()
}

#[test]
fn damaged_data_sets_are_refused() {
    let truncated_comuni: String = file("comuni.csv").split_inclusive('\n').take(100).collect();
    let bad_date = file("stato_civile.csv").replacen(",,,\n", ",,31/12/2015,\n", 1);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            with_file("VERSION", None),
            "VERSION:0: file missing from the data set",
        ),
        (
            with_file("lingue.csv", None),
            "lingue.csv:0: file missing from the data set",
        ),
        (
            with_file("comuni.csv", Some(&truncated_comuni)),
            "comuni.csv:0: 99 rows, the manifest says 19352",
        ),
        (
            with_file("stato_civile.csv", Some(&bad_date)),
            "stato_civile.csv:2: valid_from: not an ISO date: \"31/12/2015\"",
        ),
        (
            with_file("errori.csv", Some("code,severity\n")),
            "errori.csv:1: header lacks column \"text\"",
        ),
    ];
    for (files, expected) in cases {
        let error = Tables::from_data_files(files).err().map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some(expected));
    }
}
