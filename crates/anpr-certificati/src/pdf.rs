//! Layout and PDF/A-2b writing.
//!
//! Coordinates are PDF points (1/72 inch) on A4, origin bottom-left. Streams are written
//! uncompressed: a certificate is a few kilobytes of text and the font subset, and not
//! compressing keeps writing well under a millisecond.

use pdf_writer::types::{CidFontType, FontFlags, OutputIntentSubtype, SystemInfo, UnicodeCmap};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use crate::font::{subset, FontSubset, NOME_SUBSET};
use crate::immagine::Codifica;
use crate::{Blocco, Documento, ErroreDocumento};

const LARGHEZZA: f32 = 595.0;
const ALTEZZA: f32 = 842.0;
const MARGINE: f32 = 56.0;
/// Space kept free at the bottom of every page for the QR code and the small print.
const ZONA_PIEDE: f32 = 150.0;
const COLONNA_VALORE: f32 = 215.0;
const ICC_SRGB: &[u8] = include_bytes!("../assets/sRGB.icc");
const FONT: Name<'static> = Name(b"F1");
const LOGO: Name<'static> = Name(b"Im1");
/// Height the logo is drawn at, in points (its width follows, at most [`LOGO_LARGHEZZA`]).
const LOGO_ALTEZZA: f32 = 46.0;
const LOGO_LARGHEZZA: f32 = 140.0;

/// Writes the document as PDF/A-2b.
pub fn genera_pdf(doc: &Documento) -> Result<Vec<u8>, ErroreDocumento> {
    let font = subset()?;
    let qr = match &doc.qr {
        Some(q) => Some(codice_qr(q.contenuto.as_bytes())?),
        None => None,
    };
    let pagine = impagina(doc, font, qr.as_ref());
    Ok(scrivi(doc, font, pagine))
}

/// A QR code as its modules (row-major) and its width in modules.
pub(crate) struct ModuliQr {
    colori: Vec<qrcode::Color>,
    lato: usize,
}

/// The QR code of `data` in byte mode at error-correction level M, in the smallest
/// version that holds it, with a fixed mask pattern. The crate's defaults (segment
/// optimisation, then drawing all eight masks to score them) cost milliseconds and
/// dominated a whole certificate; the standard lets the encoder pick any mask, and a
/// URL with a base64url payload gains nothing from mixed-mode segments.
fn codice_qr(data: &[u8]) -> Result<ModuliQr, ErroreDocumento> {
    let ec = qrcode::EcLevel::M;
    let errore = |e: qrcode::types::QrError| ErroreDocumento::Qr(e.to_string());
    for v in 1..=40 {
        let versione = qrcode::Version::Normal(v);
        let mut bits = qrcode::bits::Bits::new(versione);
        if bits.push_byte_data(data).is_err() || bits.push_terminator(ec).is_err() {
            continue;
        }
        let (dati, correzione) =
            qrcode::ec::construct_codewords(&bits.into_bytes(), versione, ec).map_err(errore)?;
        let mut canvas = qrcode::canvas::Canvas::new(versione, ec);
        canvas.draw_all_functional_patterns();
        canvas.draw_data(&dati, &correzione);
        canvas.apply_mask(qrcode::canvas::MaskPattern::Checkerboard);
        return Ok(ModuliQr {
            colori: canvas.into_colors(),
            lato: usize::try_from(versione.width()).unwrap_or(0),
        });
    }
    Err(ErroreDocumento::Qr(format!(
        "{} bytes do not fit a QR code",
        data.len()
    )))
}

