//! ISTAT tables over HTTP on SQLite and PostgreSQL (SPEC M-5.4): the monthly movement
//! table of a municipality equals the counts of the operations that produced it, a
//! transfer between two municipalities counts once in each, the balance closes, and the
//! stored table prints as CSV and as PDF (parsed back with pdftotext when installed).

mod common;

use std::time::Duration;

use common::{famiglia, soggetto, Server};
use serde_json::{json, Value};

fn chi(id: &str) -> Value {
    json!({"idSchedaSoggettoANPR": id})
}

#[allow(clippy::too_many_arguments)]
fn iscrizione(
    id: u64,
    cognome: &str,
    nome: &str,
    sesso: &str,
    nascita: &str,
    decorrenza: &str,
    fam: Option<&str>,
    legame: &str,
) -> Value {
    let mut f = json!({"codiceLegame": legame});
    if let Some(x) = fam {
        f["idFamigliaConvivenzaANPR"] = json!(x);
    }
    json!({
        "idOperazioneComune": id.to_string(),
        "motivoIscrizione": {"idMotivoIscrizione": "4"},
        "dataDecorrenza": decorrenza,
        "generalita": {"cognome": cognome, "nome": nome, "sesso": sesso, "dataNascita": nascita, "luogoNascita": "Z404"},
        "cittadinanza": [{"codiceStato": "100"}],
        "provenienza": {"codiceStato": "404"},
        "residenza": {"comune": "058091", "cap": "00184", "toponimo": {"specie": "VIA", "denominazioneToponimo": "Nazionale"}, "numeroCivico": {"numero": "10"}},
        "famiglia": f
    })
}

