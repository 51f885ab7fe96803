//! What an upload is, told from its bytes, and what is stored of an image: decoded with
//! limits (no decompression bombs), turned upright by its EXIF orientation, re-encoded (so
//! EXIF with GPS, XMP and comments are gone), plus a thumbnail. All of it is blocking work:
//! the caller runs it on the blocking pool behind a semaphore.

use std::io::{BufReader, Read, Seek, SeekFrom};

use image::codecs::gif::{GifDecoder, GifEncoder, Repeat};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::metadata::Orientation;
use image::{AnimationDecoder, DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

/// The largest side of an image, in pixels.
pub const MAX_SIDE: u32 = 12_000;
/// The most pixels of an image (all frames of an animation together).
pub const MAX_PIXELS: u64 = 40_000_000;
/// The largest side of a thumbnail.
pub const THUMBNAIL_SIDE: u32 = 320;

/// The kinds of file accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Jpeg,
    Png,
    Webp,
    Gif,
    Pdf,
}

impl Kind {
    pub fn mime(self) -> &'static str {
        match self {
            Kind::Jpeg => "image/jpeg",
            Kind::Png => "image/png",
            Kind::Webp => "image/webp",
            Kind::Gif => "image/gif",
            Kind::Pdf => "application/pdf",
        }
    }

    pub fn is_image(self) -> bool {
        self != Kind::Pdf
    }

    /// Recognises the kind from the first bytes of a file; `None` for anything else (HTML,
    /// SVG, scripts, archives, executables, ...).
    pub fn sniff(head: &[u8]) -> Option<Kind> {
        let found = infer::get(head)?;
        match found.mime_type() {
            "image/jpeg" => Some(Kind::Jpeg),
            "image/png" => Some(Kind::Png),
            "image/webp" => Some(Kind::Webp),
            "image/gif" => Some(Kind::Gif),
            "application/pdf" => Some(Kind::Pdf),
            _ => None,
        }
    }

    /// Whether a declared part type agrees with the bytes: the same type (or a common alias),
    /// or no claim at all (`application/octet-stream`).
    pub fn agrees_with(self, declared: &str) -> bool {
        let declared = declared
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if declared.is_empty() || declared == "application/octet-stream" {
            return true;
        }
        declared == self.mime()
            || matches!(
                (self, declared.as_str()),
                (Kind::Jpeg, "image/jpg" | "image/pjpeg") | (Kind::Pdf, "application/x-pdf")
            )
    }

    fn format(self) -> Option<ImageFormat> {
        match self {
            Kind::Jpeg => Some(ImageFormat::Jpeg),
            Kind::Png => Some(ImageFormat::Png),
            Kind::Webp => Some(ImageFormat::WebP),
            Kind::Gif => Some(ImageFormat::Gif),
            Kind::Pdf => None,
        }
    }
}

/// Why an image is refused (422).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageRefused {
    #[error("the image is {0}×{1} px; at most {MAX_SIDE} px a side and {MAX_PIXELS} pixels")]
    TooLarge(u32, u32),
    #[error("the image does not decode: {0}")]
    Undecodable(String),
}

/// An image as stored: re-encoded, upright, without metadata; and its thumbnail.
#[derive(Debug)]
pub struct Processed {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub width: u32,
    pub height: u32,
    pub thumbnail: Vec<u8>,
    pub thumbnail_content_type: &'static str,
}

fn undecodable(e: impl std::fmt::Display) -> ImageRefused {
    ImageRefused::Undecodable(e.to_string())
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    // 40 Mpx of RGBA16 plus the decoder's own buffers.
    limits.max_alloc = Some(MAX_PIXELS * 8 + 64 * 1024 * 1024);
    limits
}

fn check_size(width: u32, height: u32) -> Result<(), ImageRefused> {
    if width == 0 || height == 0 {
        return Err(ImageRefused::Undecodable("the image has no pixels".into()));
    }
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ImageRefused::TooLarge(width, height));
    }
    Ok(())
}

/// The EXIF orientation (1..=8) of a JPEG, PNG or WebP, 1 when it has none.
fn exif_orientation<R: std::io::BufRead + Seek>(reader: &mut R) -> u32 {
    let found = exif::Reader::new()
        .read_from_container(reader)
        .ok()
        .and_then(|e| {
            e.get_field(exif::Tag::Orientation, exif::In::PRIMARY)
                .and_then(|f| f.value.get_uint(0))
        });
    found.filter(|o| (1..=8).contains(o)).unwrap_or(1)
}

/// Decodes, checks, turns upright and re-encodes the image in `file` (already recognised as
/// `kind`), and makes its thumbnail.
pub fn process_image<F: Read + Seek>(file: F, kind: Kind) -> Result<Processed, ImageRefused> {
    let Some(format) = kind.format() else {
        return Err(ImageRefused::Undecodable("not an image".into()));
    };
    let mut reader = BufReader::new(file);
    let orientation = if kind == Kind::Gif {
        1
    } else {
        exif_orientation(&mut reader)
    };
    reader.seek(SeekFrom::Start(0)).map_err(undecodable)?;
    if kind == Kind::Gif {
        return process_gif(reader);
    }
    let mut image_reader = ImageReader::with_format(reader, format);
    image_reader.limits(limits());
    let decoder = image_reader.into_decoder().map_err(refusal)?;
    let (width, height) = decoder.dimensions();
    check_size(width, height)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(refusal)?;
    if let Some(o) = Orientation::from_exif(orientation as u8) {
        image.apply_orientation(o);
    }
    let (bytes, content_type) = encode(&image, kind)?;
    let (thumbnail, thumbnail_content_type) = thumbnail_of(&image, kind)?;
    Ok(Processed {
        bytes,
        content_type,
        width: image.width(),
        height: image.height(),
        thumbnail,
        thumbnail_content_type,
    })
}

