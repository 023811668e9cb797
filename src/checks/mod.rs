//! The one list of checks, in run order. Adding a check = one file + one line here.

pub mod cluster;
pub mod network;
pub mod node;
pub mod tools;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::check::{Check, CheckDef};

/// Generates, from one list: the registry in run order, the typed `checks:` section of a
/// profile (one optional field per check, unknown ids rejected with their line), and
/// default construction for `--only` naming a check the profile lacks.
macro_rules! registry {
    ($($id:literal => $phase:ident::$module:ident::$ty:ident),* $(,)?) => {
        static REGISTRY: &[&CheckDef] = &[$(&$phase::$module::DEF),*];

        #[cfg(test)]
        const IDS: &[&str] = &[$($id),*];

        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct ChecksSection {
            $(
                #[serde(rename = $id, default, deserialize_with = "present")]
                $module: Option<$phase::$module::$ty>,
            )*
        }

        impl ChecksSection {
            pub fn into_checks(self) -> Vec<(&'static CheckDef, Box<dyn Check>)> {
                let mut out: Vec<(&'static CheckDef, Box<dyn Check>)> = Vec::new();
                $(
                    if let Some(c) = self.$module {
                        out.push((&$phase::$module::DEF, Box::new(c)));
                    }
                )*
                out
            }
        }

        /// The check with its default parameters; `None` for an unknown id.
        pub fn build_default(id: &str) -> Option<Result<Box<dyn Check>, String>> {
            match id {
                $($id => Some(defaults::<$phase::$module::$ty>().map(|c| Box::new(c) as Box<dyn Check>)),)*
                _ => None,
            }
        }
    };
}

registry! {
    "tools.helmfile-on-path" => tools::helmfile_on_path::HelmfileOnPath,
    "tools.helm-version" => tools::helm_version::HelmVersion,
    "tools.helm-plugins" => tools::helm_plugins::HelmPlugins,
    "tools.install-render" => tools::install_render::InstallRender,
    "tools.helmfile-hooks" => tools::helmfile_hooks::HelmfileHooks,
    "node.conntrack" => node::conntrack::Conntrack,
    "node.localpv-disk" => node::localpv_disk::LocalPvDisk,
    "node.hosts" => node::hosts::Hosts,
    "node.container-runtime-registries" => node::container_runtime_registries::ContainerRuntimeRegistries,
    "node.kernel-settings" => node::kernel_settings::KernelSettings,
    "node.host-ports" => node::host_ports::HostPorts,
    "network.registry" => network::registry::Registry,
    "network.images" => network::images::Images,
    "network.chart-repos" => network::chart_repos::ChartRepos,
    "network.runtime-mirrors" => network::runtime_mirrors::RuntimeMirrors,
    "cluster.api" => cluster::api::ClusterApi,
    "cluster.kube-version" => cluster::kube_version::KubeVersion,
    "cluster.release-namespace" => cluster::release_namespace::ReleaseNamespace,
    "cluster.release-state" => cluster::release_state::ReleaseState,
    "cluster.api-versions" => cluster::api_versions::ApiVersions,
    "cluster.install-rbac" => cluster::install_rbac::InstallRbac,
    "cluster.openapi-validation" => cluster::openapi_validation::OpenapiValidation,
    "cluster.dry-run" => cluster::dry_run::DryRun,
    "cluster.leftover-cert-manager" => cluster::leftover_cert_manager::LeftoverCertManager,
    "cluster.leftover-scopedefinition" => cluster::leftover_scopedefinition::LeftoverScopeDefinition,
    "cluster.helm-ownership" => cluster::helm_ownership::HelmOwnership,
    "cluster.terminating-namespaces" => cluster::terminating_namespaces::TerminatingNamespaces,
    "cluster.webhooks" => cluster::webhooks::Webhooks,
    "cluster.csr-controllers" => cluster::csr_controllers::CsrControllers,
    "cluster.storageclass" => cluster::storageclass::StorageClassCheck,
    "cluster.schedulable" => cluster::schedulable::Schedulable,
    "cluster.metrics-api" => cluster::metrics_api::MetricsApi,
    "cluster.node-clocks" => cluster::node_clocks::NodeClocks,
    "cluster.kubelet-reachable" => cluster::kubelet_reachable::KubeletReachable,
}

/// A check listed with an empty value (`node.conntrack:`) runs with its defaults.
fn present<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    match Option::<T>::deserialize(d)? {
        Some(t) => Ok(Some(t)),
        None => defaults::<T>().map(Some).map_err(serde::de::Error::custom),
    }
}

