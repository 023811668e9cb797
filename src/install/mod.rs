//! THE INSTALL MODEL: what `helm install` / `helmfile sync` is about to do, rendered once per
//! run by the real helm / helmfile (`render`), parsed once (`manifest`), and read by every
//! check through `Ctx::install()`: releases, objects with their source template, images,
//! namespaces, claims, chart repositories.

pub mod argv;
pub mod crd_schema;
pub mod helmfile_errors;
pub mod hook_scan;
pub mod image;
pub mod manifest;
pub mod render;
pub mod yaml11;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

pub use image::ImageRef;
pub use manifest::{Object, Origin};

/// The install as the installer describes it to helm or helmfile (flags or `install:`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstallSpec {
    Chart(ChartSpec),
    Helmfile(HelmfileSpec),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChartSpec {
    /// A directory, a `.tgz`, `repo/name` or `oci://…`, as helm takes it.
    pub chart: String,
    pub release: String,
    pub namespace: String,
    pub values: Vec<PathBuf>,
    pub set: Vec<String>,
    pub set_string: Vec<String>,
    pub version: Option<String>,
    pub create_namespace: bool,
    pub skip_crds: bool,
    pub no_hooks: bool,
    /// helm --disable-openapi-validation: helm skips its client-side validation.
    pub disable_openapi_validation: bool,
    /// helm --take-ownership: helm adopts existing objects whatever their ownership.
    pub take_ownership: bool,
    /// install, or upgrade [--install], as the installer's command says (`-- helm …`, the
    /// helm plugin); `None` for the short form `--chart`, which may be either.
    pub command: Option<HelmCommand>,
    /// Flags that change the render, handed to `helm template` as written (`--set-file`,
    /// `--repo`, `--post-renderer`, …).
    pub template_args: Vec<String>,
    /// The installer's helm, when its command names one by path (`/opt/bk/helm install …`).
    pub helm_binary: Option<PathBuf>,
    /// Flags accepted that change nothing preflight models (`--atomic`, `--timeout=10m`).
    pub not_modeled: Vec<String>,
    /// The command upgrades and the release exists (read from the cluster before the
    /// render): rendered with `--is-upgrade`, as `.Release.IsUpgrade` will be.
    pub is_upgrade: bool,
}

/// The helm command the installer runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelmCommand {
    Install,
    Upgrade {
        /// `--install`: installs when the release does not exist yet.
        install: bool,
    },
}

/// The helmfile command the installer runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HelmfileCommand {
    #[default]
    Sync,
    Apply,
    Diff,
    Template,
}

impl HelmfileCommand {
    pub fn name(self) -> &'static str {
        match self {
            HelmfileCommand::Sync => "sync",
            HelmfileCommand::Apply => "apply",
            HelmfileCommand::Diff => "diff",
            HelmfileCommand::Template => "template",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Sync, Self::Apply, Self::Diff, Self::Template]
            .into_iter()
            .find(|c| c.name() == s)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HelmfileSpec {
    pub file: PathBuf,
    pub environment: Option<String>,
    pub selectors: Vec<String>,
    /// sync (the default), apply, diff or template.
    pub command: HelmfileCommand,
    /// `--helm-binary`: the helm helmfile runs (wins over the state's `helmBinary:`).
    pub helm_binary: Option<PathBuf>,
    /// Global flags that change the state (`--state-values-set`, `--namespace`,
    /// `--skip-deps`…), handed to every helmfile call as written.
    pub state_args: Vec<String>,
    /// The command's flags that change the render (`--set`, `--values`, `--args`…), handed
    /// to `helmfile template` as written.
    pub template_args: Vec<String>,
    /// The command's `--skip-crds` / `--no-hooks`.
    pub skip_crds: bool,
    pub no_hooks: bool,
    /// Flags accepted that change nothing preflight models.
    pub not_modeled: Vec<String>,
}

impl InstallSpec {
    /// Flags of the installer's command that preflight accepted and does not model.
    pub fn not_modeled(&self) -> &[String] {
        match self {
            InstallSpec::Chart(c) => &c.not_modeled,
            InstallSpec::Helmfile(h) => &h.not_modeled,
        }
    }
}

/// `install:` in a profile (paths relative to the profile file).
#[derive(Deserialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawInstall {
    #[serde(default)]
    pub chart: Option<String>,
    #[serde(default)]
    pub release: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub set: Vec<String>,
    #[serde(default)]
    pub set_string: Vec<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub create_namespace: bool,
    #[serde(default)]
    pub skip_crds: bool,
    #[serde(default)]
    pub no_hooks: bool,
    #[serde(default)]
    pub disable_openapi_validation: bool,
    #[serde(default)]
    pub helmfile: Option<String>,
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub selectors: Vec<String>,
    /// helmfile's command: sync (default), apply, diff, template.
    #[serde(default)]
    pub command: Option<String>,
}