/// Computes a table and waits for it; the table.
async fn prospetto(s: &Server, body: Value) -> (String, Value) {
    let (st, v) = s.post("/api/v1/statistiche/prospetti", &body).await;
    assert_eq!(st, 202, "{v}");
    let id = v["idOperazioneANPR"].as_str().unwrap().to_owned();
    let id_operatore: Vec<(&str, &str)> = s
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for _ in 0..400 {
        let (st, v, _) = s
            .get_id(
                &format!("/api/v1/statistiche/prospetti/{id}"),
                &id_operatore,
            )
            .await;
        if st == 200 {
            return (id, v);
        }
        assert_eq!(st, 422, "{v}");
        assert!(
            ["EN108", "EN109"].contains(&common::codici(&v)[0].as_str()),
            "{v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("table not computed");
}

fn riga(p: &Value, id: u64) -> (i64, i64, i64) {
    let r = p["righe"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["idDato"] == id)
        .unwrap_or_else(|| panic!("row {id}: {p}"));
    (
        r["totaleMaschi"].as_i64().unwrap(),
        r["totaleFemmine"].as_i64().unwrap(),
        r["totaleComplessivo"].as_i64().unwrap(),
    )
}

async fn movimento_mensile(mut s: Server) {
    anpr_service::estrazioni::avvia_lavoratore(s.registry.clone());
    // January 2024: five residents of Rome (3 men, 2 women).
    let a = s
        .ok(
            "1002",
            &iscrizione(
                1,
                "Rossi",
                "Anna",
                "F",
                "1985-01-01",
                "2024-01-10",
                None,
                "1",
            ),
        )
        .await;
    let (anna, fam) = (soggetto(&a), famiglia(&a));
    let marco = soggetto(
        &s.ok(
            "1002",
            &iscrizione(
                2,
                "Rossi",
                "Marco",
                "M",
                "1984-02-02",
                "2024-01-10",
                Some(&fam),
                "2",
            ),
        )
        .await,
    );
    let carla = soggetto(
        &s.ok(
            "1002",
            &iscrizione(
                3,
                "Verdi",
                "Carla",
                "F",
                "1990-03-03",
                "2024-01-10",
                None,
                "1",
            ),
        )
        .await,
    );
    let dario = soggetto(
        &s.ok(
            "1002",
            &iscrizione(
                4,
                "Neri",
                "Dario",
                "M",
                "1991-04-04",
                "2024-01-10",
                None,
                "1",
            ),
        )
        .await,
    );
    let elio = soggetto(
        &s.ok(
            "1002",
            &iscrizione(
                5,
                "Bruni",
                "Elio",
                "M",
                "1940-05-05",
                "2024-01-10",
                None,
                "1",
            ),
        )
        .await,
    );

    // March 2024, Rome: one woman immigrates from abroad, a boy is born in Rome, Dario
    // emigrates keeping AIRE, Elio dies; Carla moves to Milan (registered by Milan).
    s.ok(
        "1002",
        &iscrizione(
            6,
            "Galli",
            "Fabia",
            "F",
            "1995-06-06",
            "2024-03-05",
            None,
            "1",
        ),
    )
    .await;
    s.ok("1001", &json!({
        "idOperazioneComune": "7",
        "generalita": {"cognome": "Rossi", "nome": "Paolo", "sesso": "M", "dataNascita": "2024-03-07", "luogoNascita": "H501"},
        "attoNascita": {"comuneRegistrazione": "058091", "anno": 2024, "numeroAtto": "12", "parte": "1", "serie": "A"},
        "cittadinanza": [{"codiceStato": "100"}],
        "paternita": chi(&marco),
        "maternita": chi(&anna)
    })).await;
    s.ok("2003", &json!({
        "idOperazioneComune": "8", "motivoCancellazione": "8", "dataDecorrenza": "2024-03-15",
        "soggetto": chi(&dario),
        "aire": {"consolato": "2300300", "residenzaEstera": {"codiceStato": "216", "localita": "Berlin", "indirizzo": "Unter den Linden 1"}}
    })).await;
    s.ok(
        "2001",
        &json!({
            "idOperazioneComune": "9", "motivoCancellazione": "1",
            "soggetto": chi(&elio), "datiDecesso": {"dataMorte": "2024-03-20"}
        }),
    )
    .await;
    s.come_comune("015146");
    s.ok("5005", &json!({
        "idOperazioneComune": "1", "dataDecorrenza": "2024-03-12",
        "soggetti": [chi(&carla)],
        "residenza": {"comune": "015146", "cap": "20121", "toponimo": {"specie": "VIA", "denominazioneToponimo": "Manzoni"}, "numeroCivico": {"numero": "3"}}
    })).await;
    // April: a move within Rome changes nothing in the table of March.
    s.come_comune("058091");

    let (id, roma) = prospetto(
        &s,
        json!({"datiRichiesta": {"tipologiaProspetto": "1", "anno": "2024", "mese": "3"}}),
    )
    .await;
    assert_eq!(roma["provvisorio"], false);
    assert_eq!(riga(&roma, 1), (3, 2, 5), "population on 1 March");
    assert_eq!(riga(&roma, 2), (1, 0, 1), "born in Rome");
    assert_eq!(riga(&roma, 3), (0, 0, 0));
    assert_eq!(riga(&roma, 5), (1, 0, 1));
    assert_eq!(riga(&roma, 6), (1, 0, 1), "died");
    assert_eq!(riga(&roma, 9), (1, 0, 1));
    assert_eq!(riga(&roma, 10), (0, 0, 0), "births - deaths");
    assert_eq!(riga(&roma, 11), (0, 0, 0));
    assert_eq!(riga(&roma, 12), (0, 1, 1), "from abroad");
    assert_eq!(riga(&roma, 14), (0, 1, 1));
    assert_eq!(
        riga(&roma, 15),
        (0, 1, 1),
        "to another municipality (Milan)"
    );
    assert_eq!(riga(&roma, 16), (1, 0, 1), "abroad");
    assert_eq!(riga(&roma, 18), (1, 1, 2));
    assert_eq!(riga(&roma, 19), (-1, 0, -1));
    assert_eq!(riga(&roma, 24), (2, 2, 4), "population at the end of March");
    assert_eq!(riga(&roma, 22), (2, 2, 4), "all in families");
    assert_eq!(riga(&roma, 25).2, 3, "three migration cases");
    assert_eq!(riga(&roma, 26).2, 3);
    assert_eq!(riga(&roma, 27).2, 2, "Anna's family and Fabia's");
    assert_eq!(roma["quadratura"]["differenza"], 0, "{roma}");
    assert_eq!(
        riga(&roma, 24).2,
        riga(&roma, 1).2 + riga(&roma, 20).2,
        "end = start + balance"
    );
    // February: nothing happened, same population.
    let (_, feb) = prospetto(
        &s,
        json!({"datiRichiesta": {"tipologiaProspetto": "1", "anno": "2024", "mese": "2"}}),
    )
    .await;
    assert_eq!(riga(&feb, 1).2, 5);
    assert_eq!(riga(&feb, 20).2, 0);

    // Milan counts the same transfer once, as an arrival.
    s.come_comune("015146");
    let (_, milano) = prospetto(
        &s,
        json!({"datiRichiesta": {"tipologiaProspetto": "1", "anno": "2024", "mese": "3"}}),
    )
    .await;
    assert_eq!(riga(&milano, 1).2, 0);
    assert_eq!(riga(&milano, 11), (0, 1, 1));
    assert_eq!(riga(&milano, 15).2, 0);
    assert_eq!(riga(&milano, 24), (0, 1, 1));
    s.come_comune("058091");

    // Print: CSV and PDF.
    let id_op: Vec<(&str, &str)> = s
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut req = s.client.get(format!(
        "{}/api/v1/statistiche/prospetti/{id}/stampa?formato=csv",
        s.base
    ));
    for (k, v) in &id_op {
        req = req.header(*k, *v);
    }
    let csv = req.send().await.unwrap().text().await.unwrap();
    assert!(
        csv.contains("15,Cancellati per trasferimento in altri comuni,0,1,1"),
        "{csv}"
    );
    let mut req = s.client.get(format!(
        "{}/api/v1/statistiche/prospetti/{id}/stampa?formato=pdf",
        s.base
    ));
    for (k, v) in &id_op {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/pdf");
    let pdf = r.bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    if let Ok(out) = std::process::Command::new("pdftotext")
        .arg("-")
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(&pdf)?;
            c.wait_with_output()
        })
    {
        let testo = String::from_utf8_lossy(&out.stdout);
        assert!(testo.contains("Prospetto ISTAT n. 1"), "{testo}");
        let compatto: String = testo.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            compatto.contains(
                "24. Totale popolazione residente alla fine del mese: M 2, F 2, totale 4"
            ),
            "population at the end: {compatto}"
        );
        assert!(compatto.contains("Quadratura"), "{compatto}");
    }
    // The chart names the computed months.
    let (st, svg, _) = s
        .get_id("/api/v1/statistiche/grafico?anno=2024", &id_op)
        .await;
    assert_eq!(st, 200);
    let svg = svg.as_str().unwrap();
    assert!(svg.starts_with("<svg"), "{svg}");
    assert_eq!(
        svg.matches("class=\"serie\"").count(),
        4,
        "one line per series (Feb-Mar)"
    );
    assert!(svg.contains("Mesi non calcolati: gen, apr"), "{svg}");

    // Coded refusals: month missing, month of an annual table, a year not over, a future month.
    for (body, code) in [
        (json!({"tipologiaProspetto": "1", "anno": "2024"}), "EN103"),
        (
            json!({"tipologiaProspetto": "2", "anno": "2024", "mese": "3"}),
            "EN105",
        ),
        (json!({"tipologiaProspetto": "6", "anno": "2024"}), "EN104"),
        (json!({"tipologiaProspetto": "4"}), "EN102"),
        (json!({"tipologiaProspetto": "2", "anno": "2999"}), "EN171"),
        (
            json!({"tipologiaProspetto": "1", "anno": "2999", "mese": "1"}),
            "EHR15",
        ),
    ] {
        let (st, v) = s
            .post(
                "/api/v1/statistiche/prospetti",
                &json!({"datiRichiesta": body}),
            )
            .await;
        assert_eq!(st, 422, "{v}");
        assert_eq!(common::codici(&v), vec![code], "{body}");
    }
    // Annual tables of 2024: population by sex, birth year and civil status.
    let (_, p4) = prospetto(
        &s,
        json!({"datiRichiesta": {"tipologiaProspetto": "4", "anno": "2024"}}),
    )
    .await;
    assert_eq!(riga(&p4, 1), (2, 2, 4));
    let nati_2024: i64 = p4["dettaglio"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["annoNascita"] == 2024)
        .map(|d| d["totaleComplessivo"].as_i64().unwrap())
        .sum();
    assert_eq!(nati_2024, 1);
    let (_, p2) = prospetto(
        &s,
        json!({"datiRichiesta": {"tipologiaProspetto": "2", "anno": "2024"}}),
    )
    .await;
    assert_eq!(riga(&p2, 1).2, 0, "nobody on 1 January 2024");
    assert_eq!(riga(&p2, 30).2, 4);
    assert_eq!(riga(&p2, 12).2, 6, "six from abroad in 2024");
    assert_eq!(p2["quadratura"]["differenza"], 0);
}

on_both_backends!(movimento_mensile);
