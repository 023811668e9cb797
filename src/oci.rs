//! `preflight image push REF`: the running binary as a minimal OCI image — one layer holding
//! the static binary at `/preflight`, a config whose entrypoint runs it, an image manifest —
//! pushed through the distribution HTTP API with the settings (insecure, CA, credentials)
//! every registry check uses. No Docker and no base image: the binary is static.
//! Reproducible: the layer's tar entry and gzip header carry no time, so the same binary
//! always gives the same digests.

use std::io::Write;
use std::time::Duration;

use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, ImageConfigurationBuilder, ImageManifestBuilder,
    MediaType, Os, RootFsBuilder, Sha256Digest,
};
use sha2::{Digest, Sha256};

use crate::install::ImageRef;
use crate::net;
use crate::registry::{self, RegistrySettings};
use crate::resolve::Resolver;

/// Where the binary lives in the image, and what the pod runs.
pub const ENTRYPOINT: &str = "/preflight";

/// One content-addressed blob.
pub struct Blob {
    pub media_type: MediaType,
    pub bytes: Vec<u8>,
    pub digest: String,
}

impl Blob {
    fn new(media_type: MediaType, bytes: Vec<u8>) -> Blob {
        let digest = sha256(&bytes);
        Blob {
            media_type,
            bytes,
            digest,
        }
    }

    fn descriptor(&self) -> Result<Descriptor, String> {
        let hex = self.digest.trim_start_matches("sha256:");
        let digest: Sha256Digest = hex.parse().map_err(|e| format!("digest {hex}: {e}"))?;
        DescriptorBuilder::default()
            .media_type(self.media_type.clone())
            .size(self.bytes.len() as u64)
            .digest(digest)
            .build()
            .map_err(|e| format!("OCI descriptor: {e}"))
    }
}

fn sha256(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The image of `binary`: layer, config, manifest.
pub struct Image {
    pub layer: Blob,
    pub config: Blob,
    pub manifest: Blob,
}

/// The image for this binary, built in memory.
pub fn build(binary: &[u8]) -> Result<Image, String> {
    // The layer: a tar with one file, no timestamps or owners, gzip without a time either.
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(binary.len() as u64);
    header.set_mode(0o755);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    tar.append_data(&mut header, ENTRYPOINT.trim_start_matches('/'), binary)
        .map_err(|e| format!("layer tar: {e}"))?;
    let tar = tar.into_inner().map_err(|e| format!("layer tar: {e}"))?;
    let diff_id = sha256(&tar);
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).map_err(|e| format!("layer gzip: {e}"))?;
    let layer = Blob::new(
        MediaType::ImageLayerGzip,
        gz.finish().map_err(|e| format!("layer gzip: {e}"))?,
    );

    let arch = if cfg!(target_arch = "aarch64") {
        Arch::ARM64
    } else {
        Arch::Amd64
    };
    let config = ImageConfigurationBuilder::default()
        .architecture(arch)
        .os(Os::Linux)
        .config(
            ConfigBuilder::default()
                .entrypoint(vec![ENTRYPOINT.to_string()])
                .build()
                .map_err(|e| format!("OCI config: {e}"))?,
        )
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![diff_id])
                .build()
                .map_err(|e| format!("OCI rootfs: {e}"))?,
        )
        .build()
        .map_err(|e| format!("OCI image config: {e}"))?;
    let config = Blob::new(
        MediaType::ImageConfig,
        serde_json::to_vec(&config).map_err(|e| format!("OCI image config: {e}"))?,
    );
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config.descriptor()?)
        .layers(vec![layer.descriptor()?])
        .build()
        .map_err(|e| format!("OCI manifest: {e}"))?;
    let manifest = Blob::new(
        MediaType::ImageManifest,
        serde_json::to_vec(&manifest).map_err(|e| format!("OCI manifest: {e}"))?,
    );
    Ok(Image {
        layer,
        config,
        manifest,
    })
}

/// What a push did, for the report.
pub struct Pushed {
    /// `(what, digest, size, uploaded or already there)`.
    pub blobs: Vec<(&'static str, String, usize, bool)>,
    pub digest: String,
}

/// One registry conversation: its base URL (https, or http for an insecure one), the
/// client, and the Authorization header once a challenge asked for one.
struct Session<'a> {
    reg: &'a RegistrySettings,
    repo: &'a str,
    client: reqwest::Client,
    base: String,
    auth: Option<String>,
    timeout: Duration,
}

