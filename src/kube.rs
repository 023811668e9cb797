//! The Kubernetes client every cluster check shares: kubeconfig resolved as kubectl does,
//! names resolved by our own resolver (never glibc's getaddrinfo), every call bounded by
//! `--timeout`, every request counted. Also Helm's ownership rule, in helm's own words.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::client::ConfigExt;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Config;
use tokio::sync::OnceCell;
use tower::{BoxError, ServiceBuilder};

use crate::resolve::Resolver;
use crate::vocab::Release;

/// How the cluster is reached: the flags, and the client built from them on first use.
pub struct KubeAccess {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub timeout: Duration,
    pub resolver: Resolver,
    client: OnceCell<Result<Connected, String>>,
    /// Every served group, discovered once for the checks that need all of them.
    discovery: OnceCell<Result<kube::Discovery, ApiError>>,
    /// The server's `gitVersion`, asked once for the render and the checks that need it.
    version: OnceCell<Result<String, ApiError>>,
    /// Objects of the install looked up by name: each asked once, shared by the checks.
    existing: std::sync::Mutex<BTreeMap<ObjectKey, Arc<ObjectCell>>>,
    requests: Arc<AtomicUsize>,
}

/// group/version/plural, namespace, name.
type ObjectKey = (String, Option<String>, String);
type ObjectCell = OnceCell<Result<Option<ObjectMeta>, ApiError>>;

/// A client and where its configuration came from (for messages).
#[derive(Clone)]
pub struct Connected {
    pub client: kube::Client,
    pub server: String,
    pub source: String,
}

