//! Where file bytes live: one [`Storage`] over `object_store`, a local directory by default
//! (`file://./uploads`) or any S3-compatible store (`s3://bucket[/prefix]`). Every code path
//! is shared except construction and links: local links are HMAC-signed routes of this API
//! ([`crate::links`]), S3 links are presigned URLs made here ([`S3Presigner`]), so the bytes
//! go straight from the store to the browser.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use hmac::{Hmac, KeyInit, Mac};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

/// Where `STORAGE_URL` points, parsed. Made by the configuration, which refuses anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageLocation {
    /// A directory, created at start-up when missing.
    Local(PathBuf),
    /// A bucket and an optional key prefix (no leading or trailing `/`).
    S3 {
        bucket: String,
        prefix: Option<String>,
    },
    /// Nothing persisted: for printing documents without touching any disk.
    Memory,
}

impl StorageLocation {
    /// `file://DIR` (relative or absolute) or `s3://bucket[/prefix]`.
    pub fn parse(raw: &str) -> Result<StorageLocation, String> {
        let raw = raw.trim();
        if let Some(dir) = raw.strip_prefix("file://") {
            if dir.is_empty() {
                return Err("file:// needs a directory, e.g. file://./uploads".into());
            }
            return Ok(StorageLocation::Local(PathBuf::from(dir)));
        }
        if let Some(rest) = raw.strip_prefix("s3://") {
            let (bucket, prefix) = match rest.split_once('/') {
                Some((b, p)) => (b, Some(p.trim_matches('/').to_owned())),
                None => (rest, None),
            };
            let valid_bucket = (3..=63).contains(&bucket.len())
                && bucket
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
            if !valid_bucket {
                return Err(format!("{bucket:?} is not an S3 bucket name"));
            }
            return Ok(StorageLocation::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.filter(|p| !p.is_empty()),
            });
        }
        Err("must start with file:// or s3://".into())
    }
}

/// The credentials and endpoint of an S3-compatible store (`AWS_*` variables).
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// `AWS_ENDPOINT_URL`; unset: AWS itself (virtual-hosted style). Set: path-style requests.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
}

