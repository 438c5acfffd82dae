//! The one embedded font (DejaVu Sans, free licence in `assets/LICENSE-DejaVu.txt`),
//! subset once per process to the characters a certificate may need.
//!
//! PDF/A requires every font to be embedded. Embedding the whole 740 KiB font in every
//! certificate would make documents large and slow to write, and subsetting per
//! document would cost milliseconds each; instead the font is subset **once** to a fixed
//! repertoire (Basic Latin, Latin-1, Latin Extended-A — Italian, German, French and
//! Slovenian letters — and common punctuation) and that subset is copied into every
//! document. Text is written with the `Identity-H` encoding, two bytes per glyph, the
//! glyph ids being those of the subset; characters outside the repertoire are shown as
//! `?` (the service layer only prints registry data, which is Latin script).

use std::collections::HashMap;
use std::sync::OnceLock;

/// The font program, shipped with the crate.
const DEJAVU_SANS: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// PostScript name of the subset (the six-letter tag marks it as a subset, as PDF
/// requires for subset fonts).
pub(crate) const NOME_SUBSET: &str = "ANPRCE+DejaVuSans";

/// Characters beyond the Latin ranges that certificates use.
const EXTRA: &str = "€‘’“”–—•…«»№";

/// The subset font with what the writer needs to measure and encode text.
#[derive(Debug)]
pub(crate) struct FontSubset {
    /// The TrueType program of the subset (embedded as `FontFile2`).
    pub programma: Vec<u8>,
    /// Character → glyph id in the subset.
    glifi: HashMap<char, u16>,
    /// Advance width of each subset glyph, in 1/1000 em, indexed by subset glyph id.
    pub larghezze: Vec<f32>,
    pub ascent: f32,
    pub descent: f32,
    pub cap_height: f32,
    pub bbox: [f32; 4],
}

/// Why the shipped font could not be prepared: a build defect, never the caller's.
#[derive(Debug, thiserror::Error)]
#[error("embedded font unusable: {0}")]
pub struct FontError(String);

static SUBSET: OnceLock<Result<FontSubset, String>> = OnceLock::new();

/// The process-wide subset (built on first use).
pub(crate) fn subset() -> Result<&'static FontSubset, FontError> {
    SUBSET
        .get_or_init(costruisci)
        .as_ref()
        .map_err(|e| FontError(e.clone()))
}

fn repertorio() -> impl Iterator<Item = char> {
    (0x20u32..=0x7E)
        .chain(0xA0..=0x17F)
        .filter_map(char::from_u32)
        .chain(EXTRA.chars())
}

fn costruisci() -> Result<FontSubset, String> {
    let face = ttf_parser::Face::parse(DEJAVU_SANS, 0).map_err(|e| e.to_string())?;
    let upem = f32::from(face.units_per_em());
    let scala = |v: f32| v * 1000.0 / upem;
    let mut remapper = subsetter::GlyphRemapper::new();
    let mut glifi = HashMap::new();
    // Glyph 0 (.notdef) stays glyph 0: remap it first.
    remapper.remap(0);
    let mut originali: Vec<u16> = vec![0];
    for c in repertorio() {
        if let Some(g) = face.glyph_index(c) {
            let nuovo = remapper.remap(g.0);
            if usize::from(nuovo) == originali.len() {
                originali.push(g.0);
            }
            glifi.insert(c, nuovo);
        }
    }
    let programma = subsetter::subset(DEJAVU_SANS, 0, &remapper).map_err(|e| e.to_string())?;
    let larghezze = originali
        .iter()
        .map(|g| {
            scala(f32::from(
                face.glyph_hor_advance(ttf_parser::GlyphId(*g)).unwrap_or(0),
            ))
        })
        .collect();
    let b = face.global_bounding_box();
    Ok(FontSubset {
        programma,
        glifi,
        larghezze,
        ascent: scala(f32::from(face.ascender())),
        descent: scala(f32::from(face.descender())),
        cap_height: scala(f32::from(face.capital_height().unwrap_or(face.ascender()))),
        bbox: [
            scala(f32::from(b.x_min)),
            scala(f32::from(b.y_min)),
            scala(f32::from(b.x_max)),
            scala(f32::from(b.y_max)),
        ],
    })
}

impl FontSubset {
    /// The subset glyph of a character (`?` for characters outside the repertoire).
    pub fn glifo(&self, c: char) -> u16 {
        match self.glifi.get(&c) {
            Some(g) => *g,
            None => self.glifi.get(&'?').copied().unwrap_or(0),
        }
    }

    /// Width of `testo` at `corpo` points.
    pub fn larghezza(&self, testo: &str, corpo: f32) -> f32 {
        testo
            .chars()
            .map(|c| {
                self.larghezze
                    .get(usize::from(self.glifo(c)))
                    .copied()
                    .unwrap_or(0.0)
            })
            .sum::<f32>()
            * corpo
            / 1000.0
    }

    /// `testo` encoded for `Identity-H` (big-endian glyph ids).
    pub fn codifica(&self, testo: &str) -> Vec<u8> {
        testo
            .chars()
            .flat_map(|c| self.glifo(c).to_be_bytes())
            .collect()
    }

    /// Character ↔ glyph pairs for the `ToUnicode` map, so that text extraction (and
    /// screen readers) get the real letters back.
    pub fn coppie_unicode(&self) -> impl Iterator<Item = (u16, char)> + '_ {
        let mut v: Vec<(u16, char)> = self.glifi.iter().map(|(c, g)| (*g, *c)).collect();
        // Several characters may share a glyph (space and no-break space): keep the
        // first, so that each glyph maps back to one character.
        v.sort_unstable();
        v.dedup_by_key(|(g, _)| *g);
        v.into_iter()
    }
}
