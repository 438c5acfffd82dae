//! Verification of the hash-chained audit log (`anpr audit verify`).
//!
//! The log is streamed in pages so memory stays bounded however long it is; the first
//! broken link is reported with the entry's sequence number.

use anpr_domain::audit::{VerificaCatena, ViolazioneAudit};
use anpr_domain::caller::{Ambiente, CallerContext};
use serde::Serialize;

use crate::authz::Permesso;
use crate::{Registry, ServiceError};

/// Entries read per page while verifying.
const PAGINA: u32 = 5_000;

/// Outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RapportoAudit {
    pub ambiente: Ambiente,
    /// Entries verified before the end or the first violation.
    pub voci_verificate: u64,
    /// `None` when the chain is intact.
    pub violazione: Option<String>,
    /// Sequence number of the first entry found altered, removed or out of place.
    pub voce: Option<u64>,
}

impl RapportoAudit {
    pub fn integro(&self) -> bool {
        self.violazione.is_none()
    }
}

fn seq_of(v: &ViolazioneAudit) -> u64 {
    match v {
        ViolazioneAudit::Alterata { seq }
        | ViolazioneAudit::SequenzaInterrotta { seq, .. }
        | ViolazioneAudit::CollegamentoInterrotto { seq, .. } => *seq,
        ViolazioneAudit::TestaNonCorrispondente { last_seq, .. } => *last_seq + 1,
    }
}

impl Registry {
    /// Verifies the audit chain of the caller's environment.
    pub async fn verifica_audit(&self, ctx: &CallerContext) -> Result<RapportoAudit, ServiceError> {
        self.autorizza(ctx, Permesso::VerificaAudit, "verificaAudit")
            .await?;
        let store = self.store(ctx.ambiente)?;
        // Read the head first: entries appended while we verify are after it and are
        // not part of this verification.
        let head = store.audit_head().await.map_err(|e| self.interno(e))?;
        let limit = head.as_ref().map_or(0, |h| h.seq);
        let mut verifier = VerificaCatena::default();
        let mut after = 0u64;
        let mut count = 0u64;
        let violation = 'scan: loop {
            let page = store
                .audit_page(after, PAGINA)
                .await
                .map_err(|e| self.interno(e))?;
            let done = page.len() < PAGINA as usize;
            for entry in page.iter().filter(|e| e.seq <= limit) {
                if let Err(v) = verifier.push(entry) {
                    break 'scan Some(v);
                }
                count += 1;
            }
            match page.last() {
                Some(last) if !done && last.seq < limit => after = last.seq,
                _ => break None,
            }
        };
        let violation = match violation {
            Some(v) => Some(v),
            None => verifier.finish(head.as_ref()).err(),
        };
        Ok(RapportoAudit {
            ambiente: ctx.ambiente,
            voci_verificate: count,
            voce: violation.as_ref().map(seq_of),
            violazione: violation.map(|v| v.to_string()),
        })
    }
}
