//! SVG chart of the monthly series of a year (from the stored monthly tables): births,
//! deaths, registered and removed per month as lines, the resident population at the
//! end of each month as bars on its own scale. Text is escaped; no script, no external
//! resource.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anpr_domain::ids::CodiceIstatComune;

use super::Prospetto;

const MESI: [&str; 12] = [
    "gen", "feb", "mar", "apr", "mag", "giu", "lug", "ago", "set", "ott", "nov", "dic",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn valore(p: &Prospetto, id: u32) -> i64 {
    p.righe
        .iter()
        .find(|r| r.id_dato == id)
        .map_or(0, |r| r.conteggio.totale_complessivo)
}

/// The chart. Months without a computed table are left empty and listed in the
/// subtitle.
pub fn serie_mensile_svg(
    comune: &CodiceIstatComune,
    anno: i32,
    mesi: &BTreeMap<u32, Prospetto>,
) -> String {
    let (w, h) = (760.0_f64, 420.0_f64);
    let (sx, dx, su, giu) = (60.0, 120.0, 60.0, 50.0);
    let larghezza = w - sx - dx;
    let altezza = h - su - giu;
    let serie: [(&str, u32, &str); 4] = [
        ("Nati vivi", 5, "#1b7837"),
        ("Deceduti", 9, "#762a83"),
        ("Iscritti", 14, "#2166ac"),
        ("Cancellati", 18, "#b2182b"),
    ];
    let massimo = mesi
        .values()
        .flat_map(|p| serie.iter().map(move |(_, id, _)| valore(p, *id)))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let pop_max = mesi
        .values()
        .map(|p| valore(p, 24))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let x = |m: u32| sx + larghezza * (f64::from(m) - 0.5) / 12.0;
    let y = |v: i64| su + altezza - altezza * (v as f64) / massimo;
    let mancanti: Vec<&str> = (1..=12u32)
        .filter(|m| !mesi.contains_key(m))
        .map(|m| MESI[(m - 1) as usize])
        .collect();
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" font-family="sans-serif" font-size="12">"##
    );
    let _ = write!(
        s,
        r##"<title>Movimento della popolazione {} {anno}</title><rect width="{w}" height="{h}" fill="#ffffff"/>"##,
        escape(comune.as_str())
    );
    let _ = write!(
        s,
        r##"<text x="{sx}" y="22" font-size="15" font-weight="bold">Movimento mensile della popolazione - comune {} - {anno}</text>"##,
        escape(comune.as_str())
    );
    let sotto = if mancanti.is_empty() {
        "Tutti i mesi calcolati".to_owned()
    } else {
        format!("Mesi non calcolati: {}", mancanti.join(", "))
    };
    let _ = write!(
        s,
        r##"<text x="{sx}" y="40" fill="#555555">{}</text>"##,
        escape(&sotto)
    );
    // Population bars (right scale), light.
    for (m, p) in mesi {
        let v = valore(p, 24) as f64;
        let bh = altezza * v / pop_max;
        let _ = write!(
            s,
            r##"<rect class="popolazione" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#e0e0e0"><title>{} {anno}: popolazione {}</title></rect>"##,
            x(*m) - larghezza / 30.0,
            su + altezza - bh,
            larghezza / 15.0,
            bh,
            MESI[(*m - 1) as usize],
            v
        );
    }
    // Axes and grid.
    for i in 0..=4 {
        let v = (massimo * f64::from(i) / 4.0).round() as i64;
        let yy = y(v);
        let _ = write!(
            s,
            r##"<line x1="{sx}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#cccccc"/><text x="{:.1}" y="{:.1}" text-anchor="end">{v}</text>"##,
            sx + larghezza,
            sx - 6.0,
            yy + 4.0
        );
    }
    let _ = write!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="start" fill="#777777">popolazione max {}</text>"##,
        sx + larghezza + 6.0,
        su + 10.0,
        pop_max as i64
    );
    for m in 1..=12u32 {
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            x(m),
            su + altezza + 18.0,
            MESI[(m - 1) as usize]
        );
    }
    // Lines: consecutive computed months are joined; a gap breaks the line.
    for (i, (nome, id, colore)) in serie.iter().enumerate() {
        let mut tratto: Vec<(u32, i64)> = Vec::new();
        let mut tratti = Vec::new();
        for m in 1..=12u32 {
            match mesi.get(&m) {
                Some(p) => tratto.push((m, valore(p, *id))),
                None if !tratto.is_empty() => tratti.push(std::mem::take(&mut tratto)),
                None => {}
            }
        }
        if !tratto.is_empty() {
            tratti.push(tratto);
        }
        for t in &tratti {
            let punti: Vec<String> = t
                .iter()
                .map(|(m, v)| format!("{:.1},{:.1}", x(*m), y(*v)))
                .collect();
            let _ = write!(
                s,
                r##"<polyline class="serie" data-serie="{}" fill="none" stroke="{colore}" stroke-width="2" points="{}"/>"##,
                escape(nome),
                punti.join(" ")
            );
            for (m, v) in t {
                let _ = write!(
                    s,
                    r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colore}"><title>{} {}: {v}</title></circle>"##,
                    x(*m),
                    y(*v),
                    escape(nome),
                    MESI[(*m - 1) as usize]
                );
            }
        }
        let ly = su + 30.0 + 20.0 * i as f64;
        let lx = sx + larghezza + 10.0;
        let _ = write!(
            s,
            r##"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{colore}"/><text x="{:.1}" y="{ly:.1}">{}</text>"##,
            ly - 10.0,
            lx + 16.0,
            escape(nome)
        );
    }
    s.push_str("</svg>");
    s
}