impl KubeAccess {
    pub fn new(
        kubeconfig: Option<PathBuf>,
        context: Option<String>,
        timeout: Duration,
        resolver: Resolver,
    ) -> Self {
        KubeAccess {
            kubeconfig,
            context,
            timeout,
            resolver,
            client: OnceCell::new(),
            discovery: OnceCell::new(),
            version: OnceCell::new(),
            existing: std::sync::Mutex::new(BTreeMap::new()),
            requests: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The shared client, built once. Err says why no client could be configured.
    pub async fn connect(&self) -> Result<&Connected, String> {
        self.client
            .get_or_init(|| async { self.build().await })
            .await
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The shared client, or the unreachable cluster as an API error.
    async fn api_client(&self) -> Result<kube::Client, ApiError> {
        Ok(self
            .connect()
            .await
            .map_err(ApiError::Unreachable)?
            .client
            .clone())
    }

    /// The server's version (`v1.20.2`), asked once and shared.
    pub async fn server_version(&self) -> Result<&str, ApiError> {
        self.version
            .get_or_init(|| async {
                let client = self.api_client().await?;
                self.call("GET /version", client.apiserver_version())
                    .await
                    .map(|v| v.git_version)
            })
            .await
            .as_ref()
            .map(String::as_str)
            .map_err(Clone::clone)
    }

    /// Discovery of every served group and kind, run once and shared.
    pub async fn discovery(&self) -> Result<&kube::Discovery, ApiError> {
        self.discovery
            .get_or_init(|| async {
                let client = self.api_client().await?;
                self.discover(|| kube::Discovery::new(client.clone())).await
            })
            .await
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Run a discovery; a group that vanishes between `/apis` and its own document (a CRD
    /// deleted meanwhile) answers 404: look again, as kubectl does, rather than fail.
    pub async fn discover(&self, make: impl Fn() -> kube::Discovery) -> Result<kube::Discovery, ApiError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.call("API discovery", make().run()).await {
                Err(ApiError::NotFound(_)) if attempt < 3 => continue,
                other => return other,
            }
        }
    }

    /// One SelfSubjectAccessReview: Ok(None) allowed, Ok(Some(reason)) denied (the reason
    /// may be empty).
    pub async fn may(
        &self,
        reviews: &kube::Api<SelfSubjectAccessReview>,
        a: &crate::vocab::Access,
    ) -> Result<Option<String>, ApiError> {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(a.verb.clone()),
                    resource: Some(a.resource.clone()),
                    group: Some(a.group.clone()),
                    namespace: a.namespace.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let what = format!("SelfSubjectAccessReview ({})", a.describe());
        let r = self
            .call(&what, reviews.create(&kube::api::PostParams::default(), &review))
            .await?;
        let status = r.status.unwrap_or_default();
        Ok((!status.allowed).then(|| status.reason.filter(|r| !r.is_empty()).unwrap_or_default()))
    }

    /// The stored revisions of a helm release as helm keeps them: the Secrets (ConfigMaps
    /// with HELM_DRIVER=configmap) labelled owner=helm,name=NAME in its namespace; their
    /// metadata only, no payload decoded.
    pub async fn helm_revisions(&self, namespace: &str, name: &str) -> Result<Vec<ObjectMeta>, ApiError> {
        use k8s_openapi::api::core::v1::{ConfigMap, Secret};
        let client = self.api_client().await?;
        let configmaps = std::env::var("HELM_DRIVER")
            .is_ok_and(|d| d.eq_ignore_ascii_case("configmap") || d.eq_ignore_ascii_case("configmaps"));
        let driver = if configmaps { "ConfigMaps" } else { "Secrets" };
        let lp = kube::api::ListParams::default().labels(&format!("owner=helm,name={name}"));
        let what = format!("list helm release {namespace}/{name} ({driver})");
        if configmaps {
            self.list_metadata(&what, kube::Api::<ConfigMap>::namespaced(client, namespace), &lp)
                .await
        } else {
            self.list_metadata(&what, kube::Api::<Secret>::namespaced(client, namespace), &lp)
                .await
        }
    }

    /// The metadata of every object `api` lists with `lp`.
    async fn list_metadata<K>(
        &self,
        what: &str,
        api: kube::Api<K>,
        lp: &kube::api::ListParams,
    ) -> Result<Vec<ObjectMeta>, ApiError>
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        Ok(self
            .call(what, api.list_metadata(lp))
            .await?
            .items
            .into_iter()
            .map(|m| m.metadata)
            .collect())
    }

    /// The metadata of one object, or None when it does not exist; asked once per run
    /// (helm-ownership, install-rbac and dry-run all need it for the same objects).
    pub async fn existing(
        &self,
        client: &kube::Client,
        ar: &kube::discovery::ApiResource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<ObjectMeta>, ApiError> {
        let key = (
            format!("{}/{}", ar.api_version, ar.plural),
            namespace.map(str::to_string),
            name.to_string(),
        );
        let cell = {
            let mut map = self
                .existing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(map.entry(key).or_default())
        };
        cell.get_or_init(|| async {
            let api: kube::Api<kube::api::DynamicObject> = match namespace {
                Some(ns) => kube::Api::namespaced_with(client.clone(), ns, ar),
                None => kube::Api::all_with(client.clone(), ar),
            };
            let what = match namespace {
                Some(ns) => format!("GET {} {name} in namespace {ns}", ar.kind),
                None => format!("GET {} {name}", ar.kind),
            };
            self.call(&what, api.get_metadata_opt(name))
                .await
                .map(|m| m.map(|m| m.metadata))
        })
        .await
        .clone()
    }

    /// Every object of a kind, metadata only, in pages of 500 (as kubectl lists), each item
    /// handed to `keep` as the few fields checks read: memory stays one page however large
    /// the cluster, and managedFields are never materialised.
    pub async fn list_meta(
        &self,
        client: &kube::Client,
        ar: &kube::discovery::ApiResource,
        what: &str,
        lp: &kube::api::ListParams,
        keep: impl FnMut(SlimMeta),
    ) -> Result<usize, ApiError> {
        self.list_meta_in(client, ar, None, what, lp, keep).await
    }

    /// `list_meta` in one namespace (`None`: across all, or a cluster-scoped kind).
    pub async fn list_meta_in(
        &self,
        client: &kube::Client,
        ar: &kube::discovery::ApiResource,
        namespace: Option<&str>,
        what: &str,
        lp: &kube::api::ListParams,
        mut keep: impl FnMut(SlimMeta),
    ) -> Result<usize, ApiError> {
        let prefix = if ar.group.is_empty() {
            format!("/api/{}", ar.version)
        } else {
            format!("/apis/{}/{}", ar.group, ar.version)
        };
        let path = match namespace {
            Some(ns) => format!("{prefix}/namespaces/{ns}/{}", ar.plural),
            None => format!("{prefix}/{}", ar.plural),
        };
        let mut lp = lp.clone();
        lp.limit = Some(500);
        let mut count = 0;
        loop {
            let req = kube::core::Request::new(path.as_str())
                .list_metadata(&lp)
                .map_err(|e| ApiError::Other(format!("{what}: {e}")))?;
            let page: SlimList = self.call(what, client.request(req)).await?;
            let items = page.items.unwrap_or_default();
            count += items.len();
            for item in items {
                keep(item.metadata.unwrap_or_default());
            }
            match page.metadata.and_then(|m| m.continue_).filter(|c| !c.is_empty()) {
                Some(token) => lp.continue_token = Some(token),
                None => return Ok(count),
            }
        }
    }

    /// Learn, for `existing`, whether each of `names` (one kind, one namespace) exists with
    /// one paged metadata list instead of a GET each — only when there are many: a large
    /// helmfile has thousands of objects in a few dozen kinds and namespaces. When the list
    /// is not allowed or fails, nothing is learnt and `existing` GETs each as before.
    pub async fn prefetch_existing(
        &self,
        client: &kube::Client,
        ar: &kube::discovery::ApiResource,
        namespace: Option<&str>,
        names: &[&str],
    ) {
        const LIST_FROM: usize = 8;
        if names.len() < LIST_FROM {
            return;
        }
        let wanted: std::collections::BTreeSet<&str> = names.iter().copied().collect();
        let mut found: BTreeMap<String, ObjectMeta> = BTreeMap::new();
        let what = match namespace {
            Some(ns) => format!("list {} in namespace {ns}", ar.plural),
            None => format!("list {}", ar.plural),
        };
        let listed = self
            .list_meta_in(
                client,
                ar,
                namespace,
                &what,
                &kube::api::ListParams::default(),
                |m| {
                    if let Some(name) = m.name.clone().filter(|n| wanted.contains(n.as_str())) {
                        found.insert(name, m.into_object_meta());
                    }
                },
            )
            .await;
        if listed.is_err() {
            return;
        }
        let mut map = self
            .existing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for name in wanted {
            let key = (
                format!("{}/{}", ar.api_version, ar.plural),
                namespace.map(str::to_string),
                name.to_string(),
            );
            let cell = map.entry(key).or_default();
            let _ = cell.set(Ok(found.remove(name)));
        }
    }

    /// Drop what `existing` learnt (after `--fix` changed the cluster).
    pub fn forget_objects(&self) {
        self.existing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// API requests sent so far (the cluster benchmark logs it).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    async fn build(&self) -> Result<Connected, String> {
        let (config, source) = load_config(self.kubeconfig.as_deref(), self.context.as_deref()).await?;
        let server = config.cluster_url.to_string();
        let mut http = HttpConnector::new_with_resolver(ResolverService(self.resolver.clone()));
        http.enforce_http(false);
        http.set_connect_timeout(Some(self.timeout));
        // A request's headers and body go out as separate writes; with Nagle on, the second
        // waits for the server's delayed ACK: 40 ms per API call.
        http.set_nodelay(true);
        let tls = config
            .rustls_client_config()
            .map_err(|e| format!("TLS setup for {server} from {source}: {e}"))?;
        // HTTP/2 when the server offers it (every kube-apiserver does): the checks' concurrent
        // calls then share one connection and one TLS handshake instead of one each.
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http();
        let builder = match &config.tls_server_name {
            Some(name) => {
                let name = rustls::pki_types::ServerName::try_from(name.clone())
                    .map_err(|e| format!("tls-server-name {name} from {source}: {e}"))?;
                builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
            }
            None => builder,
        };
        let https = builder.enable_http1().enable_http2().wrap_connector(http);
        let hyper = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(https);
        let counter = Arc::clone(&self.requests);
        let auth = config
            .auth_layer()
            .map_err(|e| format!("credentials of {source}: {e}"))?;
        let headers = config
            .extra_headers_layer()
            .map_err(|e| format!("headers of {source}: {e}"))?;
        let service = ServiceBuilder::new()
            .layer(config.base_uri_layer())
            .option_layer(auth)
            .layer(headers)
            .map_request(move |req| {
                counter.fetch_add(1, Ordering::Relaxed);
                req
            })
            .map_err(BoxError::from)
            .service(hyper);
        Ok(Connected {
            client: kube::Client::new(service, config.default_namespace),
            server,
            source,
        })
    }

    /// Run one API call under `--timeout`, naming the failure plainly.
    pub async fn call<T, F>(&self, what: &str, fut: F) -> Result<T, ApiError>
    where
        F: Future<Output = Result<T, kube::Error>>,
    {
        match tokio::time::timeout(self.timeout, fut).await {
            Err(_) => Err(ApiError::Timeout(format!(
                "{what}: no answer within {}",
                humantime::format_duration(self.timeout)
            ))),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(ApiError::from_kube(what, e)),
        }
    }
}

impl KubeAccess {
    /// The server version and every served group/version: what `helm install` will see as
    /// `.Capabilities`, for rendering the install as it will be installed.
    pub async fn capabilities(&self) -> Result<crate::install::render::Capabilities, String> {
        let conn = self.connect().await?;
        let version = self
            .server_version()
            .await
            .map_err(|e| e.to_string())?
            .to_string();
        let core = self
            .call("GET /api", conn.client.list_core_api_versions())
            .await
            .map_err(|e| e.to_string())?;
        let groups = self
            .call("GET /apis", conn.client.list_api_groups())
            .await
            .map_err(|e| e.to_string())?;
        let mut group_versions: Vec<String> = core.versions;
        for g in groups.groups {
            group_versions.extend(g.versions.into_iter().map(|v| v.group_version));
        }
        // helm's GetVersionSet: every served group/version, and group/version/Kind of every
        // resource in it (subresources too), so `.Capabilities.APIVersions.Has
        // "policy/v1beta1/PodDisruptionBudget"` answers as it will at install.
        let lists = futures::future::join_all(group_versions.iter().map(|gv| {
            let client = conn.client.clone();
            async move {
                let what = format!("GET {gv} resources");
                if gv.contains('/') {
                    self.call(&what, client.list_api_group_resources(gv)).await
                } else {
                    self.call(&what, client.list_core_api_resources(gv)).await
                }
            }
        }))
        .await;
        let mut api_versions = group_versions.clone();
        // A Kind shows up once per resource and subresource that serves it: said once.
        let mut seen = std::collections::HashSet::new();
        for (gv, list) in group_versions.iter().zip(lists) {
            // A group whose discovery fails (an aggregated API down) gives helm its
            // group/version without kinds, as ServerGroupsAndResources does.
            let Ok(list) = list else { continue };
            for r in list.resources {
                let id = format!("{gv}/{}", r.kind);
                if seen.insert(id.clone()) {
                    api_versions.push(id);
                }
            }
        }
        Ok(crate::install::render::Capabilities {
            kube_version: version,
            api_versions,
        })
    }
}

/// kubectl's order: --kubeconfig, $KUBECONFIG, ~/.kube/config, then in-cluster.
async fn load_config(path: Option<&Path>, context: Option<&str>) -> Result<(Config, String), String> {
    let opts = KubeConfigOptions {
        context: context.map(String::from),
        ..Default::default()
    };
    let (kubeconfig, source) = if let Some(p) = path {
        let kc = Kubeconfig::read_from(p).map_err(|e| format!("kubeconfig {}: {e}", p.display()))?;
        (kc, p.display().to_string())
    } else if let Some(kc) =
        Kubeconfig::from_env().map_err(|e| format!("kubeconfig from $KUBECONFIG: {e}"))?
    {
        (kc, "$KUBECONFIG".to_string())
    } else {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        match home.map(|h| h.join(".kube/config")).filter(|p| p.exists()) {
            Some(p) => {
                let kc = Kubeconfig::read_from(&p).map_err(|e| format!("kubeconfig {}: {e}", p.display()))?;
                (kc, p.display().to_string())
            }
            None if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() => {
                let config = Config::incluster().map_err(|e| format!("in-cluster configuration: {e}"))?;
                return Ok((config, "the pod's service account".to_string()));
            }
            None => {
                return Err(
                    "no kubeconfig: --kubeconfig not given, $KUBECONFIG unset, ~/.kube/config missing, and not running in a pod"
                        .to_string(),
                )
            }
        }
    };
    let source = match context {
        Some(c) => format!("context {c} of {source}"),
        None => match &kubeconfig.current_context {
            Some(c) => format!("context {c} of {source}"),
            None => source,
        },
    };
    let config = Config::from_custom_kubeconfig(kubeconfig, &opts)
        .await
        .map_err(|e| format!("{source}: {e}"))?;
    Ok((config, source))
}

/// hyper's connector asks this for addresses: our resolver, under --host-root.
#[derive(Clone)]
struct ResolverService(Resolver);

impl tower::Service<Name> for ResolverService {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let resolver = self.0.clone();
        Box::pin(async move {
            let resolved = resolver
                .resolve(name.as_str())
                .await
                .map_err(|e| std::io::Error::other(format!("lookup {}: {e}", name.as_str())))?;
            Ok(resolved
                .addrs
                .into_iter()
                .map(|ip| SocketAddr::new(ip, 0))
                .collect::<Vec<_>>()
                .into_iter())
        })
    }
}

/// Why an API call gave no answer. Every variant means "cannot decide" except where a
/// check knows better (404 is often the answer itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    Forbidden(String),
    Unauthorized(String),
    NotFound(String),
    Timeout(String),
    Unreachable(String),
    Other(String),
}

impl ApiError {
    fn from_kube(what: &str, e: kube::Error) -> Self {
        match e {
            kube::Error::Api(status) => {
                let text = format!("{what}: {} ({})", status.message, status.code);
                match status.code {
                    401 => {
                        ApiError::Unauthorized(format!("{what}: Unauthorized: the credentials were rejected"))
                    }
                    403 => ApiError::Forbidden(text),
                    404 => ApiError::NotFound(text),
                    _ => ApiError::Other(text),
                }
            }
            kube::Error::Discovery(d) => ApiError::NotFound(format!("{what}: {d}")),
            kube::Error::Service(err) => ApiError::Unreachable(format!("{what}: {}", chain(err.as_ref()))),
            kube::Error::HyperError(err) => ApiError::Unreachable(format!("{what}: {}", chain(&err))),
            other => ApiError::Other(format!("{what}: {}", chain(&other))),
        }
    }