/// Lays out the body into page content streams.
fn impagina(doc: &Documento, font: &FontSubset, qr: Option<&ModuliQr>) -> Vec<Vec<u8>> {
    let mut pagine = Vec::new();
    let mut p = Pagina::nuova(doc, font);
    if let Some(img) = &doc.logo {
        // Scaled to the height, or to the width for a very wide logo; centred.
        let rapporto = img.larghezza as f32 / img.altezza as f32;
        let (w, h) = if LOGO_ALTEZZA * rapporto > LOGO_LARGHEZZA {
            (LOGO_LARGHEZZA, LOGO_LARGHEZZA / rapporto)
        } else {
            (LOGO_ALTEZZA * rapporto, LOGO_ALTEZZA)
        };
        p.content.save_state();
        p.content
            .transform([w, 0.0, 0.0, h, (LARGHEZZA - w) / 2.0, p.y - h]);
        p.content.x_object(LOGO);
        p.content.restore_state();
        p.y -= h + 16.0;
    }
    // Header: issuing office, first line larger, then a rule.
    for (i, riga) in doc.intestazione.iter().enumerate() {
        let corpo = if i == 0 { 13.0 } else { 9.5 };
        p.testo_centrato(riga, corpo);
    }
    p.y -= 4.0;
    p.linea();
    p.y -= 14.0;
    for blocco in &doc.corpo {
        match blocco {
            Blocco::Titolo(t) => {
                p.y -= 6.0;
                for r in a_capo(font, t, 15.0, LARGHEZZA - 2.0 * MARGINE) {
                    p.spazio_per(22.0, &mut pagine);
                    p.testo_centrato(&r, 15.0);
                }
                p.y -= 4.0;
            }
            Blocco::Sottotitolo(t) => {
                for r in a_capo(font, t, 10.5, LARGHEZZA - 2.0 * MARGINE) {
                    p.spazio_per(15.0, &mut pagine);
                    p.testo_centrato(&r, 10.5);
                }
            }
            Blocco::Paragrafo(t) => {
                for r in a_capo(font, t, 10.0, LARGHEZZA - 2.0 * MARGINE) {
                    p.spazio_per(14.0, &mut pagine);
                    p.testo(MARGINE, &r, 10.0, 0.0);
                    p.y -= 14.0;
                }
                p.y -= 4.0;
            }
            Blocco::Campo { etichetta, valore } => {
                let righe = a_capo(font, valore, 10.0, LARGHEZZA - MARGINE - COLONNA_VALORE);
                p.spazio_per(14.0 * righe.len().max(1) as f32, &mut pagine);
                p.testo(MARGINE, etichetta, 8.5, 0.35);
                for r in &righe {
                    p.testo(COLONNA_VALORE, r, 10.0, 0.0);
                    p.y -= 14.0;
                }
                if righe.is_empty() {
                    p.y -= 14.0;
                }
            }
            Blocco::Separatore => {
                p.spazio_per(10.0, &mut pagine);
                p.y -= 2.0;
                p.linea();
                p.y -= 14.0;
            }
            Blocco::Spazio => p.y -= 10.0,
            Blocco::NuovaPagina => p.nuova_pagina(&mut pagine),
            Blocco::Riquadro { titolo, righe } => {
                let larghezza_valore = LARGHEZZA - MARGINE - COLONNA_VALORE - 8.0;
                let testi: Vec<Vec<String>> = righe
                    .iter()
                    .map(|(_, v)| a_capo(font, v, 9.5, larghezza_valore))
                    .collect();
                let altezza = 26.0
                    + testi
                        .iter()
                        .map(|t| 12.5 * t.len().max(1) as f32)
                        .sum::<f32>();
                p.spazio_per(altezza + 10.0, &mut pagine);
                let cima = p.y + 15.0;
                p.testo(MARGINE + 8.0, titolo, 10.5, 0.0);
                p.y -= 18.0;
                for ((etichetta, _), valore) in righe.iter().zip(&testi) {
                    p.testo(MARGINE + 8.0, etichetta, 8.0, 0.35);
                    for r in valore {
                        p.testo(COLONNA_VALORE, r, 9.5, 0.0);
                        p.y -= 12.5;
                    }
                    if valore.is_empty() {
                        p.y -= 12.5;
                    }
                }
                p.y -= 2.0;
                p.content.set_stroke_rgb(0.0, 0.2, 0.4);
                p.content.set_line_width(0.8);
                p.content
                    .rect(MARGINE, p.y, LARGHEZZA - 2.0 * MARGINE, cima - p.y);
                p.content.stroke();
                p.y -= 16.0;
            }
        }
    }
    // Last page: QR code bottom right, small print to its left.
    let mut y = MARGINE + 100.0;
    let larghezza_piede = LARGHEZZA - 2.0 * MARGINE - if qr.is_some() { 115.0 } else { 0.0 };
    let mut righe_piede = Vec::new();
    for r in &doc.piede {
        righe_piede.extend(a_capo(font, r, 7.5, larghezza_piede));
    }
    if let Some(q) = &doc.qr {
        for r in &q.didascalia {
            righe_piede.extend(a_capo(font, r, 7.5, larghezza_piede));
        }
    }
    for r in righe_piede.iter().take(12) {
        p.y = y;
        p.testo(MARGINE, r, 7.5, 0.2);
        y -= 9.5;
    }
    if let Some(code) = qr {
        disegna_qr(
            &mut p.content,
            code,
            LARGHEZZA - MARGINE - 100.0,
            MARGINE,
            100.0,
        );
    }
    pagine.push(p.content.finish().into_vec());
    pagine
}

