//! Rendered manifests decoded as helm (and kubectl) decode them before sending them to the
//! API server: `sigs.k8s.io/yaml` over go-yaml v2, i.e. YAML 1.1 for plain scalars —
//! `0755` is the octal 493, `yes`/`on`/`y` are true, `~` is null, `1_000` is 1000 — then
//! converted to JSON (non-string keys become strings; integral floats print as integers, as
//! Go's encoding/json writes them). Quoted and block scalars stay strings; `!!str` makes a
//! plain scalar a string; anchors, aliases and `<<` merges are followed.

use libyaml_safer::{EventData, Parser, ScalarStyle};
use serde_json::{Map, Number, Value};

/// The first YAML document of `text` as JSON; `None` when it holds no document (only
/// comments). Read by libyaml's own parser (go-yaml v2 is its port), so every layout helm
/// accepts is read: flow collections closed at their key's indentation, tabs after
/// indentation, document markers.
pub fn to_json(text: &str) -> Result<Option<Value>, String> {
    let mut builder = Builder::default();
    let mut input = text.as_bytes();
    let mut parser = Parser::new();
    parser.set_input_string(&mut input);
    loop {
        let event = parser
            .parse()
            .map_err(|e| format!("error converting YAML to JSON: {}", go_yaml_error(&e)))?;
        match event.data {
            EventData::StreamEnd | EventData::DocumentEnd { .. } => break,
            data => builder.on_event(data)?,
        }
    }
    Ok(builder.done)
}

/// go-yaml v2's words for a libyaml error: `yaml: line N: problem`, where a scanner error
/// names the problem's line and a parser error the line before it (go-yaml's own quirk).
fn go_yaml_error(e: &libyaml_safer::Error) -> String {
    let line = match e.problem_mark() {
        Some(m) if m.line != 0 => {
            if e.kind() == libyaml_safer::ErrorKind::Scanner {
                m.line + 1
            } else {
                m.line
            }
        }
        _ => e.context_mark().map_or(0, |m| m.line),
    };
    if line != 0 {
        format!("yaml: line {line}: {}", e.problem())
    } else {
        format!("yaml: {}", e.problem())
    }
}

/// A node being built.
enum Frame {
    Seq {
        anchor: Option<String>,
        items: Vec<Value>,
    },
    Map {
        anchor: Option<String>,
        entries: Map<String, Value>,
        /// The key read, waiting for its value; `Merge` for `<<`.
        key: Option<Key>,
    },
}

enum Key {
    Name(String),
    Merge,
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: std::collections::HashMap<String, Value>,
    done: Option<Value>,
}

impl Builder {
    fn on_event(&mut self, ev: EventData) -> Result<(), String> {
        let key_wanted = matches!(self.stack.last(), Some(Frame::Map { key: None, .. }));
        match ev {
            EventData::Scalar {
                anchor,
                tag,
                value: text,
                style,
                ..
            } => {
                if key_wanted {
                    self.key(&text, style, tag.as_deref())
                } else {
                    let v = scalar(&text, style, tag.as_deref())?;
                    if let Some(a) = anchor {
                        self.anchors.insert(a, v.clone());
                    }
                    self.value(v)
                }
            }
            EventData::Alias { anchor } => match self.anchors.get(&anchor).cloned() {
                Some(v) if key_wanted => match v {
                    Value::String(s) => self.set_key(Key::Name(s)),
                    other => Err(format!("unsupported map key: {other}")),
                },
                Some(v) => self.value(v),
                None => Err(format!("unknown anchor '{anchor}' referenced")),
            },
            EventData::SequenceStart { anchor, .. } if !key_wanted => {
                self.stack.push(Frame::Seq {
                    anchor,
                    items: Vec::new(),
                });
                Ok(())
            }
            EventData::MappingStart { anchor, .. } if !key_wanted => {
                self.stack.push(Frame::Map {
                    anchor,
                    entries: Map::new(),
                    key: None,
                });
                Ok(())
            }
            EventData::SequenceStart { .. } | EventData::MappingStart { .. } => {
                Err("a mapping or sequence as a map key is not supported".to_string())
            }
            EventData::SequenceEnd | EventData::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq { anchor, items }) => self.finish(anchor, Value::Array(items)),
                Some(Frame::Map { anchor, entries, .. }) => self.finish(anchor, Value::Object(entries)),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    fn finish(&mut self, anchor: Option<String>, v: Value) -> Result<(), String> {
        if let Some(a) = anchor {
            self.anchors.insert(a, v.clone());
        }
        self.value(v)
    }

    fn key(&mut self, text: &str, style: ScalarStyle, tag: Option<&str>) -> Result<(), String> {
        if style == ScalarStyle::Plain && tag.is_none() && text == "<<" {
            return self.set_key(Key::Merge);
        }
        let name = match scalar(text, style, tag)? {
            Value::String(s) => s,
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => match n.as_f64() {
                // go-yaml's float keys, written back as sigs.k8s.io/yaml does ('g', 32 bits).
                Some(f) if n.is_f64() => format_float32_g(f),
                _ => n.to_string(),
            },
            Value::Null => return Err(format!("unsupported map key of type: <nil>, key: {text:?}")),
            other => return Err(format!("unsupported map key: {other}")),
        };
        self.set_key(Key::Name(name))
    }

    fn set_key(&mut self, k: Key) -> Result<(), String> {
        if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
            *key = Some(k);
        }
        Ok(())
    }

