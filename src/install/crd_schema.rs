//! A custom resource checked against the `openAPIV3Schema` of the CRD the install brings,
//! as the API server will check it once that CRD exists — so the verdict is known before
//! the CRD is even created. The server's rules that decide the outcome are kept:
//!
//! - pruning and defaulting (apiextensions.k8s.io/v1, or v1beta1 with
//!   `preserveUnknownFields: false`): a `null` in a field that is not `nullable` is
//!   dropped, or replaced by the field's `default`; a missing field with a `default` gets
//!   it. Measured on v1.20.2: such a CR is accepted.
//! - no pruning (v1beta1's default, vela-core 0.1.0's CRDs): the `null` stays and the
//!   server answers `spec.workloadRefPath: Invalid value: "null": spec.workloadRefPath in
//!   body must be of type string: "null"`.
//!
//! The structural schema becomes a JSON Schema (draft 4, which shares OpenAPI 3.0's
//! boolean `exclusiveMinimum`) for the `boon` crate; error texts follow the server's
//! (`Required value`, `Unsupported value`, `must be of type`).

use serde_json::{Map, Value};

use super::manifest::Object;

/// The server's answer for one custom resource.
pub enum Verdict {
    Valid,
    /// `Kind.group "name" is invalid: …`, the server's sentence.
    Invalid(String),
}

/// The schema of `version` in this CRD, and whether the server prunes and defaults.
fn schema_of<'a>(crd: &'a Value, version: &str) -> (Option<&'a Value>, bool) {
    let per_version = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|v| v.get("name").and_then(Value::as_str) == Some(version))
        .and_then(|v| v.pointer("/schema/openAPIV3Schema"));
    let schema = per_version.or_else(|| crd.pointer("/spec/validation/openAPIV3Schema"));
    let prune = crd.get("apiVersion").and_then(Value::as_str) == Some("apiextensions.k8s.io/v1")
        || crd
            .pointer("/spec/preserveUnknownFields")
            .and_then(Value::as_bool)
            == Some(false);
    (schema, prune)
}

/// Check `cr` against `crd` as the API server would. Err: the schema could not be used.
pub fn validate(crd: &Object, cr: &Object) -> Result<Verdict, String> {
    let version = cr.api_version.rsplit('/').next().unwrap_or_default();
    let (schema, prune) = schema_of(&crd.value, version);
    let Some(schema) = schema else {
        // No schema: the server takes any content.
        return Ok(Verdict::Valid);
    };
    let mut body = cr.value.clone();
    if let Some(m) = body.as_object_mut() {
        // The server validates these itself, not through the CRD's schema.
        for k in ["apiVersion", "kind", "metadata"] {
            m.remove(k);
        }
    }
    if prune {
        prune_and_default(&mut body, schema);
    }
    let mut json_schema = to_json_schema(schema);
    if let Some(m) = json_schema.as_object_mut() {
        if let Some(p) = m.get_mut("properties").and_then(Value::as_object_mut) {
            for k in ["apiVersion", "kind", "metadata"] {
                p.remove(k);
            }
        }
        if let Some(r) = m.get_mut("required").and_then(Value::as_array_mut) {
            r.retain(|k| !matches!(k.as_str(), Some("apiVersion" | "kind" | "metadata")));
        }
    }
    let mut compiler = boon::Compiler::new();
    compiler.set_default_draft(boon::Draft::V4);
    let mut schemas = boon::Schemas::new();
    let unreadable = |e: &dyn std::fmt::Display| {
        format!("its CRD's openAPIV3Schema is not a schema this check can read: {e}")
    };
    compiler
        .add_resource(SCHEMA_URL, json_schema)
        .map_err(|e| unreadable(&e))?;
    let index = compiler
        .compile(SCHEMA_URL, &mut schemas)
        .map_err(|e| unreadable(&e))?;
    let mut errors: Vec<String> = Vec::new();
    if let Err(e) = schemas.validate(&body, index) {
        describe(&e, &body, &mut errors);
    }
    errors.dedup();
    if errors.is_empty() {
        return Ok(Verdict::Valid);
    }
    let group = crd
        .value
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let list = if errors.len() == 1 {
        errors.remove(0)
    } else {
        format!("[{}]", errors.join(", "))
    };
    Ok(Verdict::Invalid(format!(
        "{}.{group} \"{}\" is invalid: {list}",
        cr.kind, cr.name
    )))
}

