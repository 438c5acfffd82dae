//! The fixed tables of the codice fiscale (D.M. 23 dicembre 1976 and its annexes).
//!
//! Everything here works on upper-case ASCII bytes: the parsers upper-case and check the
//! input before calling in, so these helpers never see anything else and stay branch-light.

/// Month letters, January first. The tax agency skipped letters that are easily
/// misread on paper forms (F, G, I, J, K, N, O, Q), hence the gaps.
pub(super) const LETTERE_MESE: [u8; 12] = *b"ABCDEHLMPRST";

/// The letter that stands for each digit in an omocodic code, digit `0` first.
pub(super) const LETTERE_OMOCODIA: [u8; 10] = *b"LMNPQRSTUV";

/// Zero-based indexes of the seven numeric positions (year, day, place digits: positions
/// 7, 8, 10, 11, 13, 14 and 15 counting from one), in the order in which the tax agency
/// substitutes them: from the rightmost leftwards. The n-th omocodic variant substitutes
/// the first n entries of this list.
pub(super) const POSIZIONI_OMOCODIA: [usize; 7] = [14, 13, 12, 10, 9, 7, 6];

/// Values of characters in odd positions (1st, 3rd, ... counting from one) for the check
/// character, indexed by letter (`A` = 0). A digit `d` has the value of the `d`-th letter.
const VALORI_DISPARI: [u8; 26] = [
    1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23,
];

/// Position of a character in the check computation: digits count as the letter of the
/// same rank (0 as A, 1 as B, ...), which is how the decree's tables are built.
fn rango(carattere: u8) -> usize {
    match carattere {
        b'0'..=b'9' => usize::from(carattere - b'0'),
        b'A'..=b'Z' => usize::from(carattere - b'A'),
        // Unreachable for checked input; zero keeps the function total without panicking.
        _ => 0,
    }
}

/// The check character (16th) of the first fifteen characters of a code.
pub(super) fn carattere_controllo(primi_quindici: &[u8]) -> u8 {
    let somma: usize = primi_quindici
        .iter()
        .take(15)
        .enumerate()
        .map(|(indice, &carattere)| {
            // Index 0 is position 1, an odd position.
            if indice % 2 == 0 {
                usize::from(VALORI_DISPARI[rango(carattere)])
            } else {
                rango(carattere)
            }
        })
        .sum();
    // `somma % 26` is below 26, so the cast cannot truncate.
    b'A' + (somma % 26) as u8
}

/// The digit an omocodic letter stands for, or the digit itself; `None` for anything else.
pub(super) fn cifra(carattere: u8) -> Option<u8> {
    match carattere {
        b'0'..=b'9' => Some(carattere - b'0'),
        _ => LETTERE_OMOCODIA
            .iter()
            .position(|&lettera| lettera == carattere)
            .and_then(|indice| u8::try_from(indice).ok()),
    }
}

/// The month (1..=12) of a month letter.
pub(super) fn mese(lettera: u8) -> Option<u8> {
    LETTERE_MESE
        .iter()
        .position(|&l| l == lettera)
        .and_then(|indice| u8::try_from(indice + 1).ok())
}

/// The letter of a month (1..=12).
pub(super) fn lettera_mese(mese: u32) -> Option<u8> {
    let indice = usize::try_from(mese).ok()?.checked_sub(1)?;
    LETTERE_MESE.get(indice).copied()
}

/// Whether a cadastral code may start with this letter. Italian municipalities use A..M
/// (the national archive has codes up to M4xx) and foreign states use Z; no cadastral code
/// starts with any other letter, so such a code is a typing error.
pub(super) fn lettera_luogo_ammessa(lettera: u8) -> bool {
    matches!(lettera, b'A'..=b'M' | b'Z')
}

/// Days in `mese` for a two-digit year. The century is unknown, so February has 29 days
/// when at least one candidate year (1900 + yy or 2000 + yy) is a leap year: that is
/// `yy` divisible by 4, since 2000 is a leap year and 1900 is not (`yy == 0` is covered by
/// 2000). Written as a bit test because `is_multiple_of` is newer than the workspace's
/// minimum Rust version (1.85).
pub(super) fn giorni_del_mese(mese: u8, anno_due_cifre: u8) -> u8 {
    match mese {
        2 if anno_due_cifre & 0b11 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(primi_quindici: &str, atteso: char) {
        assert_eq!(
            char::from(carattere_controllo(primi_quindici.as_bytes())),
            atteso,
            "check character of {primi_quindici}"
        );
    }

    #[test]
    fn check_characters_of_public_examples() {
        check("RSSMRA80A01H501", 'U');
        check("MRTMTT25D09F205", 'Z');
        check("MLLSNT82P65Z404", 'U');
        check("VRNGNY07D68C351", 'V');
        check("VRNGNY07D68C35M", 'N');
        check("VRNGNYLTDSUCPRM", 'T');
    }

    #[test]
    fn odd_values_are_a_permutation() {
        // If two letters had the same odd value, a typo swapping them would go undetected.
        let mut visti = [false; 26];
        for &valore in &VALORI_DISPARI {
            assert!(!visti[usize::from(valore)], "value {valore} repeated");
            visti[usize::from(valore)] = true;
        }
    }

    #[test]
    fn digits_and_months() {
        assert_eq!(cifra(b'7'), Some(7));
        assert_eq!(cifra(b'L'), Some(0));
        assert_eq!(cifra(b'V'), Some(9));
        assert_eq!(cifra(b'A'), None);
        assert_eq!(mese(b'A'), Some(1));
        assert_eq!(mese(b'T'), Some(12));
        assert_eq!(mese(b'F'), None);
        assert_eq!(lettera_mese(6), Some(b'H'));
        assert_eq!(lettera_mese(0), None);
        assert_eq!(lettera_mese(13), None);
        assert_eq!(giorni_del_mese(2, 0), 29);
        assert_eq!(giorni_del_mese(2, 1), 28);
        assert_eq!(giorni_del_mese(2, 96), 29);
        assert_eq!(giorni_del_mese(4, 96), 30);
        assert_eq!(giorni_del_mese(12, 96), 31);
    }
}
