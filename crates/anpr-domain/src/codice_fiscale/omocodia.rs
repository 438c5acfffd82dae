//! Omocodia: the variant codes the tax agency issues when two people's data give the
//! same code.
//!
//! The order is the tax agency's: the first variant replaces the rightmost digit
//! (position 15, the last digit of the place code) with its letter (0 = L, 1 = M, 2 = N,
//! 3 = P, 4 = Q, 5 = R, 6 = S, 7 = T, 8 = U, 9 = V); the second replaces positions 15 and
//! 14; and so on leftwards through 13, 11, 10, 8 and 7, so the seventh variant has all
//! seven digits replaced. Each variant has its own check character. Some references
//! enumerate all 2^7 = 128 combinations (e.g. as a bitmap over the positions) or count
//! from the left; those combinations are formally valid codes and [`verifica`] accepts
//! them, but only the progressive right-to-left ones are issued, and those are the ones
//! [`omocodici`] lists.
//!
//! [`verifica`]: super::verifica

use super::codice::CodiceFiscale;
use super::tabelle::{self, LETTERE_OMOCODIA, POSIZIONI_OMOCODIA};

/// The code with every omocodic letter turned back into its digit: the code the tax
/// agency computed before resolving the collision (the "base" code).
pub fn forma_base(cf: &CodiceFiscale) -> CodiceFiscale {
    let mut primi = cf.primi_quindici();
    for indice in POSIZIONI_OMOCODIA {
        if let Some(cifra) = tabelle::cifra(primi[indice]) {
            primi[indice] = b'0' + cifra;
        }
    }
    CodiceFiscale::da_primi_quindici(primi)
}

/// How many of the seven numeric positions hold a letter (0 for a base code, 7 when all
/// do). For codes in the tax agency's progressive order this is the variant's rank.
pub fn livello_omocodia(cf: &CodiceFiscale) -> u8 {
    let caratteri = cf.caratteri();
    let sostituite = POSIZIONI_OMOCODIA
        .iter()
        .filter(|&&indice| caratteri[indice].is_ascii_alphabetic())
        .count();
    // At most seven, so the conversion cannot fail.
    u8::try_from(sostituite).unwrap_or(7)
}

/// Whether the substituted positions are the rightmost ones, as in every code the tax
/// agency issues (a letter at position 8 with a digit still at position 15 is not).
pub fn omocodia_progressiva(cf: &CodiceFiscale) -> bool {
    let caratteri = cf.caratteri();
    // In right-to-left order, once a digit is seen no later position may be a letter.
    let mut visto_cifra = false;
    for indice in POSIZIONI_OMOCODIA {
        let lettera = caratteri[indice].is_ascii_alphabetic();
        if lettera && visto_cifra {
            return false;
        }
        visto_cifra |= !lettera;
    }
    true
}

/// The variant of rank `livello` (0 = base code, 1..=7 = omocodic variants) of the code's
/// base form; `None` above 7.
pub fn omocodice(cf: &CodiceFiscale, livello: u8) -> Option<CodiceFiscale> {
    let quante = usize::from(livello);
    if quante > POSIZIONI_OMOCODIA.len() {
        return None;
    }
    let mut primi = forma_base(cf).primi_quindici();
    for &indice in &POSIZIONI_OMOCODIA[..quante] {
        let cifra = usize::from(primi[indice] - b'0');
        primi[indice] = LETTERE_OMOCODIA[cifra];
    }
    Some(CodiceFiscale::da_primi_quindici(primi))
}

/// The seven omocodic variants of the code's base form, in issue order (first variant
/// first). The base code itself is not included; a code that is already a variant gives
/// the same list as its base.
pub fn omocodici(cf: &CodiceFiscale) -> Vec<CodiceFiscale> {
    (1..=7)
        .filter_map(|livello| omocodice(cf, livello))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codice_fiscale::verifica;

    fn cf(testo: &str) -> CodiceFiscale {
        verifica(testo).unwrap()
    }

    fn check(codice: &str, base: &str, livello: u8, progressiva: bool) {
        let codice = cf(codice);
        assert_eq!(forma_base(&codice).as_str(), base, "base of {codice}");
        assert_eq!(livello_omocodia(&codice), livello, "level of {codice}");
        assert_eq!(
            omocodia_progressiva(&codice),
            progressiva,
            "progressive {codice}"
        );
    }

    #[test]
    fn base_form_and_level() {
        check("VRNGNY07D68C351V", "VRNGNY07D68C351V", 0, true);
        check("VRNGNY07D68C35MN", "VRNGNY07D68C351V", 1, true);
        check("VRNGNY07D68C3RMZ", "VRNGNY07D68C351V", 2, true);
        check("VRNGNYLTDSUCPRMT", "VRNGNY07D68C351V", 7, true);
        check("VRNGNY0TD68C351H", "VRNGNY07D68C351V", 1, false);
        check("VRNGNY07D6UC351S", "VRNGNY07D68C351V", 1, false);
        // A non-progressive form (positions 7, 8, 10, 11). Its check character is E: one public
        // test suite spells it with Z, but that suite recomputes the check and never reads it.
        check("KKALMNVMAPLB331E", "KKALMN91A30B331P", 4, false);
    }

    #[test]
    fn variants_in_issue_order() {
        let varianti: Vec<String> = omocodici(&cf("VRNGNY07D68C351V"))
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(varianti.len(), 7);
        assert_eq!(varianti[0], "VRNGNY07D68C35MN");
        assert_eq!(varianti[1], "VRNGNY07D68C3RMZ");
        assert_eq!(varianti[6], "VRNGNYLTDSUCPRMT");
        // The middle ones only need to match the rule: n rightmost positions substituted.
        for (rango, variante) in varianti.iter().enumerate() {
            let variante = cf(variante);
            assert_eq!(usize::from(livello_omocodia(&variante)), rango + 1);
            assert!(omocodia_progressiva(&variante));
        }
        // A variant gives the same list as its base.
        assert_eq!(
            omocodici(&cf("VRNGNY07D68C3RMZ")),
            omocodici(&cf("VRNGNY07D68C351V"))
        );
        assert_eq!(
            omocodice(&cf("VRNGNY07D68C3RMZ"), 0),
            Some(cf("VRNGNY07D68C351V"))
        );
        assert_eq!(omocodice(&cf("VRNGNY07D68C351V"), 8), None);
    }
}
