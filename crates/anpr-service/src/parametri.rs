//! Municipality parameters for documents (SPEC M-4.1, M-8.6): the logo printed on
//! certificates and identity cards, the virtual-stamp authorisation, the fee amounts
//! (stamp duty, secretarial fees, identity card), the second language and the names of
//! the mayor and of the signing registry officer.
//!
//! Set by the municipality's mayor (ASC) or first-level administrator (APL) for their
//! own municipality ([`Permesso::ParametriComune`]); every change is audited in the
//! same transaction as the write. A save replaces the whole set: what a request leaves
//! out goes back to its default. Until a municipality saves anything, the documents use
//! [`ValoriParametri::default`] (the national amounts, no logo).
//!
//! The logo is kept as uploaded (PNG or JPEG, at most [`LOGO_MAX_BYTES`], at most
//! 2,000 pixels a side) and checked when saved; the prepared image is cached per
//! process by its hash, so printing a certificate never decodes it again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use anpr_certificati::Immagine;
use anpr_domain::audit::TipoEvento;
use anpr_domain::caller::{Ambiente, CallerContext};
use anpr_domain::error::{Anomalia, CODICE_VALORE_NON_VALIDO};
use anpr_domain::ids::CodiceIstatComune;
use anpr_store::NuoviParametriComune;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::authz::{ambito_nazionale, Permesso};
use crate::{Registry, ServiceError};

/// Our code: the logo is not a PNG or JPEG image we can print (format, size, colours).
pub const CODICE_LOGO_NON_VALIDO: &str = "EV253";

/// Most bytes of a logo file.
pub const LOGO_MAX_BYTES: usize = 256 * 1024;
/// Highest amount a parameter may set, in cents (a safeguard against typing errors).
pub const IMPORTO_MASSIMO: u32 = 100_000;
/// Most characters of a text parameter.
const TESTO_MASSIMO: usize = 300;

/// The parameters as stored and used (amounts in euro cents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValoriParametri {
    /// Stamp duty on a certificate (DPR 642/1972: € 16.00).
    pub importo_bollo: u32,
    /// Secretarial fee on a stamped certificate (€ 0.52).
    pub diritti_segreteria: u32,
    /// Secretarial fee on a stamp-exempt certificate (€ 0.26).
    pub diritti_segreteria_esente: u32,
    /// Fee for a paper identity card (€ 5.16 plus € 0.26 secretarial fee).
    pub diritti_carta_identita: u32,
    /// The authorisation to pay stamp duty virtually, printed on certificates (e.g.
    /// "Aut. Agenzia delle Entrate di Roma n. 12345 del 01/01/2020").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autorizzazione_bollo_virtuale: Option<String>,
    /// Second official language (`DE`, `FR`, `SL`) for bilingual documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconda_lingua: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sindaco: Option<String>,
    /// The registry officer whose name is printed under the signature line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ufficiale_anagrafe: Option<String>,
    /// MIME type of the stored logo, set by the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_mime: Option<String>,
}

impl Default for ValoriParametri {
    fn default() -> Self {
        Self {
            importo_bollo: crate::certificati::BOLLO_CENTESIMI,
            diritti_segreteria: crate::certificati::DIRITTI_CENTESIMI,
            diritti_segreteria_esente: crate::certificati::DIRITTI_ESENTE_CENTESIMI,
            diritti_carta_identita: 542,
            autorizzazione_bollo_virtuale: None,
            seconda_lingua: None,
            sindaco: None,
            ufficiale_anagrafe: None,
            logo_mime: None,
        }
    }
}

/// A save request (`PUT /api/v1/comuni/{istat}/parametri`): the whole set; what is
/// left out takes its default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RichiestaParametri {
    pub importo_bollo: Option<u32>,
    pub diritti_segreteria: Option<u32>,
    pub diritti_segreteria_esente: Option<u32>,
    pub diritti_carta_identita: Option<u32>,
    pub autorizzazione_bollo_virtuale: Option<String>,
    pub seconda_lingua: Option<String>,
    pub sindaco: Option<String>,
    pub ufficiale_anagrafe: Option<String>,
    pub logo: Option<LogoRichiesto>,
}

