//! Images a document may carry (the municipality's logo): PNG or JPEG, checked and
//! turned once into what a PDF/A-2b page can draw.
//!
//! - **JPEG** is embedded as is (`DCTDecode`): only its header is read, for the size and
//!   the number of components. Grey (1) and RGB (3) are accepted; CMYK (4) is refused,
//!   since PDF/A forbids device colours other than the output intent's (sRGB) family.
//! - **PNG** is decoded (with limits against decompression bombs), any transparency is
//!   flattened onto white (no soft mask, so the page needs no transparency group), and
//!   the pixels are deflated (`FlateDecode`).
//!
//! Decoding happens when the logo is saved and when a process first prints it; the
//! service layer keeps the prepared [`Immagine`] so that certificates pay nothing.

use std::io::Write;

/// Largest side accepted, in pixels: a logo is printed at most a few centimetres wide.
pub const LATO_MASSIMO: u32 = 2000;

/// Memory a PNG may decode into (RGBA at the largest size fits).
const MEMORIA_PNG: usize = (LATO_MASSIMO as usize) * (LATO_MASSIMO as usize) * 8;

/// How the pixel data of an [`Immagine`] is encoded in the PDF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codifica {
    /// A JPEG file as is.
    Dct,
    /// Deflated 8-bit samples, row by row.
    Flate,
}

/// An image ready to be drawn: size, colour space and the encoded samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Immagine {
    pub larghezza: u32,
    pub altezza: u32,
    /// One grey sample per pixel rather than three RGB ones.
    pub grigio: bool,
    pub codifica: Codifica,
    pub dati: Vec<u8>,
}

/// The MIME type of a supported image, from its first bytes.
pub fn tipo_immagine(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else {
        None
    }
}

/// Why an image cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErroreImmagine {
    #[error("not a PNG or JPEG image")]
    Formato,
    #[error("the image cannot be read: {0}")]
    Illeggibile(String),
    #[error("image of {larghezza}x{altezza} pixels: at most {LATO_MASSIMO} per side")]
    Dimensioni { larghezza: u32, altezza: u32 },
    #[error("CMYK or 12-bit JPEG: only 8-bit grey or RGB images are admitted in PDF/A")]
    ColoriNonAmmessi,
}

impl Immagine {
    /// Checks and prepares a PNG or JPEG file.
    pub fn da_file(bytes: &[u8]) -> Result<Self, ErroreImmagine> {
        match tipo_immagine(bytes) {
            Some("image/png") => png(bytes),
            Some(_) => jpeg(bytes),
            None => Err(ErroreImmagine::Formato),
        }
    }
}

fn controlla_lati(larghezza: u32, altezza: u32) -> Result<(), ErroreImmagine> {
    if larghezza == 0 || altezza == 0 || larghezza > LATO_MASSIMO || altezza > LATO_MASSIMO {
        Err(ErroreImmagine::Dimensioni { larghezza, altezza })
    } else {
        Ok(())
    }
}

