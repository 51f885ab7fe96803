//! Uploads in tests: multipart bodies built by hand (so a test can send what no well-behaved
//! client would), fixtures made here (a JPEG with GPS EXIF, an orientation tag and a comment;
//! a PNG decompression bomb), and the npm `s3rver` as a real S3-compatible peer.

use std::io::Write;
use std::process::Stdio;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::{Resp, TestApp, TestUser};

/// The boundary of the bodies made here.
pub const BOUNDARY: &str = "----marketplace-test-boundary-7MA4YWxkTrZu0gW";

/// A multipart body with one part `field` holding `bytes`, named `filename`, declared as
/// `content_type` (no `Content-Type` line when `None`).
pub fn multipart_body(
    field: &str,
    filename: &str,
    content_type: Option<&str>,
    bytes: &[u8],
) -> Vec<u8> {
    let mut body = Vec::with_capacity(bytes.len() + 256);
    write!(
        body,
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
    )
    .expect("write");
    if let Some(ct) = content_type {
        write!(body, "Content-Type: {ct}\r\n").expect("write");
    }
    body.extend_from_slice(b"\r\n");
    body.extend_from_slice(bytes);
    write!(body, "\r\n--{BOUNDARY}--\r\n").expect("write");
    body
}

impl TestApp {
    /// `POST /api/uploads` with one file part.
    pub async fn upload(
        &self,
        user: &TestUser,
        filename: &str,
        content_type: Option<&str>,
        bytes: &[u8],
    ) -> Resp {
        let body = multipart_body("file", filename, content_type, bytes);
        self.send(
            self.http
                .post(self.url("/api/uploads"))
                .bearer_auth(&user.token)
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(body),
        )
        .await
    }

    /// Uploads a fresh JPEG (see [`jpeg_with_gps`]); the 201 `Attachment`.
    pub async fn upload_photo(&self, user: &TestUser) -> Value {
        self.upload(
            user,
            "photo.jpg",
            Some("image/jpeg"),
            &jpeg_with_gps(40, 20),
        )
        .await
        .expect(201)
    }

    /// GETs an absolute link (a signed content URL); status, headers and bytes.
    pub async fn fetch_link(&self, url: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let res = self.http.get(url).send().await.expect("fetch link");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("link body").to_vec();
        (status, headers, bytes)
    }
}

/// A `width`×`height` JPEG (a gradient) carrying an EXIF APP1 segment with Orientation 6
/// (rotate 90° clockwise to display) and a GPS latitude, plus a comment segment. Decoders
/// that apply the orientation show it `height`×`width`.
pub fn jpeg_with_gps(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 5) as u8, (y * 9) as u8, 128])
    });
    let mut plain = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut plain, 90,
        ))
        .expect("encode jpeg");
    assert_eq!(&plain[..2], &[0xFF, 0xD8], "a JPEG starts with SOI");
    let mut tiff: Vec<u8> = Vec::new();
    tiff.extend_from_slice(b"II*\0");
    tiff.extend_from_slice(&8u32.to_le_bytes());
    // IFD0 at 8: Orientation = 6, GPS IFD pointer = 38.
    tiff.extend_from_slice(&2u16.to_le_bytes());
    tiff.extend_from_slice(&0x0112u16.to_le_bytes());
    tiff.extend_from_slice(&3u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&6u16.to_le_bytes());
    tiff.extend_from_slice(&0u16.to_le_bytes());
    tiff.extend_from_slice(&0x8825u16.to_le_bytes());
    tiff.extend_from_slice(&4u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&38u32.to_le_bytes());
    tiff.extend_from_slice(&0u32.to_le_bytes());
    // GPS IFD at 38: GPSLatitudeRef = "N", GPSLatitude at 68.
    tiff.extend_from_slice(&2u16.to_le_bytes());
    tiff.extend_from_slice(&0x0001u16.to_le_bytes());
    tiff.extend_from_slice(&2u16.to_le_bytes());
    tiff.extend_from_slice(&2u32.to_le_bytes());
    tiff.extend_from_slice(b"N\0\0\0");
    tiff.extend_from_slice(&0x0002u16.to_le_bytes());
    tiff.extend_from_slice(&5u16.to_le_bytes());
    tiff.extend_from_slice(&3u32.to_le_bytes());
    tiff.extend_from_slice(&68u32.to_le_bytes());
    tiff.extend_from_slice(&0u32.to_le_bytes());
    assert_eq!(tiff.len(), 68);
    for (num, den) in [(48u32, 1u32), (51, 1), (2958, 100)] {
        tiff.extend_from_slice(&num.to_le_bytes());
        tiff.extend_from_slice(&den.to_le_bytes());
    }
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let comment = b"taken at 12 Secret Street";
    let mut out = vec![0xFF, 0xD8];
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&((comment.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(comment);
    out.extend_from_slice(&plain[2..]);
    out
}

/// What the GPS fixture says in its comment segment (must be gone after re-encoding).
pub const FIXTURE_COMMENT: &[u8] = b"12 Secret Street";

/// Whether `bytes` (a JPEG) still carry GPS EXIF.
pub fn has_gps(bytes: &[u8]) -> bool {
    let Ok(exif) = exif::Reader::new().read_from_container(&mut std::io::Cursor::new(bytes)) else {
        return false;
    };
    exif.fields()
        .any(|f| f.ifd_num == exif::In::PRIMARY && f.tag.context() == exif::Context::Gps)
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

/// A real PNG of `width`×`height` one-bit black pixels: a few kilobytes that decode to
/// `width × height` pixels (a decompression bomb when that is large).
pub fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[1, 0, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    let row = vec![0u8; 1 + width.div_ceil(8) as usize];
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..height {
        z.write_all(&row).expect("deflate");
    }
    let idat = z.finish().expect("deflate");
    png_chunk(&mut out, b"IDAT", &idat);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A running `s3rver` (npm) with one bucket, stopped when dropped.
pub struct S3rver {
    pub port: u16,
    pub bucket: String,
    _dir: TempDir,
    _child: tokio::process::Child,
}

/// A directory removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl S3rver {
    /// Starts it on a free port with a fresh directory (installs the npm packages first).
    pub async fn start() -> S3rver {
        crate::js::ensure_packages(&["s3rver"]).await;
        let dir = std::env::temp_dir()
            .join("marketplace-tests")
            .join(format!("s3rver-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).expect("s3rver dir");
        let bucket = "uploads".to_owned();
        let mut child = tokio::process::Command::new("node")
            .arg("tools/s3rver.mjs")
            .current_dir(crate::js::js_dir())
            .env("S3RVER_DIR", &dir)
            .env("S3RVER_BUCKET", &bucket)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node must be installed to run s3rver");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
            .await
            .expect("s3rver did not start within 30 s")
            .expect("s3rver output")
            .expect("s3rver printed its port");
        let port = serde_json::from_str::<Value>(&line).expect("s3rver's line is JSON")["port"]
            .as_u64()
            .expect("port") as u16;
        S3rver {
            port,
            bucket,
            _dir: TempDir(dir),
            _child: child,
        }
    }

    /// The app settings that store in this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("STORAGE_URL", format!("s3://{}/test-prefix", self.bucket)),
            (
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", self.port),
            ),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "S3RVER".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "S3RVER".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}