/// One page being filled.
struct Pagina<'a> {
    content: Content,
    y: f32,
    font: &'a FontSubset,
    doc: &'a Documento,
}

impl<'a> Pagina<'a> {
    fn nuova(doc: &'a Documento, font: &'a FontSubset) -> Self {
        let mut content = Content::new();
        if let Some(f) = &doc.filigrana {
            // Drawn first, in a light colour, so the text stays readable over it.
            let corpo = 30.0;
            let w = font.larghezza(f, corpo);
            let (s, c) = (
                std::f32::consts::FRAC_PI_4.sin(),
                std::f32::consts::FRAC_PI_4.cos(),
            );
            let (cx, cy) = (LARGHEZZA / 2.0, ALTEZZA / 2.0);
            content.save_state();
            content.set_fill_rgb(0.93, 0.72, 0.72);
            content.begin_text();
            content.set_font(FONT, corpo);
            content.set_text_matrix([c, s, -s, c, cx - c * w / 2.0, cy - s * w / 2.0]);
            content.show(Str(&font.codifica(f)));
            content.end_text();
            content.restore_state();
        }
        Self {
            content,
            y: ALTEZZA - MARGINE,
            font,
            doc,
        }
    }

    /// Starts a new page when `altezza` does not fit above the reserved bottom zone.
    fn spazio_per(&mut self, altezza: f32, pagine: &mut Vec<Vec<u8>>) {
        if self.y - altezza < MARGINE + ZONA_PIEDE {
            self.nuova_pagina(pagine);
        }
    }

    fn nuova_pagina(&mut self, pagine: &mut Vec<Vec<u8>>) {
        let vecchia = std::mem::replace(self, Pagina::nuova(self.doc, self.font));
        pagine.push(vecchia.content.finish().into_vec());
    }

    /// Shows `t` with its baseline at the current `y` (grey level `grigio`, 0 = black).
    fn testo(&mut self, x: f32, t: &str, corpo: f32, grigio: f32) {
        self.content.set_fill_rgb(grigio, grigio, grigio);
        self.content.begin_text();
        self.content.set_font(FONT, corpo);
        self.content.next_line(x, self.y);
        self.content.show(Str(&self.font.codifica(t)));
        self.content.end_text();
    }

    fn testo_centrato(&mut self, t: &str, corpo: f32) {
        let x = (LARGHEZZA - self.font.larghezza(t, corpo)) / 2.0;
        self.testo(x.max(MARGINE), t, corpo, 0.0);
        self.y -= corpo * 1.45;
    }

    fn linea(&mut self) {
        self.content.set_stroke_rgb(0.0, 0.2, 0.4);
        self.content.set_line_width(0.8);
        self.content.move_to(MARGINE, self.y);
        self.content.line_to(LARGHEZZA - MARGINE, self.y);
        self.content.stroke();
    }
}

