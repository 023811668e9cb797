//! helm's client-side validation, as helm runs it before it creates anything (unless
//! `--disable-openapi-validation`): every object against the API server's OpenAPI v2
//! document (`/openapi/v2`, the custom resources' published schemas included), with the
//! rules and words of kubectl's validator (k8s.io/kubectl/pkg/validation over
//! kube-openapi's proto model): unknown fields, wrong types, missing required fields.
//!
//! The model follows kube-openapi's parse: `$ref` is a reference; no type with properties is
//! a kind (object with fields); `object` without properties is a map (of its
//! additionalProperties, else anything); `array`; a primitive; no type and no properties is
//! anything. The value is the object as JSON, where every number is a "number".

use std::collections::HashMap;

use serde_json::{Map, Value};

/// The server's definitions, found by group/version/kind.
pub struct Schemas {
    definitions: Map<String, Value>,
    by_gvk: HashMap<(String, String, String), String>,
}

impl Schemas {
    /// From the `/openapi/v2` document.
    pub fn new(mut doc: Value) -> Result<Schemas, String> {
        let definitions = match doc.get_mut("definitions").map(Value::take) {
            Some(Value::Object(m)) => m,
            _ => return Err("the OpenAPI v2 document has no definitions".to_string()),
        };
        let mut by_gvk = HashMap::new();
        for (name, def) in &definitions {
            for gvk in def
                .get("x-kubernetes-group-version-kind")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let s = |k: &str| gvk.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
                by_gvk
                    .entry((s("group"), s("version"), s("kind")))
                    .or_insert_with(|| name.clone());
            }
        }
        Ok(Schemas { definitions, by_gvk })
    }

    /// Whether the server publishes a schema for this kind (otherwise kubectl skips it).
    pub fn has(&self, api_version: &str, kind: &str) -> bool {
        self.definition(api_version, kind).is_some()
    }

    fn definition(&self, api_version: &str, kind: &str) -> Option<&str> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        self.by_gvk
            .get(&(group.to_string(), version.to_string(), kind.to_string()))
            .map(String::as_str)
    }

    /// kubectl's verdict on one object: its errors (empty when valid, or when the server
    /// publishes no schema for the kind), deduplicated as Go's error aggregate prints them.
    pub fn validate(&self, object: &Value) -> Vec<String> {
        let s = |k: &str| object.get(k).and_then(Value::as_str).unwrap_or_default();
        let (api_version, kind) = (s("apiVersion"), s("kind"));
        let Some(name) = self.definition(api_version, kind) else {
            return Vec::new();
        };
        let mut errors = Vec::new();
        if let Some(schema) = self.definitions.get(name) {
            self.visit(object, schema, name, kind, &mut errors);
        }
        let mut seen = Vec::new();
        for e in errors {
            if !seen.contains(&e) {
                seen.push(e);
            }
        }
        seen
    }

    fn visit(&self, value: &Value, schema: &Value, schema_path: &str, path: &str, errors: &mut Vec<String>) {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            let name = r.trim_start_matches("#/definitions/");
            if let Some(def) = self.definitions.get(name) {
                self.visit(value, def, name, path, errors);
            }
            return;
        }
        let types: Vec<&str> = match schema.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let properties = schema.get("properties").and_then(Value::as_object);
        let shape = match (types.as_slice(), properties) {
            ([], Some(p)) | (["object"], Some(p)) => Shape::Kind(p),
            ([], None) => return, // arbitrary
            (["object"], None) => Shape::Map(schema.get("additionalProperties").filter(|a| a.is_object())),
            (["array"], _) => Shape::Array(schema.pointer("/items").filter(|i| i.is_object())),
            ([t], _) => Shape::Primitive(t),
            _ => return, // several types: kube-openapi rejects the definition; not judged
        };
        let invalid = |expected: &str, actual: &str| {
            format!("ValidationError({path}): invalid type for {schema_path}: got \"{actual}\", expected \"{expected}\"")
        };
        match (shape, value) {
            (Shape::Kind(fields), Value::Object(map)) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                for key in keys {
                    let v = &map[key];
                    if v.is_null() {
                        continue;
                    }
                    match fields.get(key) {
                        None => errors.push(format!(
                            "ValidationError({path}): unknown field \"{key}\" in {schema_path}"
                        )),
                        Some(field) => self.visit(
                            v,
                            field,
                            &format!("{schema_path}.{key}"),
                            &format!("{path}.{key}"),
                            errors,
                        ),
                    }
                }
                for required in schema
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if map.get(required).is_none_or(Value::is_null) {
                        errors.push(format!(
                            "ValidationError({path}): missing required field \"{required}\" in {schema_path}"
                        ));
                    }
                }
            }
            (Shape::Map(sub), Value::Object(map)) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                for key in keys {
                    let v = &map[key];
                    let item = format!("{path}.{key}");
                    if v.is_null() {
                        // Not wrapped as a ValidationError by kubectl.
                        errors.push(format!("unknown object type \"nil\" in {item}"));
                        continue;
                    }
                    if let Some(sub) = sub {
                        self.visit(v, sub, schema_path, &item, errors);
                    }
                }
            }
            (Shape::Array(sub), Value::Array(items)) => {
                for (i, v) in items.iter().enumerate() {
                    let item = format!("{path}[{i}]");
                    if v.is_null() {
                        errors.push(format!(
                            "ValidationError({item}): unknown object type \"nil\" in {item}"
                        ));
                        continue;
                    }
                    if let Some(sub) = sub {
                        self.visit(v, sub, schema_path, &item, errors);
                    }
                }
            }
            (Shape::Primitive(t), v) => {
                let actual = kind_of(v);
                let ok = match t {
                    // Any primitive passes for a string; an integer takes any number.
                    "string" => !matches!(v, Value::Object(_) | Value::Array(_)),
                    "integer" | "number" => actual == "number",
                    "boolean" => actual == "boolean",
                    _ => false,
                };
                if !ok {
                    errors.push(invalid(t, actual));
                }
            }
            (Shape::Kind(_) | Shape::Map(_), v) => errors.push(invalid("map", kind_of(v))),
            (Shape::Array(_), v) => errors.push(invalid("array", kind_of(v))),
        }
    }
}