/// Where the schema is registered for the validator (never fetched: it holds no `$ref`
/// outside itself).
const SCHEMA_URL: &str = "urn:preflight:crd-schema";

fn nullable(schema: &Value) -> bool {
    schema.get("nullable").and_then(Value::as_bool) == Some(true)
}

/// The server's pruning of non-nullable nulls and its defaulting (structural schemas only).
fn prune_and_default(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, sub) in props {
                    match map.get(k) {
                        Some(Value::Null) if !nullable(sub) => match sub.get("default") {
                            Some(d) => {
                                map.insert(k.clone(), d.clone());
                            }
                            None => {
                                map.remove(k);
                            }
                        },
                        None => {
                            if let Some(d) = sub.get("default") {
                                map.insert(k.clone(), d.clone());
                            }
                        }
                        _ => {}
                    }
                    if let Some(v) = map.get_mut(k) {
                        prune_and_default(v, sub);
                    }
                }
            } else if let Some(sub) = schema.get("additionalProperties").filter(|s| s.is_object()) {
                for v in map.values_mut() {
                    prune_and_default(v, sub);
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items").filter(|s| s.is_object()) {
                for v in items {
                    prune_and_default(v, sub);
                }
            }
        }
        _ => {}
    }
}

/// OpenAPI v3 structural schema → JSON Schema draft 4.
fn to_json_schema(schema: &Value) -> Value {
    let Some(src) = schema.as_object() else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (k, v) in src {
        let converted = match k.as_str() {
            "properties" | "patternProperties" | "definitions" => match v.as_object() {
                Some(m) => Value::Object(m.iter().map(|(n, s)| (n.clone(), to_json_schema(s))).collect()),
                None => v.clone(),
            },
            "items" | "additionalProperties" | "not" | "additionalItems" => to_json_schema(v),
            "allOf" | "anyOf" | "oneOf" => match v.as_array() {
                Some(a) => Value::Array(a.iter().map(to_json_schema).collect()),
                None => v.clone(),
            },
            // Annotations and Kubernetes extensions; formats are not enforced here.
            "nullable" | "default" | "description" | "example" | "externalDocs" | "format" | "title" => {
                continue
            }
            _ if k.starts_with("x-kubernetes-") => continue,
            _ => v.clone(),
        };
        out.insert(k.clone(), converted);
    }
    if nullable(schema) {
        if let Some(t) = out.get("type").and_then(Value::as_str).map(str::to_string) {
            out.insert("type".into(), Value::Array(vec![t.into(), "null".into()]));
        }
        if let Some(e) = out.get_mut("enum").and_then(Value::as_array_mut) {
            e.push(Value::Null);
        }
    }
    if schema.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true) {
        out.remove("type");
        let either = serde_json::json!([{"type": "integer"}, {"type": "string"}]);
        match out.remove("anyOf") {
            Some(existing) => {
                out.insert(
                    "allOf".into(),
                    serde_json::json!([{"anyOf": existing}, {"anyOf": either}]),
                );
            }
            None => {
                out.insert("anyOf".into(), either);
            }
        }
    }
    Value::Object(out)
}

/// `spec.items[0].name`, the server's way of naming a field.
fn field_path(location: &boon::InstanceLocation<'_>) -> String {
    let mut path = String::new();
    for token in &location.tokens {
        match token {
            boon::InstanceToken::Prop(p) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(p);
            }
            boon::InstanceToken::Item(i) => path.push_str(&format!("[{i}]")),
        }
    }
    path
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean"`
fn wrong_type(path: &str, want: &[String], value: &Value) -> String {
    let want: Vec<&str> = want.iter().map(String::as_str).filter(|t| *t != "null").collect();
    let got = type_name(value);
    format!(
        "{path}: Invalid value: \"{got}\": {path} in body must be of type {}: \"{got}\"",
        want.join(",")
    )
}