impl RawInstall {
    /// Validated against what helm / helmfile need; relative paths resolved against `base`
    /// (the profile's directory). A relative chart that is not a local path (`repo/name`)
    /// is kept as written.
    pub fn into_spec(self, base: &std::path::Path) -> Result<InstallSpec, String> {
        let local = |p: &str| {
            let path = PathBuf::from(p);
            if path.is_absolute() {
                path
            } else {
                base.join(path)
            }
        };
        match (self.chart, self.helmfile) {
            (Some(chart), None) => {
                let release = self
                    .release
                    .ok_or("install: a chart needs `release` (the release name)")?;
                let namespace = self.namespace.ok_or("install: a chart needs `namespace`")?;
                let resolved = local(&chart);
                let chart = if resolved.exists() {
                    resolved.display().to_string()
                } else {
                    chart
                };
                Ok(InstallSpec::Chart(ChartSpec {
                    chart,
                    release,
                    namespace,
                    values: self.values.iter().map(|v| local(v)).collect(),
                    set: self.set,
                    set_string: self.set_string,
                    version: self.version,
                    create_namespace: self.create_namespace,
                    skip_crds: self.skip_crds,
                    no_hooks: self.no_hooks,
                    disable_openapi_validation: self.disable_openapi_validation,
                    ..Default::default()
                }))
            }
            (None, Some(file)) => {
                if self.release.is_some() || !self.values.is_empty() || !self.set.is_empty() {
                    return Err(
                        "install: `release`, `values` and `set` go with `chart`; a helmfile names its own"
                            .to_string(),
                    );
                }
                let command = match self.command.as_deref() {
                    None => HelmfileCommand::Sync,
                    Some(c) => HelmfileCommand::parse(c).ok_or_else(|| {
                        format!("install: command `{c}` is none of sync, apply, diff, template")
                    })?,
                };
                Ok(InstallSpec::Helmfile(HelmfileSpec {
                    file: local(&file),
                    environment: self.environment,
                    selectors: self.selectors,
                    command,
                    ..Default::default()
                }))
            }
            (Some(_), Some(_)) => Err("install: give either `chart` or `helmfile`, not both".to_string()),
            (None, None) => {
                Err("install: give `chart` (with `release` and `namespace`) or `helmfile`".to_string())
            }
        }
    }
}