/// Greedy word wrap to `larghezza` points; a word longer than the line is cut.
fn a_capo(font: &FontSubset, testo: &str, corpo: f32, larghezza: f32) -> Vec<String> {
    let mut righe = Vec::new();
    let mut riga = String::new();
    for parola in testo.split_whitespace() {
        let prova = if riga.is_empty() {
            parola.to_owned()
        } else {
            format!("{riga} {parola}")
        };
        if font.larghezza(&prova, corpo) <= larghezza {
            riga = prova;
            continue;
        }
        if !riga.is_empty() {
            righe.push(std::mem::take(&mut riga));
        }
        // A single word wider than the line: cut it character by character.
        let mut pezzo = String::new();
        for c in parola.chars() {
            pezzo.push(c);
            if font.larghezza(&pezzo, corpo) > larghezza {
                pezzo.pop();
                righe.push(std::mem::take(&mut pezzo));
                pezzo.push(c);
            }
        }
        riga = pezzo;
    }
    if !riga.is_empty() {
        righe.push(riga);
    }
    righe
}

/// Draws the QR code as filled rectangles (vector: sharp at any resolution), merging
/// each row's runs of dark modules, with the quiet zone the standard asks for.
fn disegna_qr(content: &mut Content, code: &ModuliQr, x: f32, y: f32, lato: f32) {
    let n = code.lato;
    let quiete = 4usize;
    let modulo = lato / (n + 2 * quiete) as f32;
    let colori = &code.colori;
    content.set_fill_rgb(1.0, 1.0, 1.0);
    content.rect(x, y, lato, lato);
    content.fill_nonzero();
    content.set_fill_rgb(0.0, 0.0, 0.0);
    for riga in 0..n {
        let mut col = 0;
        while col < n {
            if colori[riga * n + col] == qrcode::Color::Dark {
                let inizio = col;
                while col < n && colori[riga * n + col] == qrcode::Color::Dark {
                    col += 1;
                }
                let rx = x + (quiete + inizio) as f32 * modulo;
                let ry = y + lato - (quiete + riga + 1) as f32 * modulo;
                content.rect(rx, ry, (col - inizio) as f32 * modulo, modulo);
            } else {
                col += 1;
            }
        }
    }
    content.fill_nonzero();
}