/// A limit hit while decoding is "too large", anything else "does not decode".
fn refusal(e: image::ImageError) -> ImageRefused {
    match e {
        image::ImageError::Limits(_) => ImageRefused::Undecodable(
            "the image needs more memory to decode than is allowed (too large)".into(),
        ),
        other => undecodable(other),
    }
}

fn encode(image: &DynamicImage, kind: Kind) -> Result<(Vec<u8>, &'static str), ImageRefused> {
    let mut out = Vec::new();
    match kind {
        Kind::Jpeg => {
            let rgb = DynamicImage::ImageRgb8(image.to_rgb8());
            rgb.write_with_encoder(JpegEncoder::new_with_quality(&mut out, 90))
                .map_err(undecodable)?;
            Ok((out, "image/jpeg"))
        }
        Kind::Webp => {
            let rgba = DynamicImage::ImageRgba8(image.to_rgba8());
            rgba.write_with_encoder(WebPEncoder::new_lossless(&mut out))
                .map_err(undecodable)?;
            Ok((out, "image/webp"))
        }
        Kind::Png | Kind::Gif | Kind::Pdf => {
            image
                .write_with_encoder(PngEncoder::new(&mut out))
                .map_err(undecodable)?;
            Ok((out, "image/png"))
        }
    }
}

fn thumbnail_of(image: &DynamicImage, kind: Kind) -> Result<(Vec<u8>, &'static str), ImageRefused> {
    let small = if image.width() > THUMBNAIL_SIDE || image.height() > THUMBNAIL_SIDE {
        image.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE)
    } else {
        image.clone()
    };
    let mut out = Vec::new();
    if kind == Kind::Jpeg {
        DynamicImage::ImageRgb8(small.to_rgb8())
            .write_with_encoder(JpegEncoder::new_with_quality(&mut out, 80))
            .map_err(undecodable)?;
        Ok((out, "image/jpeg"))
    } else {
        DynamicImage::ImageRgba8(small.to_rgba8())
            .write_with_encoder(PngEncoder::new(&mut out))
            .map_err(undecodable)?;
        Ok((out, "image/png"))
    }
}

/// A GIF keeps its frames (and loses its comments and application extensions); every frame
/// counts towards [`MAX_PIXELS`].
fn process_gif<R: std::io::BufRead + Seek>(reader: R) -> Result<Processed, ImageRefused> {
    let mut decoder = GifDecoder::new(reader).map_err(refusal)?;
    decoder.set_limits(limits()).map_err(refusal)?;
    let (width, height) = decoder.dimensions();
    check_size(width, height)?;
    let frame_pixels = u64::from(width) * u64::from(height);
    let mut out = Vec::new();
    let mut first: Option<DynamicImage> = None;
    {
        let mut encoder = GifEncoder::new_with_speed(&mut out, 10);
        encoder.set_repeat(Repeat::Infinite).map_err(undecodable)?;
        let mut total: u64 = 0;
        for frame in decoder.into_frames() {
            let frame = frame.map_err(refusal)?;
            total = total.saturating_add(frame_pixels);
            if total > MAX_PIXELS {
                return Err(ImageRefused::TooLarge(width, height));
            }
            if first.is_none() {
                first = Some(DynamicImage::ImageRgba8(frame.buffer().clone()));
            }
            encoder.encode_frame(frame).map_err(undecodable)?;
        }
    }
    let Some(first) = first else {
        return Err(ImageRefused::Undecodable("the GIF has no frames".into()));
    };
    let (thumbnail, thumbnail_content_type) = thumbnail_of(&first, Kind::Gif)?;
    Ok(Processed {
        bytes: out,
        content_type: "image/gif",
        width,
        height,
        thumbnail,
        thumbnail_content_type,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    /// [`process_image`] over bytes in memory.
    fn process_bytes(bytes: &[u8], kind: Kind) -> Result<Processed, ImageRefused> {
        process_image(Cursor::new(bytes), kind)
    }

    #[test]
    fn kinds_are_told_from_bytes_not_names() {
        assert_eq!(Kind::sniff(b"%PDF-1.7\n"), Some(Kind::Pdf));
        assert_eq!(
            Kind::sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Some(Kind::Png)
        );
        assert_eq!(Kind::sniff(b"<!doctype html><script>"), None);
        assert_eq!(
            Kind::sniff(b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
            None
        );
        assert_eq!(Kind::sniff(b"PK\x03\x04"), None);
        assert!(Kind::Jpeg.agrees_with("image/jpg"));
        assert!(Kind::Png.agrees_with("IMAGE/PNG; charset=x"));
        assert!(Kind::Png.agrees_with("application/octet-stream"));
        assert!(!Kind::Png.agrees_with("image/jpeg"));
        assert!(!Kind::Pdf.agrees_with("text/html"));
    }

    #[test]
    fn a_png_is_re_encoded_with_a_small_thumbnail() {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
            640,
            100,
            image::Rgb([10, 20, 30]),
        ));
        let mut png = Vec::new();
        img.write_with_encoder(PngEncoder::new(&mut png)).unwrap();
        let p = process_bytes(&png, Kind::Png).unwrap();
        assert_eq!((p.width, p.height), (640, 100));
        let thumb = image::load_from_memory(&p.thumbnail).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (320, 50));
    }

    #[test]
    fn too_many_pixels_are_refused_before_decoding() {
        assert_eq!(
            check_size(12_001, 10),
            Err(ImageRefused::TooLarge(12_001, 10))
        );
        assert_eq!(
            check_size(8_000, 8_000),
            Err(ImageRefused::TooLarge(8_000, 8_000))
        );
        assert!(check_size(6_000, 6_000).is_ok());
    }
}