/// One release of the install.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseInfo {
    pub name: String,
    pub namespace: String,
    /// As given to helm: `./charts/x`, `repo/x`, `oci://…`.
    pub chart: String,
    pub version: Option<String>,
    /// `--create-namespace`; helmfile's `createNamespace` (default true).
    pub create_namespace: bool,
    /// helmfile's `needs:` as written (`name`, `ns/name`, `context/ns/name`).
    pub needs: Vec<String>,
    /// The helmfile file that declares it (as helmfile names it), for messages.
    pub file: Option<String>,
    /// A helmfile release's local chart directory (its `chart:` is relative to its file).
    pub chart_dir: Option<PathBuf>,
    /// That local chart lists dependencies, so helmfile runs `helm dependency build` in it
    /// (read once, from its Chart.yaml / requirements.yaml).
    pub chart_has_dependencies: bool,
    /// helm validates its objects against the server's OpenAPI schema (unless
    /// --disable-openapi-validation; helmfile's disableOpenAPIValidation).
    pub openapi_validation: bool,
    /// Whether its templates rendered; its objects are in `Install::objects` only if so.
    pub render: RenderState,
    /// Releases of the same helmfile file whose values did not render: helmfile prepares a
    /// file's releases together and stops before syncing any of them (measured with the
    /// real `helmfile sync`: a sibling file's releases still install).
    pub blocked_by: Vec<String>,
}

/// How one release's render ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RenderState {
    Rendered,
    /// helm or helmfile refused it: `helm install` / `helmfile sync` will fail the same way.
    /// helm's `Error:` sentence or helmfile's one line (values file, missing key).
    Failed(String),
    /// preflight did not render it (a hook it would have had to run, a tool missing): why.
    NotRendered(String),
}

/// A hook of the helmfile (`hooks:` of the state or of a release), as `helmfile sync` will
/// run it: `command args…` in the directory of the file that declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelmfileHook {
    /// The release it belongs to; `None` for the state's own (global) hooks.
    pub release: Option<String>,
    /// The helmfile file that declares it, and the directory helmfile runs it in.
    pub file: String,
    pub dir: PathBuf,
    pub name: Option<String>,
    pub events: Vec<String>,
    pub command: String,
    pub args: Vec<String>,
}

impl ReleaseInfo {
    pub fn as_release(&self) -> crate::vocab::Release {
        crate::vocab::Release {
            name: self.name.clone(),
            namespace: self.namespace.clone(),
        }
    }
}

/// A chart repository the install pulls from (helmfile `repositories:`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChartRepo {
    pub name: String,
    pub url: String,
}

/// A volume claim the install makes: a PersistentVolumeClaim or a StatefulSet's
/// volumeClaimTemplate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub release: usize,
    pub source: String,
    /// `PersistentVolumeClaim data` or `StatefulSet mysql, claim data`.
    pub what: String,
    pub storage_class: Option<String>,
    /// `spec.resources.requests.storage` as written (`50Gi`).
    pub size: Option<String>,
    /// The claim's name: the PVC's, or for a StatefulSet `<template>-<statefulset>` (each
    /// pod's claim is that, then `-<ordinal>`).
    pub name: String,
    /// Where the claim lives (the object's namespace, else its release's).
    pub namespace: String,
    /// A StatefulSet's claims are named by prefix (one per replica).
    pub per_replica: bool,
    /// The object that makes it (the PersistentVolumeClaim, or the StatefulSet).
    pub subject: crate::vocab::Subject,
}

/// A port the install binds on the nodes it runs on: a hostNetwork pod's container port, a
/// container's hostPort, or a Service's nodePort.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub port: u16,
    /// `TCP`, `UDP` (or `SCTP`), as Kubernetes writes it.
    pub protocol: String,
    /// `Deployment ingress-nginx-controller (release …, template) with hostNetwork`.
    pub what: String,
}

/// What one pod of a workload asks the scheduler for, and how many such pods there are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodRequest {
    /// `Deployment bk-web (release bk, storage-app/templates/deployment.yaml)`
    pub what: String,
    /// The workload, as a finding's subject.
    pub subject: crate::vocab::Subject,
    pub replicas: u64,
    /// millicores
    pub cpu_milli: u128,
    pub memory: u64,
    /// The host ports each of its pods takes on its node (hostPort, or a hostNetwork
    /// container's port), as (port, protocol): the scheduler's NodePorts filter.
    pub host_ports: Vec<(u16, String)>,
}