/// The logo file in base64 (standard alphabet, padding optional).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogoRichiesto {
    pub dati: String,
}

/// The parameters as answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParametriLetti {
    pub comune: CodiceIstatComune,
    #[serde(flatten)]
    pub valori: ValoriParametri,
    /// The logo file in base64, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
    /// 0 while the municipality has never saved them (defaults in use).
    pub versione: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggiornato_il: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggiornato_da: Option<String>,
}

/// What documents use: the values and the prepared logo.
#[derive(Debug, Clone, Default)]
pub struct ParametriDocumenti {
    pub valori: ValoriParametri,
    pub logo: Option<Arc<Immagine>>,
}

/// Prepared logos by the SHA-256 of their file (per process; small, bounded).
fn cache_logo() -> &'static Mutex<HashMap<[u8; 32], Arc<Immagine>>> {
    static CACHE: OnceLock<Mutex<HashMap<[u8; 32], Arc<Immagine>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}
const CACHE_LOGO_MAX: usize = 256;

/// The prepared image of a logo file, from the cache or decoded now.
fn logo_preparato(file: &[u8]) -> Result<Arc<Immagine>, anpr_certificati::ErroreImmagine> {
    let chiave: [u8; 32] = Sha256::digest(file).into();
    if let Some(img) = cache_logo()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&chiave)
    {
        return Ok(img.clone());
    }
    let img = Arc::new(Immagine::da_file(file)?);
    let mut cache = cache_logo()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if cache.len() >= CACHE_LOGO_MAX {
        cache.clear();
    }
    cache.insert(chiave, img.clone());
    Ok(img)
}

fn testo(campo: &str, v: Option<String>, e: &mut Vec<Anomalia>) -> Option<String> {
    let v = v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())?;
    if v.chars().count() > TESTO_MASSIMO || v.chars().any(char::is_control) {
        e.push(
            Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Testo non valido")
                .campo(campo)
                .valore(v.chars().take(40).collect::<String>())
                .atteso(format!(
                    "al massimo {TESTO_MASSIMO} caratteri stampabili, senza caratteri di controllo"
                )),
        );
        return None;
    }
    Some(v)
}

fn importo(campo: &str, v: Option<u32>, predefinito: u32, e: &mut Vec<Anomalia>) -> u32 {
    let v = v.unwrap_or(predefinito);
    if v > IMPORTO_MASSIMO {
        e.push(
            Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Importo non ammesso")
                .campo(campo)
                .valore(v.to_string())
                .atteso(format!("centesimi di euro, da 0 a {IMPORTO_MASSIMO}")),
        );
    }
    v
}

