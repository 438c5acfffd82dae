//! Full history of a record section (SPEC M-1.5): the reference model.
//!
//! Each section of a record has a timeline of versions. A version holds a value (or the
//! absence of one, for a removed datum) from its *decorrenza* (valid time, inclusive) to
//! the decorrenza of the version that replaced it (exclusive), and remembers which
//! operation created it and which closed it (record time). Two rules keep it exact:
//!
//! - a change may not take effect before the version it replaces: history is appended,
//!   never rewritten (corrections of the past are their own operations, rectifications,
//!   which the service layer models explicitly);
//! - annulment is strictly newest first, and restores the previous version exactly.
//!
//! The storage backends implement the same rules in SQL; their conformance suite checks
//! them against this model.

use chrono::NaiveDate;

use crate::ids::IdOperazioneAnpr;

/// One version of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versione<T> {
    pub valido_dal: NaiveDate,
    /// Exclusive end; `None` while current.
    pub valido_al: Option<NaiveDate>,
    pub creata_da: IdOperazioneAnpr,
    pub chiusa_da: Option<IdOperazioneAnpr>,
    /// `None` records that the datum was removed from `valido_dal` on.
    pub valore: Option<T>,
}

/// Why a history change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErroreStoria {
    #[error("decorrenza {decorrenza} precedes the current version, valid from {corrente}")]
    DecorrenzaAnteriore {
        decorrenza: NaiveDate,
        corrente: NaiveDate,
    },
    #[error("operation {op} is not the newest on this record (newest: {newest})")]
    NonUltimaOperazione {
        op: IdOperazioneAnpr,
        newest: IdOperazioneAnpr,
    },
    #[error("operation {0} did not change this record")]
    OperazioneEstranea(IdOperazioneAnpr),
}

/// The timeline of one section, in record order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoriaSezione<T> {
    versioni: Vec<Versione<T>>,
}

impl<T> Default for StoriaSezione<T> {
    fn default() -> Self {
        Self {
            versioni: Vec::new(),
        }
    }
}

impl<T: Clone> StoriaSezione<T> {
    pub fn versioni(&self) -> &[Versione<T>] {
        &self.versioni
    }

    /// The open version, if any.
    pub fn corrente(&self) -> Option<&Versione<T>> {
        self.versioni.iter().rev().find(|v| v.valido_al.is_none())
    }

    /// Replaces the section from `decorrenza` on with `valore` (`None` removes it).
    pub fn applica(
        &mut self,
        decorrenza: NaiveDate,
        op: IdOperazioneAnpr,
        valore: Option<T>,
    ) -> Result<(), ErroreStoria> {
        if let Some(pos) = self.versioni.iter().rposition(|v| v.valido_al.is_none()) {
            let corrente = &mut self.versioni[pos];
            if decorrenza < corrente.valido_dal {
                return Err(ErroreStoria::DecorrenzaAnteriore {
                    decorrenza,
                    corrente: corrente.valido_dal,
                });
            }
            corrente.valido_al = Some(decorrenza);
            corrente.chiusa_da = Some(op);
        }
        self.versioni.push(Versione {
            valido_dal: decorrenza,
            valido_al: None,
            creata_da: op,
            chiusa_da: None,
            valore,
        });
        Ok(())
    }

    /// Undoes operation `op`, which must be the newest that touched this section. Every
    /// version it created goes (an operation may replace a section more than once) and
    /// the version it found is reopened.
    pub fn annulla(&mut self, op: IdOperazioneAnpr) -> Result<(), ErroreStoria> {
        let newest = self
            .versioni
            .last()
            .map(|v| v.creata_da)
            .ok_or(ErroreStoria::OperazioneEstranea(op))?;
        if newest != op {
            return if self.versioni.iter().any(|v| v.creata_da == op) {
                Err(ErroreStoria::NonUltimaOperazione { op, newest })
            } else {
                Err(ErroreStoria::OperazioneEstranea(op))
            };
        }
        while self.versioni.last().is_some_and(|v| v.creata_da == op) {
            self.versioni.pop();
        }
        for v in self.versioni.iter_mut().filter(|v| v.chiusa_da == Some(op)) {
            v.valido_al = None;
            v.chiusa_da = None;
        }
        Ok(())
    }

    /// The value in force on `data` (valid time): the version with
    /// `valido_dal <= data < valido_al`. Zero-length versions (replaced on their own
    /// decorrenza) are never in force.
    pub fn al(&self, data: NaiveDate) -> Option<&T> {
        self.versioni
            .iter()
            .rev()
            .find(|v| v.valido_dal <= data && v.valido_al.is_none_or(|al| data < al))
            .and_then(|v| v.valore.as_ref())
    }

    /// The current value.
    pub fn attuale(&self) -> Option<&T> {
        self.corrente().and_then(|v| v.valore.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, g: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, g).unwrap()
    }