impl Session<'_> {
    /// Send, and on a 401 answer the challenge (pull,push scope) once and send again.
    async fn send(
        &mut self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, String> {
        let go = |auth: &Option<String>| {
            let mut r = build(&self.client);
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.send()
        };
        let resp = go(&self.auth).await.map_err(|e| self.transport(&e))?;
        if resp.status().as_u16() != 401 || self.auth.is_some() {
            return Ok(resp);
        }
        let challenge = registry::challenge_of(&resp);
        let auth = registry::authorize(
            &self.client,
            self.reg,
            self.repo,
            "pull,push",
            &challenge,
            None,
            self.timeout,
        )
        .await
        .map_err(|m| match m {
            registry::Manifest::Problem { line, fix } => {
                format!(
                    "{line}{}",
                    fix.first().map(|f| format!("\n  fix: {f}")).unwrap_or_default()
                )
            }
            _ => format!("{}: authorization failed", self.reg.host),
        })?;
        self.auth = Some(auth);
        go(&self.auth).await.map_err(|e| self.transport(&e))
    }

    fn transport(&self, e: &reqwest::Error) -> String {
        net::classify(e).describe(&self.base, self.timeout)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// HEAD first; upload (POST then one PUT) only a blob the registry lacks.
    async fn blob(&mut self, blob: &Blob) -> Result<bool, String> {
        let path = format!("/v2/{}/blobs/{}", self.repo, blob.digest);
        let url = self.url(&path);
        let head = self.send(|c| c.head(&url)).await?;
        if head.status().is_success() {
            return Ok(false);
        }
        let start = self.url(&format!("/v2/{}/blobs/uploads/", self.repo));
        let resp = self
            .send(|c| c.post(&start).header("Content-Length", "0"))
            .await?;
        if resp.status().as_u16() != 202 {
            return Err(refused(&self.reg.host, "POST", &start, resp).await);
        }
        let location = resp
            .headers()
            .get("location")
            .and_then(|h| h.to_str().ok())
            .ok_or_else(|| format!("{}: upload started without a Location header", self.reg.host))?
            .to_string();
        let location = if location.starts_with("http://") || location.starts_with("https://") {
            location
        } else {
            self.url(&location)
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{sep}digest={}", blob.digest);
        let resp = self
            .send(|c| {
                c.put(&put)
                    .header("Content-Type", "application/octet-stream")
                    .body(blob.bytes.clone())
            })
            .await?;
        if resp.status().as_u16() != 201 {
            return Err(refused(&self.reg.host, "PUT", &put, resp).await);
        }
        Ok(true)
    }
}

/// The registry's refusal in its own words (its error codes and messages).
async fn refused(host: &str, method: &str, url: &str, resp: reqwest::Response) -> String {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let errors: Vec<String> = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("errors")?.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|e| {
            format!(
                "{}: {}",
                e.get("code").and_then(|c| c.as_str()).unwrap_or("?"),
                e.get("message").and_then(|c| c.as_str()).unwrap_or("")
            )
        })
        .collect();
    let said = if errors.is_empty() {
        String::new()
    } else {
        format!(" ({})", errors.join("; "))
    };
    format!("{host}: {method} {url} answers {status}{said}")
}

/// Push `image` as `target` to its registry.
pub async fn push(
    resolver: &Resolver,
    reg: &RegistrySettings,
    target: &ImageRef,
    image: &Image,
    timeout: Duration,
) -> Result<Pushed, String> {
    // Uploads of a ~12 MiB layer get more than one probe's time.
    let client = net::client(resolver, &reg.trust(), timeout * 12)?;
    // https first; plain http only for an insecure registry that does not speak TLS.
    let mut base = format!("https://{}", reg.host);
    if let Err(e) = client.get(format!("{base}/v2/")).send().await {
        let f = net::classify(&e);
        if reg.is_insecure() && f.retry_over_http() {
            base = format!("http://{}", reg.host);
        } else {
            return Err(f.describe(&format!("{base}/v2/"), timeout));
        }
    }
    let mut s = Session {
        reg,
        repo: &target.repository,
        client,
        base,
        auth: None,
        timeout,
    };
    let mut blobs = Vec::new();
    for (what, blob) in [("layer", &image.layer), ("config", &image.config)] {
        let uploaded = s.blob(blob).await?;
        blobs.push((what, blob.digest.clone(), blob.bytes.len(), uploaded));
    }
    let url = s.url(&format!(
        "/v2/{}/manifests/{}",
        target.repository, target.reference
    ));
    let resp = s
        .send(|c| {
            c.put(&url)
                .header("Content-Type", image.manifest.media_type.to_string())
                .body(image.manifest.bytes.clone())
        })
        .await?;
    if resp.status().as_u16() != 201 {
        return Err(refused(&reg.host, "PUT", &url, resp).await);
    }
    Ok(Pushed {
        blobs,
        digest: image.manifest.digest.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_binary_gives_the_same_image() {
        let a = build(b"\x7fELF not really").unwrap();
        let b = build(b"\x7fELF not really").unwrap();
        assert_eq!(a.manifest.digest, b.manifest.digest);
        assert_eq!(a.layer.bytes, b.layer.bytes);
        let c = build(b"\x7fELF another").unwrap();
        assert_ne!(a.manifest.digest, c.manifest.digest);
        let m: serde_json::Value = serde_json::from_slice(&a.manifest.bytes).unwrap();
        assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
        assert_eq!(m["config"]["digest"], a.config.digest.as_str());
        assert_eq!(
            m["layers"][0]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert_eq!(m["layers"][0]["size"], a.layer.bytes.len());
        let cfg: serde_json::Value = serde_json::from_slice(&a.config.bytes).unwrap();
        assert_eq!(cfg["config"]["Entrypoint"][0], "/preflight");
        assert_eq!(cfg["os"], "linux");
        // The layer unpacks to the binary, executable, at /preflight.
        let tar = {
            let mut d = flate2::read::GzDecoder::new(&a.layer.bytes[..]);
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut d, &mut out).unwrap();
            out
        };
        assert_eq!(sha256(&tar), cfg["rootfs"]["diff_ids"][0].as_str().unwrap());
        let mut archive = tar::Archive::new(&tar[..]);
        let mut entries = archive.entries().unwrap();
        let mut e = entries.next().unwrap().unwrap();
        assert_eq!(e.path().unwrap().to_str(), Some("preflight"));
        assert_eq!(e.header().mode().unwrap(), 0o755);
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut body).unwrap();
        assert_eq!(body, b"\x7fELF not really");
        assert!(entries.next().is_none());
    }
}