/// Checks a save request; returns the values and the logo file.
pub fn valida_richiesta(
    r: RichiestaParametri,
) -> Result<(ValoriParametri, Option<Vec<u8>>), Vec<Anomalia>> {
    let d = ValoriParametri::default();
    let mut e = Vec::new();
    let mut valori = ValoriParametri {
        importo_bollo: importo("importoBollo", r.importo_bollo, d.importo_bollo, &mut e),
        diritti_segreteria: importo(
            "dirittiSegreteria",
            r.diritti_segreteria,
            d.diritti_segreteria,
            &mut e,
        ),
        diritti_segreteria_esente: importo(
            "dirittiSegreteriaEsente",
            r.diritti_segreteria_esente,
            d.diritti_segreteria_esente,
            &mut e,
        ),
        diritti_carta_identita: importo(
            "dirittiCartaIdentita",
            r.diritti_carta_identita,
            d.diritti_carta_identita,
            &mut e,
        ),
        autorizzazione_bollo_virtuale: testo(
            "autorizzazioneBolloVirtuale",
            r.autorizzazione_bollo_virtuale,
            &mut e,
        ),
        seconda_lingua: None,
        sindaco: testo("sindaco", r.sindaco, &mut e),
        ufficiale_anagrafe: testo("ufficialeAnagrafe", r.ufficiale_anagrafe, &mut e),
        logo_mime: None,
    };
    if let Some(l) = r.seconda_lingua.map(|l| l.trim().to_ascii_uppercase()) {
        if matches!(l.as_str(), "DE" | "FR" | "SL") {
            valori.seconda_lingua = Some(l);
        } else {
            e.push(
                Anomalia::errore(
                    crate::certificati::CODICE_LINGUA_NON_AMMESSA,
                    "Seconda lingua non prevista",
                )
                .campo("secondaLingua")
                .valore(l)
                .atteso("DE, FR o SL (tabella Lingue)"),
            );
        }
    }
    let mut logo = None;
    if let Some(l) = r.logo {
        let pulito: String = l
            .dati
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let decodificato = base64::engine::general_purpose::STANDARD
            .decode(pulito.trim_end_matches('='))
            .or_else(|_| {
                base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode(pulito.trim_end_matches('='))
            });
        match decodificato {
            Err(_) => e.push(
                Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Logo non codificato in base64")
                    .campo("logo.dati")
                    .atteso("il file PNG o JPEG in base64"),
            ),
            Ok(file) if file.len() > LOGO_MAX_BYTES => e.push(
                Anomalia::errore(CODICE_LOGO_NON_VALIDO, "Logo troppo grande")
                    .campo("logo.dati")
                    .valore(format!("{} byte", file.len()))
                    .atteso(format!("al massimo {LOGO_MAX_BYTES} byte")),
            ),
            Ok(file) => match logo_preparato(&file) {
                Err(x) => e.push(
                    Anomalia::errore(CODICE_LOGO_NON_VALIDO, format!("Logo non utilizzabile: {x}"))
                        .campo("logo.dati")
                        .atteso("un'immagine PNG, o JPEG in scala di grigi o RGB, di al massimo 2000 pixel per lato"),
                ),
                Ok(_) => {
                    valori.logo_mime = anpr_certificati::tipo_immagine(&file).map(str::to_owned);
                    logo = Some(file);
                }
            },
        }
    }
    if e.is_empty() {
        Ok((valori, logo))
    } else {
        Err(e)
    }
}

impl Registry {
    /// Authorises a caller for the parameters of `comune`: the permission, and the
    /// caller's own municipality (or national scope).
    async fn autorizza_parametri(
        &self,
        ctx: &CallerContext,
        comune: &CodiceIstatComune,
        azione: &str,
    ) -> Result<(), ServiceError> {
        self.autorizza(ctx, Permesso::ParametriComune, azione)
            .await?;
        if ctx.comune.as_ref() != Some(comune) && !ambito_nazionale(ctx) {
            return Err(self.nega(ctx, Permesso::ParametriComune, azione).await);
        }
        Ok(())
    }

    /// The municipality's parameters (defaults, version 0, when never saved).
    pub async fn leggi_parametri_comune(
        &self,
        ctx: &CallerContext,
        comune: &CodiceIstatComune,
    ) -> Result<ParametriLetti, ServiceError> {
        self.autorizza_parametri(ctx, comune, "leggiParametriComune")
            .await?;
        let store = self.store(ctx.ambiente)?;
        let salvati = store
            .parametri_comune(comune)
            .await
            .map_err(|e| self.interno(e))?;
        self.parametri_letti(comune, salvati)
    }

    fn parametri_letti(
        &self,
        comune: &CodiceIstatComune,
        salvati: Option<anpr_store::ParametriComune>,
    ) -> Result<ParametriLetti, ServiceError> {
        Ok(match salvati {
            None => ParametriLetti {
                comune: comune.clone(),
                valori: ValoriParametri::default(),
                logo: None,
                versione: 0,
                aggiornato_il: None,
                aggiornato_da: None,
            },
            Some(p) => ParametriLetti {
                comune: p.comune,
                valori: serde_json::from_value(p.valori).map_err(|e| self.interno(e))?,
                logo: p
                    .logo
                    .map(|l| base64::engine::general_purpose::STANDARD.encode(l)),
                versione: p.versione,
                aggiornato_il: Some(p.aggiornato_il),
                aggiornato_da: Some(p.utente),
            },
        })
    }