/// Why the store could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot create the upload directory {0}: {1}")]
    Directory(String, std::io::Error),
    #[error("{0}")]
    Store(#[from] object_store::Error),
    #[error("S3 storage needs {0}")]
    Missing(&'static str),
    #[error("reading the received file: {0}")]
    Io(#[from] std::io::Error),
}

/// The one storage interface of the files module.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    prefix: Option<String>,
    presigner: Option<Arc<S3Presigner>>,
}

impl Storage {
    /// Opens the store at `location` (a local directory is created when missing).
    pub fn open(location: &StorageLocation, s3: &S3Settings) -> Result<Storage, StorageError> {
        match location {
            StorageLocation::Memory => Ok(Storage {
                store: Arc::new(InMemory::new()),
                prefix: None,
                presigner: None,
            }),
            StorageLocation::Local(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StorageError::Directory(dir.display().to_string(), e))?;
                let store = LocalFileSystem::new_with_prefix(dir)?;
                Ok(Storage {
                    store: Arc::new(store),
                    prefix: None,
                    presigner: None,
                })
            }
            StorageLocation::S3 { bucket, prefix } => {
                let key_id = s3
                    .access_key_id
                    .clone()
                    .ok_or(StorageError::Missing("AWS_ACCESS_KEY_ID"))?;
                let secret = s3
                    .secret_access_key
                    .clone()
                    .ok_or(StorageError::Missing("AWS_SECRET_ACCESS_KEY"))?;
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_region(&s3.region)
                    .with_access_key_id(&key_id)
                    .with_secret_access_key(&secret);
                if let Some(token) = &s3.session_token {
                    builder = builder.with_token(token);
                }
                match &s3.endpoint {
                    Some(endpoint) => {
                        builder = builder
                            .with_endpoint(endpoint)
                            .with_virtual_hosted_style_request(false)
                            .with_allow_http(endpoint.starts_with("http://"));
                    }
                    None => builder = builder.with_virtual_hosted_style_request(true),
                }
                let store = builder.build()?;
                let presigner = S3Presigner::new(bucket, s3, key_id, secret)?;
                Ok(Storage {
                    store: Arc::new(store),
                    prefix: prefix.clone(),
                    presigner: Some(Arc::new(presigner)),
                })
            }
        }
    }

    /// The object path of `key` (under the prefix of an `s3://bucket/prefix` URL).
    fn path(&self, key: &str) -> ObjectPath {
        match &self.prefix {
            Some(p) => ObjectPath::from(format!("{p}/{key}")),
            None => ObjectPath::from(key),
        }
    }

    /// Stores `bytes` under `key`.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        self.store
            .put(&self.path(key), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// Stores what `file` holds under `key`, a chunk at a time (a multipart upload on S3), so
    /// a file is never read into memory whole.
    pub async fn put_file(&self, key: &str, file: tokio::fs::File) -> Result<(), StorageError> {
        let upload = self.store.put_multipart(&self.path(key)).await?;
        let mut writer = WriteMultipart::new(upload);
        let mut file = file;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match file.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(e.into());
                }
            };
            if n == 0 {
                break;
            }
            writer.wait_for_capacity(4).await?;
            writer.write(&buf[..n]);
        }
        writer.finish().await?;
        Ok(())
    }

    /// The bytes under `key`, as a stream.
    pub async fn get(
        &self,
        key: &str,
    ) -> Result<BoxStream<'static, Result<Bytes, object_store::Error>>, StorageError> {
        let got = self.store.get(&self.path(key)).await?;
        Ok(got.into_stream())
    }

    /// Removes `key`; a key that is gone already is not an error (deleting is idempotent).
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// A presigned GET link for `key` valid `ttl` when this is an S3 store, answering with
    /// this content type and disposition; `None` for stores the API serves itself.
    pub fn presigned_get(
        &self,
        key: &str,
        ttl: Duration,
        content_type: &str,
        disposition: &str,
    ) -> Option<String> {
        let presigner = self.presigner.as_ref()?;
        let path = self.path(key);
        Some(presigner.get_url(
            path.as_ref(),
            ttl,
            &[
                ("response-content-disposition", disposition),
                ("response-content-type", content_type),
            ],
            chrono::Utc::now(),
        ))
    }
}

/// What SigV4 leaves unescaped: `A-Z a-z 0-9 - _ . ~`.
const SIGV4: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn uri_encode(s: &str) -> String {
    utf8_percent_encode(s, SIGV4).to_string()
}

/// Makes presigned S3 GET URLs (AWS Signature Version 4, query-string authentication) with
/// the `response-content-type` and `response-content-disposition` overrides, which
/// `object_store`'s own signer cannot add.
pub struct S3Presigner {
    /// `scheme://host[:port]` of requests.
    origin: String,
    /// The `Host` header value.
    host: String,
    /// Path-style: `/{bucket}`; virtual-hosted: empty.
    path_prefix: String,
    region: String,
    key_id: String,
    secret: String,
    session_token: Option<String>,
}

impl S3Presigner {
    pub fn new(
        bucket: &str,
        s3: &S3Settings,
        key_id: String,
        secret: String,
    ) -> Result<S3Presigner, StorageError> {
        let (origin, path_prefix) = match &s3.endpoint {
            Some(endpoint) => (
                endpoint.trim_end_matches('/').to_owned(),
                format!("/{bucket}"),
            ),
            None => (
                format!("https://{bucket}.s3.{}.amazonaws.com", s3.region),
                String::new(),
            ),
        };
        let parsed = url::Url::parse(&origin)
            .map_err(|_| StorageError::Missing("a valid AWS_ENDPOINT_URL"))?;
        let host = match (parsed.host_str(), parsed.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => return Err(StorageError::Missing("a host in AWS_ENDPOINT_URL")),
        };
        let origin = format!("{}://{host}", parsed.scheme());
        Ok(S3Presigner {
            origin,
            host,
            path_prefix,
            region: s3.region.clone(),
            key_id,
            secret,
            session_token: s3.session_token.clone(),
        })
    }