/// Reads the frame header of a JPEG (the first SOFn marker).
fn jpeg(bytes: &[u8]) -> Result<Immagine, ErroreImmagine> {
    let corrotto = || ErroreImmagine::Illeggibile("JPEG markers truncated".into());
    let mut i = 2;
    loop {
        // Markers may be padded with 0xFF fill bytes.
        while bytes.get(i) == Some(&0xFF) && bytes.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        if bytes.get(i) != Some(&0xFF) {
            return Err(corrotto());
        }
        let marker = *bytes.get(i + 1).ok_or_else(corrotto)?;
        let lunghezza = usize::from(u16::from_be_bytes([
            *bytes.get(i + 2).ok_or_else(corrotto)?,
            *bytes.get(i + 3).ok_or_else(corrotto)?,
        ]));
        if lunghezza < 2 {
            return Err(corrotto());
        }
        let sof = (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if sof {
            let h = bytes.get(i + 4..i + 10).ok_or_else(corrotto)?;
            let precisione = h[0];
            let altezza = u32::from(u16::from_be_bytes([h[1], h[2]]));
            let larghezza = u32::from(u16::from_be_bytes([h[3], h[4]]));
            let componenti = h[5];
            controlla_lati(larghezza, altezza)?;
            if precisione != 8 || !matches!(componenti, 1 | 3) {
                return Err(ErroreImmagine::ColoriNonAmmessi);
            }
            return Ok(Immagine {
                larghezza,
                altezza,
                grigio: componenti == 1,
                codifica: Codifica::Dct,
                dati: bytes.to_vec(),
            });
        }
        // Start of scan before any frame header, or end of image: not a usable JPEG.
        if matches!(marker, 0xDA | 0xD9) {
            return Err(corrotto());
        }
        i += 2 + lunghezza;
    }
}

/// Decodes a PNG to 8-bit grey or RGB over white, deflated.
fn png(bytes: &[u8]) -> Result<Immagine, ErroreImmagine> {
    let errore = |e: png::DecodingError| ErroreImmagine::Illeggibile(e.to_string());
    let mut decoder = png::Decoder::new_with_limits(bytes, png::Limits { bytes: MEMORIA_PNG });
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let header = decoder.read_header_info().map_err(errore)?;
    controlla_lati(header.width, header.height)?;
    let mut reader = decoder.read_info().map_err(errore)?;
    let mut buffer = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buffer).map_err(errore)?;
    let pixel =
        usize::try_from(info.width).unwrap_or(0) * usize::try_from(info.height).unwrap_or(0);
    let canali = info.color_type.samples();
    let sorgente = buffer.get(..pixel * canali).ok_or_else(|| {
        ErroreImmagine::Illeggibile("PNG frame shorter than its header says".into())
    })?;
    // Transparency is flattened onto white: c' = c·a + 255·(1 − a).
    let su_bianco = |c: u8, a: u8| -> u8 {
        let (c, a) = (u32::from(c), u32::from(a));
        u8::try_from((c * a + 255 * (255 - a) + 127) / 255).unwrap_or(u8::MAX)
    };
    let (grigio, campioni): (bool, Vec<u8>) = match info.color_type {
        png::ColorType::Grayscale => (true, sorgente.to_vec()),
        png::ColorType::GrayscaleAlpha => (
            true,
            sorgente
                .chunks_exact(2)
                .map(|p| su_bianco(p[0], p[1]))
                .collect(),
        ),
        png::ColorType::Rgb => (false, sorgente.to_vec()),
        png::ColorType::Rgba => (
            false,
            sorgente
                .chunks_exact(4)
                .flat_map(|p| {
                    [
                        su_bianco(p[0], p[3]),
                        su_bianco(p[1], p[3]),
                        su_bianco(p[2], p[3]),
                    ]
                })
                .collect(),
        ),
        // EXPAND turns palettes into RGB(A); nothing else remains.
        png::ColorType::Indexed => {
            return Err(ErroreImmagine::Illeggibile(
                "indexed PNG not expanded".into(),
            ))
        }
    };
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&campioni)
        .and_then(|()| z.finish())
        .map(|dati| Immagine {
            larghezza: info.width,
            altezza: info.height,
            grigio,
            codifica: Codifica::Flate,
            dati,
        })
        .map_err(|e| ErroreImmagine::Illeggibile(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG written with the `png` crate's encoder.
    fn png_di_prova(w: u32, h: u32, colore: png::ColorType, pixel: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, w, h);
            enc.set_color(colore);
            enc.set_depth(png::BitDepth::Eight);
            let mut wr = enc.write_header().unwrap();
            wr.write_image_data(pixel).unwrap();
        }
        out
    }

    fn inflate(d: &[u8]) -> Vec<u8> {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(d)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn rgba_png_is_flattened_on_white() {
        // Opaque red, transparent black, half-transparent blue.
        let pixel = [255, 0, 0, 255, 0, 0, 0, 0, 0, 0, 255, 128];
        let img = Immagine::da_file(&png_di_prova(3, 1, png::ColorType::Rgba, &pixel)).unwrap();
        assert_eq!((img.larghezza, img.altezza, img.grigio), (3, 1, false));
        assert_eq!(img.codifica, Codifica::Flate);
        assert_eq!(
            inflate(&img.dati),
            [255, 0, 0, 255, 255, 255, 127, 127, 255]
        );
    }

    #[test]
    fn grey_png_stays_grey() {
        let img = Immagine::da_file(&png_di_prova(
            2,
            2,
            png::ColorType::Grayscale,
            &[0, 50, 100, 255],
        ))
        .unwrap();
        assert!(img.grigio);
        assert_eq!(inflate(&img.dati), [0, 50, 100, 255]);
    }

    #[test]
    fn jpeg_header_is_read_and_cmyk_refused() {
        // SOI, APP0 (length 4, two bytes of payload), SOF0 8-bit 20x10 RGB, then EOI.
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00];
        j.extend([0xFF, 0xC0, 0x00, 0x11, 8, 0x00, 10, 0x00, 20, 3]);
        j.extend([0u8; 9]);
        j.extend([0xFF, 0xD9]);
        let img = Immagine::da_file(&j).unwrap();
        assert_eq!((img.larghezza, img.altezza, img.grigio), (20, 10, false));
        assert_eq!(img.codifica, Codifica::Dct);
        assert_eq!(img.dati, j);
        let mut cmyk = j.clone();
        cmyk[17] = 4;
        assert_eq!(
            Immagine::da_file(&cmyk),
            Err(ErroreImmagine::ColoriNonAmmessi)
        );
        assert!(matches!(
            Immagine::da_file(&j[..12]),
            Err(ErroreImmagine::Illeggibile(_))
        ));
    }

    #[test]
    fn other_files_and_huge_images_are_refused() {
        assert_eq!(
            Immagine::da_file(b"GIF89a...."),
            Err(ErroreImmagine::Formato)
        );
        assert_eq!(Immagine::da_file(b""), Err(ErroreImmagine::Formato));
        let big = png_di_prova(2001, 1, png::ColorType::Grayscale, &[0; 2001]);
        assert!(matches!(
            Immagine::da_file(&big),
            Err(ErroreImmagine::Dimensioni {
                larghezza: 2001,
                ..
            })
        ));
        let mut rotto = png_di_prova(2, 2, png::ColorType::Grayscale, &[0, 50, 100, 255]);
        let n = rotto.len();
        rotto.truncate(n - 20);
        assert!(matches!(
            Immagine::da_file(&rotto),
            Err(ErroreImmagine::Illeggibile(_))
        ));
    }
}