enum Shape<'a> {
    Kind(&'a Map<String, Value>),
    Map(Option<&'a Value>),
    Array(Option<&'a Value>),
    Primitive(&'a str),
}

/// The kind kubectl's validator names for a JSON value (every number is a "number").
fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "map",
        Value::Null => "nil",
    }
}

/// kubectl's aggregate of one object's errors, as helm prints it.
pub fn aggregate(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectls_words_in_kubectls_order() {
        let doc = serde_json::json!({"definitions": {
            "io.k8s.api.apps.v1.Deployment": {
                "x-kubernetes-group-version-kind": [{"group": "apps", "version": "v1", "kind": "Deployment"}],
                "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                               "spec": {"$ref": "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"}}},
            "io.k8s.api.apps.v1.DeploymentSpec": {"type": "object", "required": ["selector"],
                "properties": {"replicas": {"type": "integer"}, "paused": {"type": "boolean"},
                               "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                               "ports": {"type": "array", "items": {"$ref": "#/definitions/io.k8s.api.core.v1.ContainerPort"}},
                               "selector": {"type": "object"}}},
            "io.k8s.api.core.v1.ContainerPort": {"type": "object", "properties": {"containerPort": {"type": "integer"}}}
        }});
        let s = Schemas::new(doc).unwrap();
        let obj = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "spec": {"replicas": "two", "foo": "bar", "paused": 1, "labels": {"a": 1},
                     "ports": [{"containerPort": 80, "bogus": 1}, null]}});
        assert_eq!(
            s.validate(&obj),
            vec![
                "ValidationError(Deployment.spec): unknown field \"foo\" in io.k8s.api.apps.v1.DeploymentSpec",
                "ValidationError(Deployment.spec.paused): invalid type for io.k8s.api.apps.v1.DeploymentSpec.paused: got \"number\", expected \"boolean\"",
                "ValidationError(Deployment.spec.ports[0]): unknown field \"bogus\" in io.k8s.api.core.v1.ContainerPort",
                "ValidationError(Deployment.spec.ports[1]): unknown object type \"nil\" in Deployment.spec.ports[1]",
                "ValidationError(Deployment.spec.replicas): invalid type for io.k8s.api.apps.v1.DeploymentSpec.replicas: got \"string\", expected \"integer\"",
                "ValidationError(Deployment.spec): missing required field \"selector\" in io.k8s.api.apps.v1.DeploymentSpec",
            ]
        );
        // A kind the server publishes no schema for is not judged.
        assert!(s
            .validate(&serde_json::json!({"apiVersion": "x/v1", "kind": "Y", "z": 1}))
            .is_empty());
    }
}
