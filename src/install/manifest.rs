//! Rendered YAML (helm template / helmfile template output) → objects with provenance:
//! the template they came from (helm's `# Source:` line) and whether they are CRDs
//! (`crds/`), hooks (and which events) or plain templates.

use serde_json::Value;

/// Where an object comes from in its chart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// `crds/`: installed first, never upgraded or owned by the release.
    Crd,
    /// `helm.sh/hook` annotation: created around the install, with these events.
    Hook(Vec<String>),
    Template,
}

/// One rendered object.
#[derive(Clone, Debug)]
pub struct Object {
    /// Index into `Install::releases`.
    pub release: usize,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    /// As written; namespaced objects without one go to the release's namespace.
    pub namespace: Option<String>,
    /// `kruise/templates/webhookconfiguration.yaml` (helm's `# Source:`), or "".
    pub source: String,
    pub origin: Origin,
    pub value: Value,
}

/// The hook events `helm install` (and `helm upgrade`, when the release exists) run; the
/// others (`pre-delete`, `post-delete`, `pre-rollback`, `post-rollback`, `test`) are not
/// part of an install.
pub const INSTALL_EVENTS: &[&str] = &["pre-install", "post-install", "pre-upgrade", "post-upgrade"];

impl Object {
    /// Whether `helm install` / `helm upgrade` creates it: every template and CRD, and the
    /// hooks of install and upgrade events.
    pub fn created_by_install(&self) -> bool {
        match &self.origin {
            Origin::Hook(events) => events.iter().any(|e| INSTALL_EVENTS.contains(&e.as_str())),
            Origin::Crd | Origin::Template => true,
        }
    }

    /// `hook pre-delete` for a hook that the install does not run, for messages.
    pub fn hook_phase(&self) -> Option<String> {
        match &self.origin {
            Origin::Hook(events) if !self.created_by_install() => Some(format!("hook {}", events.join(","))),
            _ => None,
        }
    }

    /// Its group/version/kind, to resolve through discovery (`v1` is the core group).
    pub fn gvk(&self) -> kube::core::GroupVersionKind {
        let (group, version) = self
            .api_version
            .split_once('/')
            .unwrap_or(("", self.api_version.as_str()));
        kube::core::GroupVersionKind::gvk(group, version, &self.kind)
    }
}

/// Parse one render's text; every object is attributed to `release`.
pub fn parse(text: &str, release: usize) -> Result<Vec<Object>, String> {
    let mut out = Vec::new();
    for doc in split_documents(text) {
        let source = doc
            .lines()
            .find_map(|l| l.trim().strip_prefix("# Source:"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        // As helm decodes it (YAML 1.1: `0755` is 493), not as YAML 1.2 would.
        let value: Value =
            match super::yaml11::to_json(doc).map_err(|e| format!("rendered YAML ({source}): {e}"))? {
                Some(v) => v,
                None => continue,
            };
        collect(value, release, &source, &mut out);
    }
    Ok(out)
}

/// Documents split on `---` lines, as helm writes them.
fn split_documents(text: &str) -> Vec<&str> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_end();
        if t == "---" || t.starts_with("--- ") {
            docs.push(&text[start..offset]);
            start = offset + line.len();
        }
        offset += line.len();
    }
    docs.push(&text[start..]);
    docs.into_iter().filter(|d| !d.trim().is_empty()).collect()
}

fn collect(v: Value, release: usize, source: &str, out: &mut Vec<Object>) {
    let s = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(String::from);
    let Some(kind) = s(&v, "kind") else { return };
    if kind.ends_with("List") {
        if let Some(Value::Array(items)) = v.get("items") {
            for i in items.clone() {
                collect(i, release, source, out);
            }
        }
        return;
    }
    let meta = v.get("metadata").cloned().unwrap_or(Value::Null);
    let Some(name) = s(&meta, "name") else { return };
    let hook = meta
        .get("annotations")
        .and_then(|a| a.get("helm.sh/hook"))
        .and_then(Value::as_str)
        .map(|h| h.split(',').map(|e| e.trim().to_string()).collect::<Vec<_>>());
    let origin = if source.contains("/crds/") {
        Origin::Crd
    } else if let Some(events) = hook {
        Origin::Hook(events)
    } else {
        Origin::Template
    };
    out.push(Object {
        release,
        api_version: s(&v, "apiVersion").unwrap_or_default(),
        kind,
        name,
        namespace: s(&meta, "namespace"),
        source: source.to_string(),
        origin,
        value: v,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_with_their_source_and_origin() {
        let text = "---\n# Source: vela/crds/scope.yaml\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: scopedefinitions.core.oam.dev\n---\n# Source: vela/templates/ns.yaml\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: cert-manager\n---\n# empty\n---\n# Source: vela/templates/job.yaml\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: pre\n  namespace: x\n  annotations: {\"helm.sh/hook\": \"pre-install,pre-upgrade\"}\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a, namespace: b}\n";
        let objs = parse(text, 3).unwrap();
        assert_eq!(objs.len(), 4);
        assert_eq!(objs[0].origin, Origin::Crd);
        assert_eq!(objs[1].source, "vela/templates/ns.yaml");
        assert_eq!(objs[1].origin, Origin::Template);
        assert_eq!(
            objs[2].origin,
            Origin::Hook(vec!["pre-install".into(), "pre-upgrade".into()])
        );
        assert_eq!(objs[2].gvk().group, "batch");
        assert_eq!(objs[1].gvk().group, "");
        assert_eq!(objs[3].namespace.as_deref(), Some("b"));
        assert_eq!(objs[3].release, 3);
    }
}