    fn value(&mut self, v: Value) -> Result<(), String> {
        match self.stack.last_mut() {
            None => {
                if self.done.is_none() {
                    self.done = Some(v);
                }
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(v);
                Ok(())
            }
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                Some(Key::Name(k)) => {
                    // go-yaml v2 (not strict): the last of duplicate keys wins.
                    entries.insert(k, v);
                    Ok(())
                }
                // go-yaml v2 merges where `<<` stands: its keys overwrite earlier ones,
                // later ones overwrite its; of several maps, the first wins.
                Some(Key::Merge) => match v {
                    Value::Object(m) => {
                        entries.extend(m);
                        Ok(())
                    }
                    Value::Array(list) => {
                        for item in list.into_iter().rev() {
                            match item {
                                Value::Object(m) => entries.extend(m),
                                _ => {
                                    return Err(
                                        "map merge requires map or sequence of maps as the value".into()
                                    )
                                }
                            }
                        }
                        Ok(())
                    }
                    _ => Err("map merge requires map or sequence of maps as the value".into()),
                },
                None => Ok(()),
            },
        }
    }
}

/// The tag's short form: `!!str` for `tag:yaml.org,2002:str` (libyaml resolves handles).
fn short_tag(tag: &str) -> String {
    match tag.strip_prefix("tag:yaml.org,2002:") {
        Some(suffix) => format!("!!{suffix}"),
        None => tag.to_string(),
    }
}

/// One scalar, as go-yaml v2 resolves it into an `interface{}`.
fn scalar(text: &str, style: ScalarStyle, tag: Option<&str>) -> Result<Value, String> {
    let tag = tag.map(short_tag);
    match tag.as_deref() {
        // Quoted and block scalars without a tag are strings, whatever they look like.
        None if style != ScalarStyle::Plain => Ok(Value::String(text.to_string())),
        None => resolve(text),
        Some("!!str") | Some("!!binary") => Ok(Value::String(text.to_string())),
        Some("!!float") => match resolve(text)? {
            Value::Number(n) => Ok(json_float(n.as_f64().unwrap_or(0.0))?),
            other => Err(format!("cannot decode {} `{text}` as a !!float", kind(&other))),
        },
        Some(t @ ("!!int" | "!!bool" | "!!null")) => {
            let v = resolve(text)?;
            let ok = match t {
                "!!int" => v.as_i64().is_some() || v.as_u64().is_some(),
                "!!bool" => v.is_boolean(),
                _ => v.is_null(),
            };
            if ok {
                Ok(v)
            } else {
                Err(format!("cannot decode {} `{text}` as a {t}", kind(&v)))
            }
        }
        // Tags go-yaml does not resolve leave the text as it is.
        Some(_) => Ok(Value::String(text.to_string())),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "!!null",
        Value::Bool(_) => "!!bool",
        Value::Number(n) if n.is_f64() => "!!float",
        Value::Number(_) => "!!int",
        _ => "!!str",
    }
}

