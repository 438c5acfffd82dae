//! Codice fiscale hot paths against a same-run baseline (upper-casing a 16-byte string,
//! the least work any code handling a CF does).

use std::hint::black_box;

use anpr_domain::codice_fiscale::{calcola, omocodici, verifica, DatiCalcolo};
use anpr_domain::ids::{CodiceCatastale, Sesso};
use chrono::NaiveDate;
use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let luogo: CodiceCatastale = "H501".parse().expect("valid code");
    let dati = DatiCalcolo {
        cognome: "D'Àngelo",
        nome: "Maria Grazia",
        sesso: Sesso::Femmina,
        data_nascita: NaiveDate::from_ymd_opt(1980, 5, 17).expect("valid date"),
        luogo_nascita: &luogo,
    };
    let cf = calcola(&dati).expect("computable");
    let text = cf.to_string();
    let mut g = c.benchmark_group("codice_fiscale");
    g.bench_function("baseline_uppercase_16", |b| {
        b.iter(|| black_box(black_box("rssmra80a01h501u").to_ascii_uppercase()))
    });
    g.bench_function("calcola", |b| b.iter(|| calcola(black_box(&dati))));
    g.bench_function("verifica", |b| b.iter(|| verifica(black_box(&text))));
    g.bench_function("omocodici", |b| b.iter(|| omocodici(black_box(&cf))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
