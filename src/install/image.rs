//! Image references, parsed and normalised once, as docker reads them:
//! `nginx` → `docker.io/library/nginx:latest`.

use std::fmt;

/// A normalised image reference.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageRef {
    /// `docker.io`, `hub.bktencent.com`, `127.0.0.1:5000`.
    pub registry: String,
    /// `library/nginx`, `blueking/bk-repo`.
    pub repository: String,
    /// A tag (`1.0.0`, `latest`) or a digest (`sha256:…`).
    pub reference: String,
}

impl ImageRef {
    /// Docker's rules: the first path part is a registry when it has a `.` or `:` or is
    /// `localhost`; otherwise the image is on Docker Hub, under `library/` when it has no
    /// path. No tag means `latest`; a digest wins over a tag.
    pub fn parse(image: &str) -> Result<ImageRef, String> {
        let image = image.trim();
        if image.is_empty() || image.contains(char::is_whitespace) {
            return Err(format!("{image:?} is not an image reference"));
        }
        let (name, reference) = match image.split_once('@') {
            Some((n, d)) => {
                // `repo:tag@sha256:…` pulls by digest.
                let n = match n.rsplit_once(':') {
                    Some((base, tag)) if !tag.contains('/') => base,
                    _ => n,
                };
                (n, d.to_string())
            }
            None => match image.rsplit_once(':') {
                Some((n, t)) if !t.contains('/') => (n, t.to_string()),
                _ => (image, "latest".to_string()),
            },
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => {
                (first.to_ascii_lowercase(), rest.to_string())
            }
            _ => ("docker.io".to_string(), name.to_string()),
        };
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
            _ => registry,
        };
        let repository = if registry == "docker.io" && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if repository.is_empty() || reference.is_empty() {
            return Err(format!("{image:?} is not an image reference"));
        }
        Ok(ImageRef {
            registry,
            repository,
            reference,
        })
    }

    /// Where the registry API answers: Docker Hub's is not `docker.io`.
    pub fn api_host(&self) -> &str {
        if self.registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sep = if self.reference.contains(':') { '@' } else { ':' };
        write!(f, "{}/{}{sep}{}", self.registry, self.repository, self.reference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> String {
        ImageRef::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalised_as_docker_reads_them() {
        assert_eq!(p("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(p("oamdev/vela-core:v1.9"), "docker.io/oamdev/vela-core:v1.9");
        assert_eq!(
            p("hub.bktencent.com/blueking/bk-repo:1.0.0"),
            "hub.bktencent.com/blueking/bk-repo:1.0.0"
        );
        assert_eq!(
            p("127.0.0.1:5000/app@sha256:abc"),
            "127.0.0.1:5000/app@sha256:abc"
        );
        assert_eq!(
            p("127.0.0.1:5000/app:1.0@sha256:abc"),
            "127.0.0.1:5000/app@sha256:abc"
        );
        assert_eq!(p("localhost/x/y"), "localhost/x/y:latest");
        assert_eq!(
            p("index.docker.io/library/busybox:1"),
            "docker.io/library/busybox:1"
        );
        assert_eq!(
            ImageRef::parse("busybox").unwrap().api_host(),
            "registry-1.docker.io"
        );
        assert!(ImageRef::parse("").is_err());
        assert!(ImageRef::parse("a b").is_err());
    }
}