/// go-yaml v2's `resolve` for an untagged plain scalar.
fn resolve(text: &str) -> Result<Value, String> {
    match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Ok(Value::Bool(true))
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Ok(Value::Bool(false))
        }
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        ".nan" | ".NaN" | ".NAN" | ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf"
        | "-.Inf" | "-.INF" => return Err(format!("json: unsupported value: {text}")),
        _ => {}
    }
    let first = text.as_bytes()[0];
    match first {
        b'.' => Ok(text
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(json_float)
            .transpose()?
            .unwrap_or_else(|| Value::String(text.to_string()))),
        b'+' | b'-' | b'0'..=b'9' => {
            let plain: String = text.chars().filter(|c| *c != '_').collect();
            if let Some(i) = go_parse_int(&plain) {
                return Ok(Value::Number(i));
            }
            if yaml_style_float(&plain) {
                if let Ok(f) = plain.parse::<f64>() {
                    if f.is_finite() {
                        return json_float(f);
                    }
                }
            }
            Ok(Value::String(text.to_string()))
        }
        _ => Ok(Value::String(text.to_string())),
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`, then `ParseUint(s, 0, 64)`: a sign, then `0x`, `0o`,
/// `0b` or a leading `0` (octal) choose the base.
fn go_parse_int(s: &str) -> Option<Number> {
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(r) = lower.strip_prefix("0x") {
        (16, r)
    } else if let Some(r) = lower.strip_prefix("0o") {
        (8, r)
    } else if let Some(r) = lower.strip_prefix("0b") {
        (2, r)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(body, radix).ok()?;
    if negative {
        // i64::MIN's magnitude is one more than i64::MAX.
        let v = 0i128 - i128::from(magnitude);
        i64::try_from(v).ok().map(Number::from)
    } else {
        // Beyond int64 the API server's JSON reads it as a float64 (apimachinery's
        // unstructured numbers are int64 or float64).
        match i64::try_from(magnitude) {
            Ok(i) => Some(Number::from(i)),
            Err(_) => Number::from_f64(magnitude as f64),
        }
    }
}

/// go-yaml v2's `yamlStyleFloat`.
fn yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        // `.5` needs digits after the dot; `5.` does not.
        if int_digits == 0 && i == frac_start {
            return false;
        }
    } else if int_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == b.len()
}

/// A float as the API server reads what Go's encoding/json writes: integral values within
/// int64 as integers.
fn json_float(f: f64) -> Result<Value, String> {
    // Within int64 the API server reads an integral number as an integer.
    if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 {
        return Ok(Value::Number(Number::from(f as i64)));
    }
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| format!("json: unsupported value: {f}"))
}

/// A float map key (rare) as text: the shortest form that reads back as the same float32
/// (Go writes `strconv.FormatFloat(f, 'g', -1, 32)`; the two differ only in exponent style).
fn format_float32_g(f: f64) -> String {
    format!("{}", f as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(text: &str) -> Value {
        to_json(text).unwrap().unwrap()
    }

    #[test]
    fn plain_scalars_resolve_as_yaml_1_1() {
        let cases: &[(&str, Value)] = &[
            ("0755", 493.into()),
            ("'0755'", "0755".into()),
            ("yes", true.into()),
            ("\"yes\"", "yes".into()),
            ("on", true.into()),
            ("N", false.into()),
            ("Off", false.into()),
            ("~", Value::Null),
            ("", Value::Null),
            ("1_000", 1000.into()),
            ("0x1F", 31.into()),
            ("0o17", 15.into()),
            ("08", 8.into()),
            ("1.0", 1.into()),
            (".5", 0.5.into()),
            ("12e3", 12000.into()),
            ("+12", 12.into()),
            ("-0b101", (-5).into()),
            ("2001-12-14", "2001-12-14".into()),
            ("!!str 0644", "0644".into()),
            ("1e400x", "1e400x".into()),
            ("18446744073709551615", 18446744073709551615.0f64.into()),
            ("v1.2", "v1.2".into()),
            ("3.12.0", "3.12.0".into()),
        ];
        for (text, want) in cases {
            assert_eq!(&j(&format!("value: {text}\n"))["value"], want, "{text}");
        }
        assert_eq!(j("value: |\n  0755\n")["value"], "0755\n");
    }

    #[test]
    fn keys_anchors_and_merges() {
        let v = j("base: &b {a: 1, b: 2}\nother:\n  <<: *b\n  b: 3\nyes: 1\n10: ten\nlist: [*b]\nn: no\n");
        assert_eq!(v["other"], serde_json::json!({"a": 1, "b": 3}));
        // go-yaml v2 resolves keys too: `n:` is the key "false".
        assert_eq!(v["false"], false);
        assert_eq!(v["true"], 1);
        assert_eq!(v["10"], "ten");
        assert_eq!(v["list"][0]["a"], 1);
        assert!(to_json("# only a comment\n").unwrap().is_none());
        assert!(to_json("a: .nan\n").is_err());
    }
}
