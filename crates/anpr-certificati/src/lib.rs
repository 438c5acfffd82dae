//! Certificate documents: what a printed registry document looks like and how it is
//! written as PDF/A-2b, plus the signed verification payload its QR code carries.
//!
//! The service layer decides *what* a certificate says (`anpr-service::certificati`)
//! and hands a [`Documento`] — header, title, blocks of text, watermark, QR content —
//! to [`genera_pdf`], which lays it out on A4 pages in the Italian public-administration
//! style. This crate knows nothing of the registry: it is a small, fast document writer.
//!
//! PDF/A-2b conformance is built in, not checked afterwards: the one font is embedded
//! (subset once per process, see [`font`]), every colour is DeviceRGB under an sRGB
//! output intent, XMP metadata carries the PDF/A identification, the trailer has a file
//! id, and nothing PDF/A forbids (transparency, encryption, scripts, external content) is
//! ever written.
#![forbid(unsafe_code)]

pub mod firma;
mod font;
pub mod immagine;
mod pdf;

pub use firma::{id_casuale, ErroreChiave, ErrorePayload, Firmatario, PayloadVerifica};
pub use font::FontError;
pub use immagine::{tipo_immagine, ErroreImmagine, Immagine};
pub use pdf::genera_pdf;

use std::sync::Arc;

use chrono::{DateTime, Utc};

/// A document to print.
#[derive(Debug, Clone, PartialEq)]
pub struct Documento {
    /// Document title for the metadata (XMP `dc:title`).
    pub titolo_metadati: String,
    /// The issuer's logo, centred above the header of the first page.
    pub logo: Option<Arc<Immagine>>,
    /// Header lines at the top of the first page (issuing office), the first one larger.
    pub intestazione: Vec<String>,
    /// The body, top to bottom; it flows onto further pages when needed.
    pub corpo: Vec<Blocco>,
    /// Diagonal watermark on every page (environments other than production).
    pub filigrana: Option<String>,
    /// QR code printed at the bottom of the last page, with its caption lines.
    pub qr: Option<Qr>,
    /// Small print at the bottom of the last page (legal notes, stamp duty).
    pub piede: Vec<String>,
    /// Creation time written in the metadata.
    pub creato: DateTime<Utc>,
    /// File identifier (trailer `/ID`): the certificate id.
    pub id_file: [u8; 16],
}

/// A block of the body.
#[derive(Debug, Clone, PartialEq)]
pub enum Blocco {
    /// A centred heading.
    Titolo(String),
    /// A centred sub-heading in a smaller size (e.g. the title in the second language).
    Sottotitolo(String),
    /// Running text, wrapped to the page width.
    Paragrafo(String),
    /// A label and its value on one row (the value wraps under itself).
    Campo { etichetta: String, valore: String },
    /// A horizontal rule.
    Separatore,
    /// Vertical space.
    Spazio,
    /// The following blocks start on a new page.
    NuovaPagina,
    /// A framed box (e.g. a card to cut out): its title on the frame's first line and
    /// its rows inside, kept together on one page.
    Riquadro {
        titolo: String,
        righe: Vec<(String, String)>,
    },
}

/// The QR code: its text content and the caption printed beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qr {
    pub contenuto: String,
    pub didascalia: Vec<String>,
}

/// Why a document could not be written: never the caller's fault.
#[derive(Debug, thiserror::Error)]
pub enum ErroreDocumento {
    #[error(transparent)]
    Font(#[from] FontError),
    #[error("QR code content too long: {0}")]
    Qr(String),
}
