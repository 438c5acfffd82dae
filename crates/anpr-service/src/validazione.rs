//! Field checks shared by the operations. Each pushes a coded [`Anomalia`] naming the
//! field, the value found and what was expected, and returns `None`, so a use case can
//! collect every error of a request in one pass.

use anpr_domain::error::{Anomalia, CODICE_DATA_FUTURA, CODICE_VALORE_NON_VALIDO};
use anpr_domain::ids::CodiceIstatComune;
use anpr_domain::scheda::{Indirizzo, Nome};
use anpr_tables::Tables;
use chrono::NaiveDate;

/// Parses an ISO date `AAAA-MM-GG`.
pub fn data(campo: &str, s: &str, out: &mut Vec<Anomalia>) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| {
            out.push(
                Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Data non valida")
                    .campo(campo)
                    .valore(s)
                    .atteso("una data esistente AAAA-MM-GG"),
            )
        })
        .ok()
}

/// Parses an optional date.
pub fn data_opt(campo: &str, s: Option<&str>, out: &mut Vec<Anomalia>) -> Option<NaiveDate> {
    s.and_then(|s| data(campo, s, out))
}

/// Refuses a date after `oggi`.
pub fn non_futura(campo: &str, d: Option<NaiveDate>, oggi: NaiveDate, out: &mut Vec<Anomalia>) {
    if let Some(d) = d.filter(|d| *d > oggi) {
        out.push(
            Anomalia::errore(CODICE_DATA_FUTURA, "Data successiva alla data corrente")
                .campo(campo)
                .valore(d.to_string())
                .atteso(format!("una data non successiva al {oggi}")),
        );
    }
}

/// Parses a personal name.
pub fn nome(campo: &str, s: &str, out: &mut Vec<Anomalia>) -> Option<Nome> {
    Nome::parse(s)
        .map_err(|e| out.push(Anomalia::from_invalid(campo, &e)))
        .ok()
}

/// Checks a code against a decoding table valid at `data` (or any date); `codice_anpr`
/// is the ANPR error code for an unknown value of that table, `descrizione` the
/// table's name as the ANPR texts call it.
#[allow(clippy::too_many_arguments)] // each argument is named at every call site on purpose
pub fn codice_tabella(
    t: &Tables,
    tabella: &str,
    codice: &str,
    data: Option<NaiveDate>,
    codice_anpr: &str,
    descrizione: &str,
    campo: &str,
    out: &mut Vec<Anomalia>,
) -> bool {
    if t.code(tabella, codice, data).is_some() {
        return true;
    }
    out.push(
        Anomalia::errore(
            codice_anpr,
            format!("{descrizione} {codice} inesistente sulla tabella di riferimento"),
        )
        .campo(campo)
        .valore(codice)
        .atteso(format!("un codice della tabella {tabella}")),
    );
    false
}

/// ANPR code for a residence municipality different from the competent one.
pub const CODICE_RESIDENZA_ALTRO_COMUNE: &str = "EN378";

/// Checks that an Italian address is in `comune` and its street type is known.
pub fn indirizzo_nel_comune(
    t: &Tables,
    campo: &str,
    ind: &Indirizzo,
    comune: &CodiceIstatComune,
    data: Option<NaiveDate>,
    out: &mut Vec<Anomalia>,
) {
    if &ind.comune != comune {
        out.push(
            Anomalia::errore(
                CODICE_RESIDENZA_ALTRO_COMUNE,
                "Il comune di residenza deve coincidere con il comune di competenza",
            )
            .campo(format!("{campo}.comune"))
            .valore(ind.comune.as_str())
            .atteso(comune.to_string()),
        );
    } else if data.is_some_and(|d| t.comune_by_istat(comune, d).is_none()) {
        out.push(
            Anomalia::errore(
                "EC056",
                "Comune/provincia di residenza inesistente o non valido alla data di decorrenza residenza",
            )
            .campo(format!("{campo}.comune"))
            .valore(comune.as_str())
            .atteso("un comune attivo alla data di decorrenza"),
        );
    }
    if let Some(cod) = &ind.toponimo.cod_specie {
        codice_tabella(
            t,
            "specie_toponimo",
            cod,
            None,
            "EC073",
            "Codice specie Toponimo",
            &format!("{campo}.toponimo.codSpecie"),
            out,
        );
    }
    if ind.toponimo.denominazione_toponimo.trim().is_empty() {
        out.push(
            Anomalia::errore(
                anpr_domain::error::CODICE_CAMPO_OBBLIGATORIO,
                "Denominazione del toponimo obbligatoria",
            )
            .campo(format!("{campo}.toponimo.denominazioneToponimo")),
        );
    }
}

impl crate::Registry {
    /// Parses the cadastral code of a place of birth (or of another event) and resolves
    /// it to the municipality or foreign state valid at `data` (EC007 / EC030).
    pub(crate) fn luogo_evento(
        &self,
        campo: &str,
        raw: &str,
        data: Option<NaiveDate>,
        out: &mut Vec<Anomalia>,
    ) -> Option<(
        anpr_domain::ids::CodiceCatastale,
        anpr_domain::scheda::Luogo,
    )> {
        use anpr_domain::scheda::Luogo;
        let code = raw
            .trim()
            .to_ascii_uppercase()
            .parse::<anpr_domain::ids::CodiceCatastale>()
            .map_err(|x| out.push(Anomalia::from_invalid(campo, &x)))
            .ok()?;
        let luogo = self
            .luogo_alla_data(&code, data?, campo)
            .map_err(|a| out.push(a))
            .ok()?;
        let l = if luogo.tipo == "comune" {
            Luogo::Comune {
                codice_istat: luogo
                    .codice_istat
                    .as_deref()
                    .unwrap_or_default()
                    .parse()
                    .map_err(|x| out.push(self.anomalia_interna(x)))
                    .ok()?,
                codice_catastale: code.clone(),
                nome_comune: luogo.denominazione,
                sigla_provincia: luogo.sigla_provincia,
            }
        } else {
            Luogo::Estero {
                codice_stato: luogo.codice_istat.unwrap_or_default(),
                codice_catastale: Some(code.clone()),
                descrizione_stato: luogo.denominazione,
                localita: None,
            }
        };
        Some((code, l))
    }
}