/// The host ports one pod spec takes on its node: its hostPorts, or every container port
/// with hostNetwork.
pub fn pod_host_ports(spec: &Value) -> Vec<(u16, String)> {
    let host_network = spec.get("hostNetwork").and_then(Value::as_bool) == Some(true);
    let mut out = Vec::new();
    for list in ["initContainers", "containers"] {
        for c in spec.get(list).and_then(Value::as_array).into_iter().flatten() {
            for p in c.get("ports").and_then(Value::as_array).into_iter().flatten() {
                let port = |k: &str| {
                    p.get(k)
                        .and_then(Value::as_u64)
                        .and_then(|n| u16::try_from(n).ok())
                };
                let taken = match port("hostPort") {
                    Some(h) if h > 0 => Some(h),
                    _ if host_network => port("containerPort"),
                    _ => None,
                };
                if let Some(n) = taken {
                    let protocol = p
                        .get("protocol")
                        .and_then(Value::as_str)
                        .unwrap_or("TCP")
                        .to_string();
                    if !out.contains(&(n, protocol.clone())) {
                        out.push((n, protocol));
                    }
                }
            }
        }
    }
    out
}

/// Each image with the places (release, template) that use it.
pub type ImageUses = BTreeMap<ImageRef, Vec<String>>;

/// What the install will do.
#[derive(Clone, Debug)]
pub struct Install {
    /// `chart ./x as release r in ns` or `helmfile ./helmfile.yaml`, for messages.
    pub what: String,
    pub releases: Vec<ReleaseInfo>,
    pub objects: Vec<Object>,
    pub repositories: Vec<ChartRepo>,
    /// `Kubernetes v1.20.2` when rendered with the target cluster's capabilities; otherwise
    /// why not (said in the report).
    pub rendered_for: Result<String, String>,
    /// The helmfile's hooks (none for a chart): recorded, never run by preflight.
    pub hooks: Vec<HelmfileHook>,
    /// Namespaces the hooks that run before the sync create (their scripts read, not run).
    pub hook_namespaces: Vec<HookNamespace>,
    /// The helmfile's `helmBinary:` when it names one: the helm `helmfile sync` runs.
    pub helm_binary: Option<HelmBinary>,
}

/// A namespace a helmfile hook creates before the releases sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookNamespace {
    /// `None`: the hook creates a namespace whose name its scan cannot tell.
    pub namespace: Option<String>,
    /// `the prepare hook ./scripts/create_bcs_namespace.sh of release bcs-api (03-bcs.yaml)`
    pub hook: String,
}

impl HookNamespace {
    /// What each hook that runs before the sync creates.
    pub fn of(hooks: &[HelmfileHook]) -> Vec<HookNamespace> {
        let mut out = Vec::new();
        for h in hooks {
            let c = hook_scan::namespaces(h);
            if c.namespaces.is_empty() && !c.unsure {
                continue;
            }
            let what = c
                .script
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| {
                    let mut words = vec![h.command.as_str()];
                    words.extend(h.args.iter().map(String::as_str));
                    format!("`{}`", words.join(" "))
                });
            let hook = format!(
                "the {} hook {what}{} ({})",
                h.events.join("/"),
                h.release
                    .as_ref()
                    .map(|r| format!(" of release {r}"))
                    .unwrap_or_default(),
                h.file
            );
            out.extend(c.namespaces.into_iter().map(|n| HookNamespace {
                namespace: Some(n),
                hook: hook.clone(),
            }));
            if c.unsure {
                out.push(HookNamespace {
                    namespace: None,
                    hook,
                });
            }
        }
        out
    }
}

/// The helm a helmfile's `helmBinary:` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelmBinary {
    /// As written (`./bin/helm`, `helm3`).
    pub written: String,
    /// The file that says so.
    pub file: String,
    /// Where it resolves (relative to that file's directory, or on PATH); `None`: nowhere.
    pub path: Option<PathBuf>,
}