    /// The presigned URL of `GET key`, valid `ttl` from `at`, with `overrides` (such as
    /// `response-content-type`) among its signed query parameters.
    pub fn get_url(
        &self,
        key: &str,
        ttl: Duration,
        overrides: &[(&str, &str)],
        at: chrono::DateTime<chrono::Utc>,
    ) -> String {
        let amz_date = at.format("%Y%m%dT%H%M%SZ").to_string();
        let date = at.format("%Y%m%d").to_string();
        let scope = format!("{date}/{}/s3/aws4_request", self.region);
        let path = format!(
            "{}/{}",
            self.path_prefix,
            key.split('/').map(uri_encode).collect::<Vec<_>>().join("/")
        );
        let mut query: Vec<(String, String)> = vec![
            ("X-Amz-Algorithm".into(), "AWS4-HMAC-SHA256".into()),
            (
                "X-Amz-Credential".into(),
                format!("{}/{scope}", self.key_id),
            ),
            ("X-Amz-Date".into(), amz_date.clone()),
            ("X-Amz-Expires".into(), ttl.as_secs().to_string()),
            ("X-Amz-SignedHeaders".into(), "host".into()),
        ];
        query.extend(
            overrides
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        if let Some(token) = &self.session_token {
            query.push(("X-Amz-Security-Token".into(), token.clone()));
        }
        let mut encoded: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (uri_encode(k), uri_encode(v)))
            .collect();
        encoded.sort();
        let canonical_query = encoded
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let canonical_request = format!(
            "GET\n{path}\n{canonical_query}\nhost:{}\n\nhost\nUNSIGNED-PAYLOAD",
            self.host
        );
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical_request.as_bytes()))
        );
        let mut key = hmac(format!("AWS4{}", self.secret).as_bytes(), date.as_bytes());
        for part in [self.region.as_str(), "s3", "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        let signature = hex::encode(hmac(&key, string_to_sign.as_bytes()));
        format!(
            "{}{path}?{canonical_query}&X-Amz-Signature={signature}",
            self.origin
        )
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_urls_parse_to_a_directory_or_a_bucket() {
        assert_eq!(
            StorageLocation::parse("file://./uploads"),
            Ok(StorageLocation::Local(PathBuf::from("./uploads")))
        );
        assert_eq!(
            StorageLocation::parse("s3://my-bucket/a/b/"),
            Ok(StorageLocation::S3 {
                bucket: "my-bucket".into(),
                prefix: Some("a/b".into())
            })
        );
        assert!(StorageLocation::parse("s3://Bad_Bucket").is_err());
        assert!(StorageLocation::parse("ftp://x").is_err());
        assert!(StorageLocation::parse("file://").is_err());
    }

    /// The presigned-URL example of AWS's documentation ("Authenticating Requests: Using
    /// Query Parameters", Signature Version 4): same inputs, same signature.
    #[test]
    fn presigned_urls_match_the_aws_example() {
        let p = S3Presigner {
            origin: "https://examplebucket.s3.amazonaws.com".into(),
            host: "examplebucket.s3.amazonaws.com".into(),
            path_prefix: String::new(),
            region: "us-east-1".into(),
            key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let at = chrono::DateTime::parse_from_rfc3339("2013-05-24T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let url = p.get_url("test.txt", Duration::from_secs(86400), &[], at);
        assert!(
            url.ends_with(
                "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
            ),
            "{url}"
        );
    }

    #[test]
    fn presigned_urls_carry_the_overrides_and_change_with_them() {
        let s3 = S3Settings {
            endpoint: Some("http://127.0.0.1:9000".into()),
            region: "us-east-1".into(),
            ..Default::default()
        };
        let p = S3Presigner::new("bucket", &s3, "AKID".into(), "SECRET".into()).unwrap();
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let ttl = Duration::from_secs(600);
        let a = p.get_url("x/y z", ttl, &[("response-content-type", "image/png")], at);
        let b = p.get_url("x/y z", ttl, &[("response-content-type", "text/html")], at);
        assert!(
            a.starts_with("http://127.0.0.1:9000/bucket/x/y%20z?"),
            "{a}"
        );
        assert!(a.contains("response-content-type=image%2Fpng"), "{a}");
        assert_ne!(
            a.rsplit_once("X-Amz-Signature=").unwrap().1,
            b.rsplit_once("X-Amz-Signature=").unwrap().1
        );
    }
}