fn defaults<T: DeserializeOwned>() -> Result<T, String> {
    serde_yaml_ng::from_str("{}").map_err(|e| e.to_string())
}

pub fn registry() -> &'static [&'static CheckDef] {
    REGISTRY
}

/// Where a check runs: its place in the registry (which the unit test keeps in phase order).
pub fn run_order(id: &str) -> usize {
    REGISTRY
        .iter()
        .position(|d| d.meta.id == id)
        .unwrap_or(usize::MAX)
}

pub fn find(id: &str) -> Option<&'static CheckDef> {
    REGISTRY.iter().copied().find(|d| d.meta.id == id)
}

/// The checks that declare a finding code, each with the code's line.
pub fn with_code(code: &str) -> Vec<(&'static CheckDef, &'static crate::check::Code)> {
    REGISTRY
        .iter()
        .flat_map(|d| d.meta.codes.iter().map(move |c| (*d, c)))
        .filter(|(_, c)| c.code == code)
        .collect()
}

/// README's table of finding codes, generated from every check's `Meta` (`scripts/man.sh`
/// writes it; a test fails when README's copy is stale).
pub fn codes_markdown() -> String {
    let mut out = String::from("| check | code | means |\n|---|---|---|\n");
    for d in REGISTRY {
        for c in d.meta.codes {
            out.push_str(&format!("| `{}` | `{}` | {} |\n", d.meta.id, c.code, c.explain));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Phase;

    #[test]
    fn finding_codes_are_kebab_case_unique_per_check_and_explained() {
        for d in REGISTRY {
            let mut seen = std::collections::BTreeSet::new();
            for c in d.meta.codes {
                assert!(
                    !c.code.is_empty()
                        && c.code.split('-').all(|w| !w.is_empty()
                            && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())),
                    "{}: {:?} is not kebab-case",
                    d.meta.id,
                    c.code
                );
                assert!(seen.insert(c.code), "{}: {} twice", d.meta.id, c.code);
                assert!(
                    !c.explain.trim().is_empty(),
                    "{}: {} unexplained",
                    d.meta.id,
                    c.code
                );
                assert!(
                    !c.explain.contains('|') && !c.explain.contains('\n'),
                    "{}: {}",
                    d.meta.id,
                    c.code
                );
            }
        }
    }

    #[test]
    fn readme_lists_every_finding_code() {
        let readme = include_str!("../../README.md");
        let begin = "<!-- codes:begin (generated by scripts/man.sh) -->\n";
        let end = "<!-- codes:end -->";
        let at = readme.find(begin).expect("README has the codes table markers");
        let rest = &readme[at + begin.len()..];
        let table = &rest[..rest.find(end).expect("README has the codes end marker")];
        assert!(
            table == codes_markdown(),
            "README's table of finding codes is stale: run scripts/man.sh"
        );
    }

    #[test]
    fn registry_is_in_phase_order_with_unique_ids_and_backward_requires() {
        let mut seen: Vec<&str> = Vec::new();
        let mut last_phase = Phase::Tools;
        for def in registry() {
            let m = &def.meta;
            assert!(m.phase >= last_phase, "{} is out of phase order", m.id);
            last_phase = m.phase;
            assert!(
                m.id.starts_with(&format!("{}.", m.phase.name())),
                "{} not prefixed by its phase",
                m.id
            );
            assert!(!seen.contains(&m.id), "duplicate id {}", m.id);
            for r in m.requires {
                assert!(
                    seen.contains(r),
                    "{} requires {r}, which is not an earlier check",
                    m.id
                );
            }
            assert!(
                m.explain.contains("Why:") && m.explain.contains("Fix"),
                "{} explain lacks Why/Fix",
                m.id
            );
            seen.push(m.id);
        }
    }

    #[test]
    fn every_check_builds_with_default_parameters_and_ids_match() {
        assert_eq!(IDS.len(), registry().len());
        for (id, def) in IDS.iter().zip(registry()) {
            assert_eq!(*id, def.meta.id);
            match build_default(id) {
                Some(Ok(_)) => {}
                other => panic!("{id}: {:?}", other.map(|r| r.err())),
            }
        }
    }
}
