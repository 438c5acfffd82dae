//! Printing a stored ISTAT table: PDF/A-2b through `anpr-certificati`'s document writer,
//! and CSV (one line per row, then the breakdown).

use anpr_certificati::{Blocco, Documento};
use anpr_domain::caller::Ambiente;
use chrono::{DateTime, Utc};

use super::Prospetto;

fn periodo(p: &Prospetto) -> String {
    match p.mese {
        Some(m) => format!("{m:02}/{}", p.anno),
        None => format!("anno {}", p.anno),
    }
}

/// The table as CSV: `idDato,descrizione,totaleMaschi,totaleFemmine,totaleComplessivo`,
/// then the breakdown rows (`codiceStato`, `annoNascita`, `statoCivile`).
pub(crate) fn csv(p: &Prospetto) -> Result<Vec<u8>, String> {
    let mut w = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    let e = |x: csv::Error| x.to_string();
    w.write_record([
        "comune",
        "tipologiaProspetto",
        "periodo",
        "dal",
        "al",
        "provvisorio",
    ])
    .map_err(e)?;
    w.write_record([
        p.comune.to_string(),
        p.tipologia_prospetto.to_string(),
        periodo(p),
        p.dal.to_string(),
        p.al.to_string(),
        if p.provvisorio { "S" } else { "N" }.to_owned(),
    ])
    .map_err(e)?;
    w.write_record([
        "idDato",
        "descrizione",
        "totaleMaschi",
        "totaleFemmine",
        "totaleComplessivo",
    ])
    .map_err(e)?;
    for r in &p.righe {
        w.write_record([
            r.id_dato.to_string(),
            r.descrizione.clone(),
            r.conteggio.totale_maschi.to_string(),
            r.conteggio.totale_femmine.to_string(),
            r.conteggio.totale_complessivo.to_string(),
        ])
        .map_err(e)?;
    }
    if !p.dettaglio.is_empty() {
        w.write_record([
            "codiceStato",
            "annoNascita",
            "statoCivile",
            "totaleMaschi",
            "totaleFemmine",
            "totaleComplessivo",
        ])
        .map_err(e)?;
        for d in &p.dettaglio {
            w.write_record([
                d.codice_stato.clone().unwrap_or_default(),
                d.anno_nascita.map(|a| a.to_string()).unwrap_or_default(),
                d.stato_civile.clone().unwrap_or_default(),
                d.conteggio.totale_maschi.to_string(),
                d.conteggio.totale_femmine.to_string(),
                d.conteggio.totale_complessivo.to_string(),
            ])
            .map_err(e)?;
        }
    }
    w.into_inner().map_err(|x| x.to_string())
}

/// The table as PDF/A-2b: a header naming the municipality and period, one line per row
/// (males, females, total), the breakdown, the balance check and the notes; outside
/// production the environment's watermark.
pub(crate) fn pdf(
    p: &Prospetto,
    ambiente: Ambiente,
    adesso: DateTime<Utc>,
) -> Result<Vec<u8>, String> {
    let nome_comune = anpr_tables::tables()
        .comune_by_istat(&p.comune, p.al)
        .map(|c| c.nome.clone())
        .unwrap_or_else(|| p.comune.to_string());
    let mut corpo = vec![
        Blocco::Titolo(format!("Prospetto ISTAT n. {}", p.tipologia_prospetto)),
        Blocco::Sottotitolo(p.descrizione.clone()),
        Blocco::Spazio,
        Blocco::Campo {
            etichetta: "Comune".into(),
            valore: format!("{nome_comune} ({})", p.comune),
        },
        Blocco::Campo {
            etichetta: "Periodo".into(),
            valore: format!("{} (dal {} al {})", periodo(p), p.dal, p.al),
        },
        Blocco::Campo {
            etichetta: "Calcolato il".into(),
            valore: format!(
                "{}{}",
                p.calcolato_il.format("%d/%m/%Y %H:%M UTC"),
                if p.provvisorio { " - PROVVISORIO" } else { "" }
            ),
        },
        Blocco::Separatore,
    ];
    // One wrapped line per row: descriptions are long and must not run into the numbers.
    for r in &p.righe {
        corpo.push(Blocco::Paragrafo(format!(
            "{}. {}: M {}, F {}, totale {}",
            r.id_dato,
            r.descrizione,
            r.conteggio.totale_maschi,
            r.conteggio.totale_femmine,
            r.conteggio.totale_complessivo
        )));
    }
    if !p.dettaglio.is_empty() {
        corpo.push(Blocco::Separatore);
        corpo.push(Blocco::Sottotitolo("Dettaglio".into()));
        for d in &p.dettaglio {
            let mut chiave = Vec::new();
            if let Some(s) = &d.codice_stato {
                let nome = anpr_tables::tables()
                    .stato_estero_by_istat(s, None)
                    .map(|x| x.nome.clone())
                    .unwrap_or_default();
                chiave.push(format!("cittadinanza {s} {nome}"));
            }
            if let Some(a) = d.anno_nascita {
                chiave.push(format!("nati nel {a}"));
            }
            if let Some(sc) = &d.stato_civile {
                chiave.push(format!("stato civile {sc}"));
            }
            corpo.push(Blocco::Campo {
                etichetta: chiave.join(", "),
                valore: format!(
                    "M {}   F {}   Totale {}",
                    d.conteggio.totale_maschi,
                    d.conteggio.totale_femmine,
                    d.conteggio.totale_complessivo
                ),
            });
        }
    }
    if let Some(q) = &p.quadratura {
        corpo.push(Blocco::Separatore);
        corpo.push(Blocco::Paragrafo(format!(
            "Quadratura: popolazione iniziale {} + saldo {} + caricati dal subentro {} = {}; popolazione finale {} (differenza {}).",
            q.popolazione_inizio,
            q.saldo,
            q.iscritti_subentro,
            q.popolazione_inizio + q.saldo + q.iscritti_subentro,
            q.popolazione_fine,
            q.differenza
        )));
    }
    for n in &p.note {
        corpo.push(Blocco::Paragrafo(n.clone()));
    }
    let doc = Documento {
        logo: None,
        titolo_metadati: format!("Prospetto ISTAT {} - {} - {}", p.tipologia_prospetto, p.comune, periodo(p)),
        intestazione: vec![
            "ANAGRAFE NAZIONALE DELLA POPOLAZIONE RESIDENTE".into(),
            format!("Comune di {nome_comune}"),
            "Prospetto di supporto alle rilevazioni demografiche ISTAT".into(),
        ],
        corpo,
        filigrana: (ambiente != Ambiente::Produzione)
            .then(|| format!("BOZZA / ANTEPRIMA - ambiente di {}", ambiente.as_str())),
        qr: None,
        piede: vec![
            "Elaborato da ANPR sui dati anagrafici per data di decorrenza: i prospetti sono di supporto alle rilevazioni comunali.".into(),
        ],
        creato: adesso,
        id_file: {
            let mut id = [0u8; 16];
            let h = sha2::Sha256::digest(format!("{}{}{:?}{}", p.comune, p.anno, p.mese, p.calcolato_il).as_bytes());
            id.copy_from_slice(&h[..16]);
            id
        },
    };
    anpr_certificati::genera_pdf(&doc).map_err(|e| e.to_string())
}

use sha2::Digest;