/// Writes the PDF objects.
fn scrivi(doc: &Documento, font: &FontSubset, pagine: Vec<Vec<u8>>) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let pages = Ref::new(2);
    let type0 = Ref::new(3);
    let cid = Ref::new(4);
    let descrittore = Ref::new(5);
    let programma = Ref::new(6);
    let to_unicode = Ref::new(7);
    let icc = Ref::new(8);
    let metadati = Ref::new(9);
    let primo_libero = 10;
    let page_refs: Vec<(Ref, Ref)> = (0..pagine.len())
        .map(|i| {
            let base = primo_libero + 2 * i32::try_from(i).unwrap_or(0);
            (Ref::new(base), Ref::new(base + 1))
        })
        .collect();
    let logo_ref = Ref::new(primo_libero + 2 * i32::try_from(pagine.len()).unwrap_or(0));

    let mut cat = pdf.catalog(catalog);
    cat.pages(pages).metadata(metadati).lang(TextStr("it-IT"));
    cat.output_intents()
        .push()
        .subtype(OutputIntentSubtype::PDFA)
        .output_condition_identifier(TextStr("sRGB IEC61966-2.1"))
        .info(TextStr("sRGB IEC61966-2.1"))
        .dest_output_profile(icc);
    cat.finish();

    pdf.pages(pages)
        .kids(page_refs.iter().map(|(p, _)| *p))
        .count(i32::try_from(page_refs.len()).unwrap_or(1));
    for (i, ((page, contenuto), stream)) in page_refs.iter().zip(&pagine).enumerate() {
        let mut pg = pdf.page(*page);
        pg.parent(pages)
            .media_box(Rect::new(0.0, 0.0, LARGHEZZA, ALTEZZA))
            .contents(*contenuto);
        let mut risorse = pg.resources();
        risorse.fonts().pair(FONT, type0);
        if i == 0 && doc.logo.is_some() {
            risorse.x_objects().pair(LOGO, logo_ref);
        }
        risorse.finish();
        pg.finish();
        pdf.stream(*contenuto, stream);
    }
    if let Some(img) = &doc.logo {
        let mut x = pdf.image_xobject(logo_ref, &img.dati);
        x.filter(match img.codifica {
            Codifica::Dct => Filter::DctDecode,
            Codifica::Flate => Filter::FlateDecode,
        });
        x.width(i32::try_from(img.larghezza).unwrap_or(1));
        x.height(i32::try_from(img.altezza).unwrap_or(1));
        if img.grigio {
            x.color_space().device_gray();
        } else {
            x.color_space().device_rgb();
        }
        x.bits_per_component(8);
        x.finish();
    }

    let sistema = SystemInfo {
        registry: Str(b"Adobe"),
        ordering: Str(b"Identity"),
        supplement: 0,
    };
    let nome = Name(NOME_SUBSET.as_bytes());
    pdf.type0_font(type0)
        .base_font(nome)
        .encoding_predefined(Name(b"Identity-H"))
        .descendant_font(cid)
        .to_unicode(to_unicode);
    let mut cf = pdf.cid_font(cid);
    cf.subtype(CidFontType::Type2)
        .base_font(nome)
        .system_info(sistema)
        .font_descriptor(descrittore)
        .cid_to_gid_map_predefined(Name(b"Identity"));
    cf.widths().consecutive(0, font.larghezze.iter().copied());
    cf.finish();
    pdf.font_descriptor(descrittore)
        .name(nome)
        .flags(FontFlags::NON_SYMBOLIC)
        .bbox(Rect::new(
            font.bbox[0],
            font.bbox[1],
            font.bbox[2],
            font.bbox[3],
        ))
        .italic_angle(0.0)
        .ascent(font.ascent)
        .descent(font.descent)
        .cap_height(font.cap_height)
        .stem_v(80.0)
        .font_file2(programma);
    pdf.stream(programma, &font.programma).pair(
        Name(b"Length1"),
        i32::try_from(font.programma.len()).unwrap_or(i32::MAX),
    );
    let mut cmap = UnicodeCmap::new(Name(b"ANPR-UTF16"), sistema);
    for (g, c) in font.coppie_unicode() {
        cmap.pair(g, c);
    }
    let cmap = cmap.finish();
    pdf.cmap(to_unicode, cmap.as_slice())
        .name(Name(b"ANPR-UTF16"))
        .system_info(sistema);
    pdf.icc_profile(icc, ICC_SRGB).n(3);
    let xmp = xmp(doc);
    pdf.metadata(metadati, xmp.as_bytes());
    pdf.set_file_id((doc.id_file.to_vec(), doc.id_file.to_vec()));
    pdf.finish()
}

/// The XMP packet with the PDF/A-2b identification.
fn xmp(doc: &Documento) -> String {
    let data = doc.creato.format("%Y-%m-%dT%H:%M:%SZ");
    let titolo = escape_xml(&doc.titolo_metadati);
    format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n\
<x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\n\
<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n\
<rdf:Description rdf:about=\"\" xmlns:pdfaid=\"http://www.aiim.org/pdfa/ns/id/\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\" xmlns:xmp=\"http://ns.adobe.com/xap/1.0/\" xmlns:pdf=\"http://ns.adobe.com/pdf/1.3/\">\n\
<pdfaid:part>2</pdfaid:part>\n\
<pdfaid:conformance>B</pdfaid:conformance>\n\
<dc:format>application/pdf</dc:format>\n\
<dc:title><rdf:Alt><rdf:li xml:lang=\"x-default\">{titolo}</rdf:li></rdf:Alt></dc:title>\n\
<xmp:CreateDate>{data}</xmp:CreateDate>\n\
<xmp:ModifyDate>{data}</xmp:ModifyDate>\n\
<xmp:CreatorTool>anpr</xmp:CreatorTool>\n\
<pdf:Producer>anpr</pdf:Producer>\n\
</rdf:Description>\n\
</rdf:RDF>\n\
</x:xmpmeta>\n\
<?xpacket end=\"w\"?>"
    )
}

fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}