    fn op(n: u64) -> IdOperazioneAnpr {
        IdOperazioneAnpr::new(n).unwrap()
    }

    #[test]
    fn reads_as_at_dates_and_annuls_newest_first() {
        let mut s = StoriaSezione::default();
        s.applica(d(2000, 1, 1), op(1), Some("Via Roma 1")).unwrap();
        s.applica(d(2010, 5, 1), op(2), Some("Via Po 2")).unwrap();
        s.applica(d(2015, 1, 1), op(3), None).unwrap();
        assert_eq!(s.al(d(1999, 12, 31)), None);
        assert_eq!(s.al(d(2000, 1, 1)), Some(&"Via Roma 1"));
        assert_eq!(s.al(d(2010, 4, 30)), Some(&"Via Roma 1"));
        assert_eq!(s.al(d(2010, 5, 1)), Some(&"Via Po 2"));
        assert_eq!(s.al(d(2020, 1, 1)), None);
        assert_eq!(
            s.annulla(op(2)),
            Err(ErroreStoria::NonUltimaOperazione {
                op: op(2),
                newest: op(3)
            })
        );
        assert_eq!(
            s.annulla(op(9)),
            Err(ErroreStoria::OperazioneEstranea(op(9)))
        );
        s.annulla(op(3)).unwrap();
        assert_eq!(s.attuale(), Some(&"Via Po 2"));
        s.annulla(op(2)).unwrap();
        assert_eq!(s.attuale(), Some(&"Via Roma 1"));
        assert_eq!(s.al(d(2012, 1, 1)), Some(&"Via Roma 1"));
    }

    #[test]
    fn refuses_changes_before_the_current_version() {
        let mut s = StoriaSezione::default();
        s.applica(d(2010, 1, 1), op(1), Some(1)).unwrap();
        let err = s.applica(d(2009, 12, 31), op(2), Some(2)).unwrap_err();
        assert_eq!(
            err,
            ErroreStoria::DecorrenzaAnteriore {
                decorrenza: d(2009, 12, 31),
                corrente: d(2010, 1, 1)
            }
        );
        assert_eq!(s.versioni().len(), 1);
    }

    #[test]
    fn annulling_an_operation_that_wrote_twice_restores_the_version_it_found() {
        let mut s = StoriaSezione::default();
        s.applica(d(2000, 1, 1), op(1), Some(1)).unwrap();
        let before = s.clone();
        s.applica(d(2010, 1, 1), op(2), Some(2)).unwrap();
        s.applica(d(2010, 1, 1), op(2), Some(3)).unwrap();
        s.annulla(op(2)).unwrap();
        assert_eq!(s, before);
    }

    #[test]
    fn same_day_replacement_hides_the_replaced_version() {
        let mut s = StoriaSezione::default();
        s.applica(d(2010, 1, 1), op(1), Some(1)).unwrap();
        s.applica(d(2010, 1, 1), op(2), Some(2)).unwrap();
        assert_eq!(s.al(d(2010, 1, 1)), Some(&2));
    }

    proptest! {
        /// Applying any sequence of changes and annulling them all in reverse order
        /// restores every intermediate state exactly.
        #[test]
        fn annulment_restores_every_previous_state(steps in proptest::collection::vec((0u32..400, proptest::option::of(0u8..5)), 1..20)) {
            let base = d(2000, 1, 1);
            let mut s: StoriaSezione<u8> = StoriaSezione::default();
            let mut snapshots = vec![s.clone()];
            let mut day = 0u32;
            for (i, (delta, value)) in steps.iter().enumerate() {
                day += delta;
                s.applica(base + chrono::Days::new(day.into()), op(i as u64 + 1), *value).unwrap();
                snapshots.push(s.clone());
            }
            for i in (0..steps.len()).rev() {
                s.annulla(op(i as u64 + 1)).unwrap();
                prop_assert_eq!(&s, &snapshots[i]);
            }
        }

        /// The value at any date is the one set by the latest change not after it.
        #[test]
        fn as_at_matches_the_latest_change_not_after_the_date(steps in proptest::collection::vec((0u32..50, 0u8..5), 1..15), probe in 0u32..800) {
            let base = d(2000, 1, 1);
            let mut s: StoriaSezione<u8> = StoriaSezione::default();
            let mut timeline = Vec::new();
            let mut day = 0u32;
            for (i, (delta, value)) in steps.iter().enumerate() {
                day += delta;
                s.applica(base + chrono::Days::new(day.into()), op(i as u64 + 1), Some(*value)).unwrap();
                timeline.push((day, *value));
            }
            let expected = timeline.iter().rev().find(|(start, _)| *start <= probe).map(|(_, v)| v);
            prop_assert_eq!(s.al(base + chrono::Days::new(probe.into())), expected);
        }
    }
}