impl Install {
    /// The releases whose templates did not render, with why.
    pub fn unrendered(&self) -> impl Iterator<Item = (&ReleaseInfo, &str)> {
        self.releases.iter().filter_map(|r| match &r.render {
            RenderState::Rendered => None,
            RenderState::Failed(e) | RenderState::NotRendered(e) => Some((r, e.as_str())),
        })
    }

    /// Whether any release rendered (otherwise there is nothing to check).
    pub fn any_rendered(&self) -> bool {
        self.releases.iter().any(|r| r.render == RenderState::Rendered)
    }

    pub fn release(&self, o: &Object) -> Option<&ReleaseInfo> {
        self.releases.get(o.release)
    }

    /// The object as a finding's subject: kind, namespace (as written, else its release's),
    /// name, and the release and template it comes from.
    pub fn subject(&self, o: &Object) -> crate::vocab::Subject {
        let release = self.release(o);
        crate::vocab::Subject::Object {
            kind: o.kind.clone(),
            namespace: o
                .namespace
                .clone()
                .or_else(|| release.map(|r| r.namespace.clone()))
                .filter(|n| !n.is_empty()),
            name: o.name.clone(),
            release: release.map(|r| r.name.clone()),
            template: Some(o.source.clone()).filter(|s| !s.is_empty()),
        }
    }