/// The types a failed subschema wanted, when a wrong type is all it found.
fn type_wants(e: &boon::ValidationError<'_, '_>) -> Vec<String> {
    match &e.kind {
        boon::ErrorKind::Type { want, .. } => want.iter().map(|t| t.to_string()).collect(),
        boon::ErrorKind::Group | boon::ErrorKind::Schema { .. } if e.causes.len() == 1 => {
            type_wants(&e.causes[0])
        }
        _ => Vec::new(),
    }
}

/// Each failed keyword in the server's words. The validator answers with a tree: its
/// inner nodes (the schema, a group of keywords) only hold the failures; `anyOf`, `oneOf`,
/// `allOf` and `not` are one failure each, as the server counts them.
fn describe(e: &boon::ValidationError<'_, '_>, body: &Value, out: &mut Vec<String>) {
    use boon::ErrorKind as K;
    let path = field_path(&e.instance_location);
    // boon writes the location as a JSON pointer (RFC 6901 escapes included).
    let value = body
        .pointer(&e.instance_location.to_string())
        .cloned()
        .unwrap_or(Value::Null);
    let shown = serde_json::to_string(&value).unwrap_or_default();
    match &e.kind {
        K::Group | K::Schema { .. } | K::Reference { .. } => {
            for c in &e.causes {
                describe(c, body, out);
            }
        }
        K::Required { want } => {
            for p in want {
                out.push(if path.is_empty() {
                    format!("{p}: Required value")
                } else {
                    format!("{path}.{p}: Required value")
                });
            }
        }
        K::Type { want, .. } => {
            let want: Vec<String> = want.iter().map(|t| t.to_string()).collect();
            out.push(wrong_type(&path, &want, &value));
        }
        // x-kubernetes-int-or-string (anyOf integer, string): the server names both types.
        K::AnyOf if e.causes.iter().all(|c| !type_wants(c).is_empty()) => {
            let want: Vec<String> = e.causes.iter().flat_map(type_wants).collect();
            out.push(wrong_type(&path, &want, &value));
        }
        K::Enum { want } => {
            let supported: Vec<String> = want
                .iter()
                .map(|o| serde_json::to_string(o).unwrap_or_default())
                .collect();
            out.push(format!(
                "{path}: Unsupported value: {shown}: supported values: {}",
                supported.join(", ")
            ));
        }
        K::Minimum { want, .. } => out.push(format!(
            "{path}: Invalid value: {shown}: {path} in body should be greater than or equal to {want}"
        )),
        K::Maximum { want, .. } => out.push(format!(
            "{path}: Invalid value: {shown}: {path} in body should be less than or equal to {want}"
        )),
        K::MinLength { want, .. } => out.push(format!(
            "{path}: Invalid value: {shown}: {path} in body should be at least {want} chars long"
        )),
        K::MaxLength { want, .. } => out.push(format!(
            "{path}: Invalid value: {shown}: {path} in body should be at most {want} chars long"
        )),
        K::Pattern { want, .. } => out.push(format!(
            "{path}: Invalid value: {shown}: {path} in body should match '{want}'"
        )),
        other => out.push(format!("{path}: Invalid value: {shown}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::manifest::Origin;
    use serde_json::json;

    fn obj(value: Value) -> Object {
        Object {
            release: 0,
            api_version: value["apiVersion"].as_str().unwrap().to_string(),
            kind: value["kind"].as_str().unwrap().to_string(),
            name: value["metadata"]["name"].as_str().unwrap_or_default().to_string(),
            namespace: None,
            source: String::new(),
            origin: Origin::Template,
            value,
        }
    }

    fn crd(api: &str, extra: Value) -> Object {
        let schema = json!({
            "type": "object",
            "properties": {"spec": {
                "type": "object",
                "required": ["definitionRef"],
                "properties": {
                    "workloadRefPath": {"type": "string"},
                    "overlap": {"type": "boolean", "default": false},
                    "replicas": {"type": "integer", "minimum": 1},
                    "port": {"x-kubernetes-int-or-string": true},
                    "mode": {"type": "string", "enum": ["Shared", "Exclusive"]},
                    "tag": {"type": "string", "minLength": 3},
                    "definitionRef": {"type": "object", "required": ["name"],
                        "properties": {"name": {"type": "string"}, "version": {"type": "string", "nullable": true}}},
                    "items": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "string"}}}}
                }
            }}
        });
        let mut v = json!({
            "apiVersion": api,
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "scopes.core.oam.dev"},
            "spec": {"group": "core.oam.dev", "names": {"kind": "Scope", "plural": "scopes"}, "scope": "Cluster",
                     "versions": [{"name": "v1alpha2", "served": true, "storage": true, "schema": {"openAPIV3Schema": schema}}]}
        });
        if let (Some(s), Some(e)) = (v["spec"].as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        obj(v)
    }

    fn cr(spec: Value) -> Object {
        obj(
            json!({"apiVersion": "core.oam.dev/v1alpha2", "kind": "Scope", "metadata": {"name": "s"}, "spec": spec}),
        )
    }

    fn verdict(crd: &Object, cr: &Object) -> Option<String> {
        match validate(crd, cr).unwrap() {
            Verdict::Valid => None,
            Verdict::Invalid(m) => Some(m),
        }
    }

    #[test]
    fn null_is_invalid_without_pruning_and_pruned_with_it() {
        let v1beta1 = crd("apiextensions.k8s.io/v1beta1", json!({}));
        let spec = json!({"workloadRefPath": null, "definitionRef": {"name": "x", "version": null}});
        assert_eq!(
            verdict(&v1beta1, &cr(spec.clone())).as_deref(),
            Some("Scope.core.oam.dev \"s\" is invalid: spec.workloadRefPath: Invalid value: \"null\": spec.workloadRefPath in body must be of type string: \"null\"")
        );
        let v1 = crd("apiextensions.k8s.io/v1", json!({}));
        assert_eq!(verdict(&v1, &cr(spec.clone())), None);
        let pruned = crd(
            "apiextensions.k8s.io/v1beta1",
            json!({"preserveUnknownFields": false}),
        );
        assert_eq!(verdict(&pruned, &cr(spec)), None);
    }

    #[test]
    fn the_servers_words_for_each_kind_of_error() {
        let v1 = crd("apiextensions.k8s.io/v1", json!({}));
        let got = verdict(
            &v1,
            &cr(json!({"mode": "Weird", "replicas": 0, "port": true, "tag": "x", "items": [{"n": 3}], "definitionRef": {}})),
        )
        .unwrap();
        for want in [
            "Scope.core.oam.dev \"s\" is invalid: [",
            "spec.mode: Unsupported value: \"Weird\": supported values: \"Shared\", \"Exclusive\"",
            "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
            "spec.items[0].n: Invalid value: \"integer\": spec.items[0].n in body must be of type string: \"integer\"",
            "spec.definitionRef.name: Required value",
            "spec.tag: Invalid value: \"x\": spec.tag in body should be at least 3 chars long",
            // The real v1.20 server's words (kubectl create --dry-run=server).
            "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\"",
        ] {
            assert!(got.contains(want), "{want}\nnot in\n{got}");
        }
        assert_eq!(
            verdict(&v1, &cr(json!({"port": "http", "definitionRef": {"name": "a"}}))),
            None
        );
        assert_eq!(
            verdict(&v1, &cr(json!({"port": 80, "definitionRef": {"name": "a"}}))),
            None
        );
        let missing = verdict(&v1, &cr(json!({}))).unwrap();
        assert!(
            missing.ends_with("is invalid: spec.definitionRef: Required value"),
            "{missing}"
        );
    }

    #[test]
    fn no_schema_takes_anything() {
        let mut c = crd("apiextensions.k8s.io/v1beta1", json!({}));
        c.value["spec"]["versions"][0]
            .as_object_mut()
            .unwrap()
            .remove("schema");
        assert_eq!(verdict(&c, &cr(json!({"anything": [1, null]}))), None);
    }
}