    pub fn message(&self) -> &str {
        match self {
            ApiError::Forbidden(m)
            | ApiError::Unauthorized(m)
            | ApiError::NotFound(m)
            | ApiError::Timeout(m)
            | ApiError::Unreachable(m)
            | ApiError::Other(m) => m,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// "client error (Connect): tcp connect error: Connection refused (os error 111)" — the
/// innermost causes are what an operator needs.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}

pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const RELEASE_NAME: &str = "meta.helm.sh/release-name";
pub const RELEASE_NAMESPACE: &str = "meta.helm.sh/release-namespace";

/// Helm's rule (pkg/action/validate.go, checkOwnership): `None` when the object may be
/// adopted by `release`, else helm's own "invalid ownership metadata; …" text.
pub fn ownership_problem(
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
    release: &Release,
) -> Option<String> {
    fn require(map: &BTreeMap<String, String>, key: &str, want: &str) -> Option<String> {
        match map.get(key) {
            None => Some(format!("missing key {key:?}: must be set to {want:?}")),
            Some(v) if v != want => Some(format!("key {key:?} must equal {want:?}: current value is {v:?}")),
            Some(_) => None,
        }
    }
    let mut errs = Vec::new();
    if let Some(e) = require(labels, MANAGED_BY, "Helm") {
        errs.push(format!("label validation error: {e}"));
    }
    if let Some(e) = require(annotations, RELEASE_NAME, &release.name) {
        errs.push(format!("annotation validation error: {e}"));
    }
    if let Some(e) = require(annotations, RELEASE_NAMESPACE, &release.namespace) {
        errs.push(format!("annotation validation error: {e}"));
    }
    if errs.is_empty() {
        None
    } else {
        Some(format!("invalid ownership metadata; {}", errs.join("; ")))
    }
}

/// helm install's whole sentence for an object it cannot adopt.
pub fn cannot_import(kind: &str, name: &str, namespace: Option<&str>, problem: &str) -> String {
    format!(
        "{kind} {name:?} in namespace {:?} exists and cannot be imported into the current release: {problem}",
        namespace.unwrap_or("")
    )
}

/// The release the objects belong to, from Helm's annotations (for fix commands).
pub fn owning_release(annotations: &BTreeMap<String, String>) -> Option<(String, String)> {
    Some((
        annotations.get(RELEASE_NAME)?.clone(),
        annotations.get(RELEASE_NAMESPACE)?.clone(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn helm_wording_for_seed000() {
        let kubevela = Release {
            name: "kubevela".into(),
            namespace: "vela-system".into(),
        };
        let problem = ownership_problem(&map(&[]), &map(&[]), &kubevela).unwrap();
        assert_eq!(
            cannot_import("Namespace", "cert-manager", None, &problem),
            r#"Namespace "cert-manager" in namespace "" exists and cannot be imported into the current release: invalid ownership metadata; label validation error: missing key "app.kubernetes.io/managed-by": must be set to "Helm"; annotation validation error: missing key "meta.helm.sh/release-name": must be set to "kubevela"; annotation validation error: missing key "meta.helm.sh/release-namespace": must be set to "vela-system""#
        );
        let oam = map(&[(RELEASE_NAME, "oam"), (RELEASE_NAMESPACE, "oam-system")]);
        let problem = ownership_problem(&map(&[(MANAGED_BY, "Helm")]), &oam, &kubevela).unwrap();
        assert_eq!(
            problem,
            r#"invalid ownership metadata; annotation validation error: key "meta.helm.sh/release-name" must equal "kubevela": current value is "oam"; annotation validation error: key "meta.helm.sh/release-namespace" must equal "vela-system": current value is "oam-system""#
        );
        let ours = map(&[(RELEASE_NAME, "kubevela"), (RELEASE_NAMESPACE, "vela-system")]);
        assert_eq!(
            ownership_problem(&map(&[(MANAGED_BY, "Helm")]), &ours, &kubevela),
            None
        );
    }
}

/// The metadata fields checks read from listed objects (managedFields and the rest are
/// skipped while parsing, never allocated).
#[derive(serde::Deserialize, Default, Debug, Clone)]
#[serde(rename_all = "camelCase", default)]
pub struct SlimMeta {
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub uid: Option<String>,
    pub deletion_timestamp: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    pub finalizers: Option<Vec<String>>,
    pub labels: Option<BTreeMap<String, String>>,
    pub annotations: Option<BTreeMap<String, String>>,
}

impl SlimMeta {
    pub fn into_object_meta(self) -> ObjectMeta {
        ObjectMeta {
            name: self.name,
            namespace: self.namespace,
            uid: self.uid,
            deletion_timestamp: self.deletion_timestamp,
            finalizers: self.finalizers,
            labels: self.labels,
            annotations: self.annotations,
            ..Default::default()
        }
    }
}

#[derive(serde::Deserialize)]
struct SlimItem {
    #[serde(default)]
    metadata: Option<SlimMeta>,
}

#[derive(serde::Deserialize, Default)]
struct SlimListMeta {
    #[serde(rename = "continue", default)]
    continue_: Option<String>,
}

/// `items` is `null` in an empty list of custom resources.
#[derive(serde::Deserialize)]
struct SlimList {
    #[serde(default)]
    items: Option<Vec<SlimItem>>,
    #[serde(default)]
    metadata: Option<SlimListMeta>,
}