    /// The install's own CRD that serves `api_version`/`kind` (a custom resource that cannot
    /// be looked up or mapped before the install creates its CRD).
    pub fn crd_for(&self, api_version: &str, kind: &str) -> Option<&Object> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        self.objects.iter().find(|crd| {
            let spec = |p: &str| crd.value.pointer(p).and_then(Value::as_str);
            crd.kind == "CustomResourceDefinition"
                && spec("/spec/group") == Some(group)
                && spec("/spec/names/kind") == Some(kind)
                && (spec("/spec/version") == Some(version)
                    || crd
                        .value
                        .pointer("/spec/versions")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .any(|v| {
                            v.get("name").and_then(Value::as_str) == Some(version)
                                && v.get("served").and_then(Value::as_bool) != Some(false)
                        }))
        })
    }

    /// `helm's release/template`, for messages: `kruise (kruise/templates/webhook.yaml)`.
    pub fn provenance(&self, o: &Object) -> String {
        let release = self.release(o).map(|r| r.name.as_str()).unwrap_or("?");
        if o.source.is_empty() {
            format!("release {release}")
        } else {
            format!("release {release}, {}", o.source)
        }
    }

    /// `N from R releases`: how much of a check's input came from the install.
    pub fn counted(&self, n: usize, what: &str) -> String {
        format!(
            "{n} {what} from {} release{}",
            self.releases.len(),
            if self.releases.len() == 1 { "" } else { "s" }
        )
    }

    /// The objects `helm install` creates: hooks of other events (pre-delete, test, …) left
    /// out — they never run at install.
    pub fn created_objects(&self) -> impl Iterator<Item = &Object> {
        self.objects.iter().filter(|o| o.created_by_install())
    }

    /// Every image of every pod template (containers, initContainers, ephemeralContainers;
    /// hooks of every event included: an uninstall on an air-gapped site needs them too,
    /// labelled with their phase), normalised, with where it is used. Unparsable references
    /// are returned as errors naming their source.
    /// Each image the install runs with where it is used, and the references that are no
    /// image reference: (as written, why and where).
    pub fn images(&self) -> (ImageUses, Vec<(String, String)>) {
        let mut out: BTreeMap<ImageRef, Vec<String>> = BTreeMap::new();
        let mut bad = Vec::new();
        for o in &self.objects {
            let Some(spec) = pod_spec(o) else { continue };
            for list in ["initContainers", "containers", "ephemeralContainers"] {
                for c in spec.get(list).and_then(Value::as_array).into_iter().flatten() {
                    let Some(image) = c.get("image").and_then(Value::as_str) else {
                        continue;
                    };
                    match ImageRef::parse(image) {
                        Ok(r) => {
                            let used = out.entry(r).or_default();
                            let p = match o.hook_phase() {
                                Some(phase) => format!("{}, {phase}", self.provenance(o)),
                                None => self.provenance(o),
                            };
                            if !used.contains(&p) {
                                used.push(p);
                            }
                        }
                        Err(e) => bad.push((image.to_string(), format!("{e} ({})", self.provenance(o)))),
                    }
                }
            }
        }
        (out, bad)
    }

    /// Whether the install itself creates this namespace (`--create-namespace` for a
    /// release in it, or a rendered Namespace).
    pub fn creates_namespace(&self, ns: &str) -> bool {
        self.hook_creates(ns).is_some()
            || self
                .releases
                .iter()
                .any(|r| r.create_namespace && r.namespace == ns)
            || self
                .objects
                .iter()
                .any(|o| o.kind == "Namespace" && o.api_version == "v1" && o.name == ns)
    }

    /// The hook that creates namespace `ns` before the sync, when one certainly does.
    pub fn hook_creates(&self, ns: &str) -> Option<&HookNamespace> {
        self.hook_namespaces
            .iter()
            .find(|h| h.namespace.as_deref() == Some(ns))
    }

    /// The hooks that create a namespace whose name a reading of their script cannot tell.
    pub fn unsure_hook_namespaces(&self) -> Vec<&str> {
        self.hook_namespaces
            .iter()
            .filter(|h| h.namespace.is_none())
            .map(|h| h.hook.as_str())
            .collect()
    }

    /// Every namespace the install touches: the releases', the objects', and the
    /// Namespaces it creates.
    pub fn namespaces(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self.releases.iter().map(|r| r.namespace.clone()).collect();
        for o in &self.objects {
            if let Some(ns) = &o.namespace {
                out.insert(ns.clone());
            }
            if o.kind == "Namespace" && o.api_version == "v1" {
                out.insert(o.name.clone());
            }
        }
        out
    }

    /// Each workload's pod requests as the scheduler counts them: the sum of its containers'
    /// requests (limits where no request is set), or its largest init container if larger.
    pub fn pod_requests(&self) -> Vec<PodRequest> {
        fn quantity(c: &Value, what: &str) -> (u128, u64) {
            let res = |kind: &str| {
                c.pointer(&format!("/resources/{kind}/{what}")).and_then(|v| {
                    v.as_str()
                        .map(String::from)
                        .or_else(|| v.as_f64().map(|n| n.to_string()))
                })
            };
            let q = res("requests").or_else(|| res("limits")).unwrap_or_default();
            let milli = crate::quantity::parse_milli(&q).unwrap_or(0);
            (milli, u64::try_from(milli / 1000).unwrap_or(u64::MAX))
        }
        let mut out = Vec::new();
        for o in self.created_objects() {
            let Some(spec) = pod_spec(o) else { continue };
            let list = |key: &str| {
                spec.get(key)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            };
            let (mut cpu, mut mem) = (0u128, 0u64);
            for c in list("containers") {
                cpu += quantity(&c, "cpu").0;
                mem = mem.saturating_add(quantity(&c, "memory").1);
            }
            for c in list("initContainers") {
                cpu = cpu.max(quantity(&c, "cpu").0);
                mem = mem.max(quantity(&c, "memory").1);
            }
            let replicas = match o.kind.as_str() {
                "Deployment" | "StatefulSet" | "ReplicaSet" | "ReplicationController" => o
                    .value
                    .pointer("/spec/replicas")
                    .and_then(Value::as_u64)
                    .unwrap_or(1),
                "Job" => o
                    .value
                    .pointer("/spec/parallelism")
                    .and_then(Value::as_u64)
                    .unwrap_or(1),
                _ => 1,
            };
            out.push(PodRequest {
                what: format!("{} {} ({})", o.kind, o.name, self.provenance(o)),
                subject: self.subject(o),
                replicas,
                cpu_milli: cpu,
                memory: mem,
                host_ports: pod_host_ports(spec),
            });
        }
        out
    }

    /// The ports the install binds on nodes (hooks that never run at install left out).
    pub fn host_ports(&self) -> Vec<HostPort> {
        let mut out = Vec::new();
        let port_of = |v: Option<&Value>| v.and_then(Value::as_u64).and_then(|p| u16::try_from(p).ok());
        for o in self.created_objects() {
            let who = format!("{} {} ({})", o.kind, o.name, self.provenance(o));
            if o.kind == "Service" {
                let kind = o
                    .value
                    .pointer("/spec/type")
                    .and_then(Value::as_str)
                    .unwrap_or("ClusterIP");
                if kind != "NodePort" && kind != "LoadBalancer" {
                    continue;
                }
                for p in o
                    .value
                    .pointer("/spec/ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(port) = port_of(p.get("nodePort")) {
                        out.push(HostPort {
                            port,
                            protocol: p
                                .get("protocol")
                                .and_then(Value::as_str)
                                .unwrap_or("TCP")
                                .to_string(),
                            what: format!("{who} as nodePort"),
                        });
                    }
                }
                continue;
            }
            let Some(spec) = pod_spec(o) else { continue };
            let host_network = spec.get("hostNetwork").and_then(Value::as_bool) == Some(true);
            for list in ["initContainers", "containers"] {
                for c in spec.get(list).and_then(Value::as_array).into_iter().flatten() {
                    for p in c.get("ports").and_then(Value::as_array).into_iter().flatten() {
                        let protocol = p
                            .get("protocol")
                            .and_then(Value::as_str)
                            .unwrap_or("TCP")
                            .to_string();
                        // With hostNetwork the container's port is the host's (hostPort equals it).
                        let (port, how) = match (host_network, port_of(p.get("hostPort"))) {
                            (_, Some(h)) if !host_network => (Some(h), "as hostPort"),
                            (true, _) => (port_of(p.get("containerPort")), "with hostNetwork"),
                            _ => (None, ""),
                        };
                        if let Some(port) = port {
                            let hp = HostPort {
                                port,
                                protocol,
                                what: format!("{who} {how}"),
                            };
                            if !out.contains(&hp) {
                                out.push(hp);
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// Every volume claim: PersistentVolumeClaims and StatefulSet volumeClaimTemplates.
    pub fn claims(&self) -> Vec<Claim> {
        let mut out = Vec::new();
        let claim = |o: &Object, what: String, spec: Option<&Value>, name: String, per_replica: bool| Claim {
            subject: self.subject(o),
            release: o.release,
            source: o.source.clone(),
            name,
            per_replica,
            namespace: o
                .namespace
                .clone()
                .or_else(|| self.release(o).map(|r| r.namespace.clone()))
                .unwrap_or_default(),
            what,
            storage_class: spec
                .and_then(|s| s.get("storageClassName"))
                .and_then(Value::as_str)
                .map(String::from),
            size: spec
                .and_then(|s| s.pointer("/resources/requests/storage"))
                .and_then(|v| {
                    v.as_str()
                        .map(String::from)
                        .or_else(|| v.as_u64().map(|n| n.to_string()))
                }),
        };
        for o in &self.objects {
            match o.kind.as_str() {
                "PersistentVolumeClaim" => out.push(claim(
                    o,
                    format!("PersistentVolumeClaim {}", o.name),
                    o.value.get("spec"),
                    o.name.clone(),
                    false,
                )),
                "StatefulSet" => {
                    let templates = o
                        .value
                        .pointer("/spec/volumeClaimTemplates")
                        .and_then(Value::as_array);
                    for t in templates.into_iter().flatten() {
                        let name = t.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("?");
                        out.push(claim(
                            o,
                            format!("StatefulSet {}, claim {name}", o.name),
                            t.get("spec"),
                            format!("{name}-{}", o.name),
                            true,
                        ));
                    }
                }
                _ => {}
            }
        }
        out
    }
}

/// The pod spec of a workload object (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet,
/// Job, CronJob, ReplicationController).
pub fn pod_spec(o: &Object) -> Option<&Value> {
    let v = &o.value;
    match o.kind.as_str() {
        "Pod" => v.get("spec"),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" | "ReplicationController" => {
            v.pointer("/spec/template/spec")
        }
        "CronJob" => v.pointer("/spec/jobTemplate/spec/template/spec"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn install(text: &str) -> Install {
        Install {
            what: "test".into(),
            releases: vec![ReleaseInfo {
                name: "r".into(),
                namespace: "ns".into(),
                chart: "./c".into(),
                version: None,
                create_namespace: false,
                needs: vec![],
                file: None,
                chart_dir: None,
                chart_has_dependencies: false,
                openapi_validation: true,
                render: RenderState::Rendered,
                blocked_by: Vec::new(),
            }],
            objects: manifest::parse(text, 0).unwrap(),
            repositories: vec![],
            rendered_for: Err("test".into()),
            hooks: vec![],
            helm_binary: None,
            hook_namespaces: Vec::new(),
        }
    }

    #[test]
    fn images_of_every_pod_template() {
        let i = install("# Source: c/templates/d.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      initContainers: [{name: i, image: busybox}]\n      containers: [{name: a, image: \"hub.bktencent.com/blueking/bk-repo:1.0.0\"}]\n---\n# Source: c/templates/cj.yaml\napiVersion: batch/v1\nkind: CronJob\nmetadata: {name: cj}\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers: [{name: a, image: busybox:latest}]\n");
        let (images, bad) = i.images();
        assert!(bad.is_empty());
        let names: Vec<String> = images.keys().map(|i| i.to_string()).collect();
        assert_eq!(
            names,
            vec![
                "docker.io/library/busybox:latest",
                "hub.bktencent.com/blueking/bk-repo:1.0.0"
            ]
        );
        assert_eq!(
            images.values().next().unwrap(),
            &vec![
                "release r, c/templates/d.yaml".to_string(),
                "release r, c/templates/cj.yaml".to_string()
            ]
        );
    }

    #[test]
    fn hooks_that_never_run_at_install_are_no_install_pods_but_keep_their_images() {
        let i = install("# Source: c/templates/j.yaml\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: fin\n  annotations: {helm.sh/hook: pre-delete}\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: busybox:1.36, resources: {requests: {cpu: '3'}}}]\n---\n# Source: c/templates/m.yaml\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  annotations: {helm.sh/hook: 'pre-install,pre-upgrade'}\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: busybox:1.36}]\n");
        let pods: Vec<String> = i.pod_requests().into_iter().map(|p| p.what).collect();
        assert_eq!(pods, vec!["Job migrate (release r, c/templates/m.yaml)"]);
        assert_eq!(i.created_objects().count(), 1);
        let (images, _) = i.images();
        assert_eq!(
            images.values().next().unwrap(),
            &vec![
                "release r, c/templates/j.yaml, hook pre-delete".to_string(),
                "release r, c/templates/m.yaml".to_string()
            ]
        );
    }

    #[test]
    fn claims_and_namespaces() {
        let i = install("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data, namespace: other}\nspec:\n  storageClassName: local-storage\n  resources: {requests: {storage: 90Gi}}\n---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: mysql}\nspec:\n  volumeClaimTemplates:\n  - metadata: {name: data}\n    spec: {resources: {requests: {storage: 50Gi}}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: cert-manager}\n");
        let claims = i.claims();
        assert_eq!(claims.len(), 2);
        assert_eq!(claims[0].storage_class.as_deref(), Some("local-storage"));
        assert_eq!(claims[1].what, "StatefulSet mysql, claim data");
        assert_eq!(claims[1].size.as_deref(), Some("50Gi"));
        assert_eq!(
            i.namespaces().into_iter().collect::<Vec<_>>(),
            vec!["cert-manager", "ns", "other"]
        );
    }
}
