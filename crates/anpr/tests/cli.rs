//! The `anpr` binary as an operator runs it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anpr_domain::audit::{NuovaVoceAudit, TipoEvento};
use anpr_domain::caller::Ambiente;
use anpr_store::Store;
use anpr_store_sqlite::SqliteStore;
use serde_json::Value;

fn anpr(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_anpr"))
        .args(args)
        .output()
        .expect("run anpr");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cf_calcola_prints_code_and_omocodes() {
    let (code, out, err) = anpr(&[
        "cf",
        "calcola",
        "--cognome",
        "Rossi",
        "--nome",
        "Mario",
        "--sesso",
        "M",
        "--data-nascita",
        "1980-01-01",
        "--luogo-nascita",
        "H501",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["codiceFiscale"], "RSSMRA80A01H501U");
    assert_eq!(v["omocodici"].as_array().unwrap().len(), 7);
    let (code, out, _) = anpr(&[
        "cf",
        "calcola",
        "--cognome",
        "Rossi",
        "--nome",
        "Mario",
        "--sesso",
        "M",
        "--data-nascita",
        "1980-01-01",
        "--luogo-nascita",
        "H501",
    ]);
    assert_eq!(code, 0);
    assert!(out.starts_with("RSSMRA80A01H501U\n"), "{out}");
}

#[test]
fn cf_malformed_input_is_rejected_with_a_reason() {
    let (code, out, err) = anpr(&[
        "cf",
        "calcola",
        "--cognome",
        "Rossi",
        "--nome",
        "Mario",
        "--sesso",
        "Q",
        "--data-nascita",
        "1980-02-31",
        "--luogo-nascita",
        "H501",
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("EV001") && err.contains("sesso") && err.contains("dataNascita"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let (code, out, _) = anpr(&[
        "cf",
        "calcola",
        "--cognome",
        "Rossi",
        "--nome",
        "Mario",
        "--sesso",
        "F",
        "--data-nascita",
        "2019-05-01",
        "--luogo-nascita",
        "A012",
        "--json",
    ]);
    assert_eq!(code, 2);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["anomalie"][0]["codice"], "EC007");
    let (code, out, _) = anpr(&["cf", "verifica", "RSSMRA80A01H501X"]);
    assert_eq!(code, 1);
    assert!(out.contains("controllo"), "{out}");
    let (code, out, _) = anpr(&["cf", "verifica", "RSSMRA80A01H501U", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["valido"], true);
    let (code, out, _) = anpr(&["cf", "decodifica", "RSSMRA80A01H501U", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["anniCandidati"],
        serde_json::json!([1980, 2080])
    );
}

#[test]
fn tables_lookup_as_at_a_date() {
    let (code, out, err) = anpr(&[
        "tables",
        "comune",
        "--istat",
        "047001",
        "--data",
        "1990-01-01",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["totale"], 1);
    assert_eq!(v["comuni"][0]["denominazione"], "ABETONE");
    let (code, _, err) = anpr(&[
        "tables",
        "comune",
        "--istat",
        "047001",
        "--data",
        "2020-01-01",
    ]);
    assert_eq!(code, 1, "{err}");
    let (code, out, _) = anpr(&["tables", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("comuni"), "{out}");
}

async fn seed_audit(dir: &Path, entries: u64) {
    let store = SqliteStore::open_in_dir(dir, Ambiente::Test).unwrap();
    for i in 0..entries {
        store
            .append_audit(NuovaVoceAudit {
                istante: chrono::Utc::now(),
                evento: TipoEvento::Lettura,
                azione: "consultaScheda".into(),
                utente: "RSSMRA80A01H501U".into(),
                comune: Some("058091".into()),
                postazione: None,
                canale: "rest".into(),
                oggetto: Some(format!("soggetto:{i}")),
                id_operazione_anpr: None,
                esito: "ok".into(),
            })
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn audit_verify_detects_an_altered_row_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    seed_audit(dir.path(), 5).await;
    let data_dir = dir.path().to_str().unwrap();
    let (code, out, err) = anpr(&["audit", "verify", "--data-dir", data_dir]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("5 voci verificate"), "{out}");

    let db = rusqlite::Connection::open(dir.path().join("test.sqlite3")).unwrap();
    let changed = db
        .execute(
            "UPDATE audit SET utente = 'XXXXXX00X00X000X' WHERE seq = 3",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(db);
    let (code, out, _) = anpr(&["audit", "verify", "--data-dir", data_dir]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("voce 3"), "{out}");
    let (code, out, _) = anpr(&["audit", "verify", "--data-dir", data_dir, "--json"]);
    assert_eq!(code, 1);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["voce"], 3);
}

#[tokio::test]
async fn audit_verify_detects_removed_entries() {
    let dir = tempfile::tempdir().unwrap();
    seed_audit(dir.path(), 4).await;
    let db = rusqlite::Connection::open(dir.path().join("test.sqlite3")).unwrap();
    db.execute("DELETE FROM audit WHERE seq = 2", []).unwrap();
    drop(db);
    let (code, out, _) = anpr(&[
        "audit",
        "verify",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("voce 3"), "{out}");
    // Truncating the end is caught by the chain head.
    let dir = tempfile::tempdir().unwrap();
    seed_audit(dir.path(), 4).await;
    let db = rusqlite::Connection::open(dir.path().join("test.sqlite3")).unwrap();
    db.execute("DELETE FROM audit WHERE seq = 4", []).unwrap();
    drop(db);
    let (code, out, _) = anpr(&[
        "audit",
        "verify",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
}

fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw[9..12].parse().unwrap();
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn serve_creates_the_data_dir_and_answers_health() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dati");
    let mut child = Command::new(env!("CARGO_BIN_EXE_anpr"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    let (status, body) = loop {
        let r = std::panic::catch_unwind(|| http_get(&addr, "/healthz"));
        match r {
            Ok(r) => break r,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(_) => panic!("server did not answer"),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200, "{body}");
    // The body may be chunked; look for the fields rather than parse.
    assert!(body.contains("\"backend\":\"sqlite\""), "{body}");
    assert!(data.join("test.sqlite3").exists());
    assert!(data.join("produzione.sqlite3").exists());
}
