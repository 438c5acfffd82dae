//! Lookup costs of the decoding tables, against a same-run baseline: a plain
//! `HashMap<String, u32>` lookup of a six-character key, the cheapest thing a hand-written
//! code table could do.
//!
//! Run with `cargo bench -p anpr-tables --bench lookup`.

use std::collections::HashMap;
use std::hint::black_box;

use anpr_domain::ids::{CodiceCatastale, CodiceIstatComune};
use anpr_tables::{data_files, tables, Tables};
use chrono::NaiveDate;
use criterion::{criterion_group, criterion_main, Criterion};

fn lookups(c: &mut Criterion) {
    let t = tables();
    let at = NaiveDate::from_ymd_opt(2020, 6, 1).expect("valid date");
    let roma: CodiceIstatComune = "058091".parse().expect("valid code");
    let h501: CodiceCatastale = "H501".parse().expect("valid code");
    let z404: CodiceCatastale = "Z404".parse().expect("valid code");

    // The baseline map holds as many keys as there are ISTAT codes, so it has the same
    // size (and cache behaviour) as the real index.
    let baseline: HashMap<String, u32> = t
        .comuni()
        .iter()
        .map(|c| (c.istat.as_str().to_owned(), c.id))
        .collect();

    let mut group = c.benchmark_group("tables");
    group.bench_function("baseline_hashmap_string_get", |b| {
        b.iter(|| baseline.get(black_box("058091")))
    });
    group.bench_function("comune_by_istat_at_date", |b| {
        b.iter(|| t.comune_by_istat(black_box(&roma), black_box(at)))
    });
    group.bench_function("comune_by_catastale_at_date", |b| {
        b.iter(|| t.comune_by_catastale(black_box(&h501), black_box(at)))
    });
    group.bench_function("comuni_by_name_at_date", |b| {
        b.iter(|| t.comuni_by_name(black_box("Città di Castello"), black_box(Some(at))))
    });
    group.bench_function("stato_estero_by_catastale", |b| {
        b.iter(|| t.stato_estero_by_catastale(black_box(&z404), black_box(at)))
    });
    group.bench_function("code_stato_civile", |b| {
        b.iter(|| {
            t.code(
                black_box("stato_civile"),
                black_box("2"),
                black_box(Some(at)),
            )
        })
    });
    group.finish();

    let mut parse = c.benchmark_group("parse");
    parse.sample_size(10);
    parse.bench_function("all_embedded_tables", |b| {
        b.iter(|| Tables::from_data_files(data_files().iter().map(|f| (f.name, f.contents))))
    });
    parse.finish();
}

criterion_group!(benches, lookups);
criterion_main!(benches);