    /// Saves the municipality's parameters (the whole set), audited.
    pub async fn salva_parametri_comune(
        &self,
        ctx: &CallerContext,
        comune: &CodiceIstatComune,
        richiesta: RichiestaParametri,
    ) -> Result<ParametriLetti, ServiceError> {
        self.autorizza_parametri(ctx, comune, "salvaParametriComune")
            .await?;
        if self
            .tables()
            .comune_by_istat(comune, self.clock().today())
            .is_none()
        {
            return Err(self.rifiuto(vec![Anomalia::errore(
                "EN046",
                "Comune inesistente o non valido alla data",
            )
            .campo("comune")
            .valore(comune.as_str())]));
        }
        let (valori, logo) = valida_richiesta(richiesta).map_err(|a| self.rifiuto(a))?;
        let mut voce = self.voce_audit(
            ctx,
            TipoEvento::Operazione,
            "salvaParametriComune",
            Some(format!("parametri:{comune}")),
            "ok".into(),
        );
        voce.comune = Some(comune.to_string());
        let store = self.store(ctx.ambiente)?;
        let salvati = store
            .salva_parametri_comune(NuoviParametriComune {
                comune: comune.clone(),
                valori: serde_json::to_value(&valori).map_err(|e| self.interno(e))?,
                logo,
                istante: self.clock().now(),
                utente: ctx.utente.clone(),
                audit: voce,
            })
            .await
            .map_err(|e| self.interno(e))?;
        self.parametri_letti(comune, Some(salvati))
    }

    /// What a document of `comune` uses: the saved values and logo, or the defaults.
    pub(crate) async fn parametri_documenti(
        &self,
        ambiente: Ambiente,
        comune: &CodiceIstatComune,
    ) -> Result<ParametriDocumenti, ServiceError> {
        let store = self.store(ambiente)?;
        let Some(p) = store
            .parametri_comune(comune)
            .await
            .map_err(|e| self.interno(e))?
        else {
            return Ok(ParametriDocumenti::default());
        };
        let valori: ValoriParametri =
            serde_json::from_value(p.valori).map_err(|e| self.interno(e))?;
        // The logo was checked when saved; one that no longer decodes (a newer, stricter
        // program) is left out rather than failing the document.
        let logo = p.logo.as_deref().and_then(|f| match logo_preparato(f) {
            Ok(img) => Some(img),
            Err(e) => {
                tracing::warn!(comune = %comune, error = %e, "stored logo not printable");
                None
            }
        });
        Ok(ParametriDocumenti { valori, logo })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codici(r: Result<(ValoriParametri, Option<Vec<u8>>), Vec<Anomalia>>) -> Vec<String> {
        r.err()
            .unwrap_or_default()
            .into_iter()
            .map(|a| format!("{}:{}", a.codice, a.campo.unwrap_or_default()))
            .collect()
    }

    #[test]
    fn defaults_and_bounds() {
        let (v, logo) = valida_richiesta(RichiestaParametri::default()).unwrap();
        assert_eq!(v, ValoriParametri::default());
        assert!(logo.is_none());
        let r = RichiestaParametri {
            importo_bollo: Some(IMPORTO_MASSIMO + 1),
            seconda_lingua: Some("en".into()),
            sindaco: Some("x\u{7}".into()),
            logo: Some(LogoRichiesto {
                dati: "R0lGODlhAQABAAAAACw=".into(),
            }),
            ..Default::default()
        };
        assert_eq!(
            codici(valida_richiesta(r)),
            [
                "EV001:importoBollo",
                "EV001:sindaco",
                "EV250:secondaLingua",
                "EV253:logo.dati"
            ]
        );
        let r = RichiestaParametri {
            logo: Some(LogoRichiesto {
                dati: "not base64!".into(),
            }),
            seconda_lingua: Some(" de ".into()),
            ..Default::default()
        };
        assert_eq!(codici(valida_richiesta(r)), ["EV001:logo.dati"]);
    }
}
