//! Validated profile value types (cargo-deny's "checks see values, never strings").

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A version such as `3.12.0` (a leading `v` is accepted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version(pub semver::Version);

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_scalar(d, "a version such as 3.12.0", |s| parse_version(s).map(Version))
    }
}

/// Deserialise a scalar (string or number) through `parse`. Parsing happens inside the
/// visitor so the YAML deserializer pins any error to the scalar's own line.
pub fn parse_scalar<'de, D, T>(
    d: D,
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<T> {
        expecting: &'static str,
        parse: fn(&str) -> Result<T, String>,
    }
    impl<T> serde::de::Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
            (self.parse)(v).map_err(E::custom)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<T, E> {
            self.visit_str(&v.to_string())
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<T, E> {
            self.visit_str(&v.to_string())
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<T, E> {
            self.visit_str(&v.to_string())
        }
    }
    d.deserialize_any(V { expecting, parse })
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

pub fn parse_version(s: &str) -> Result<semver::Version, String> {
    let t = s.trim().trim_start_matches('v');
    // `1.18` is how people write Kubernetes minors; read it as 1.18.0.
    let padded = match t.matches('.').count() {
        0 => format!("{t}.0.0"),
        1 => format!("{t}.0"),
        _ => t.to_string(),
    };
    semver::Version::parse(&padded).map_err(|e| format!("{s:?} is not a version like 3.12.0: {e}"))
}

/// A duration written like `5s`, `1m30s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_scalar(d, "a duration such as 5s", |s| parse_duration(s).map(Dur))
    }
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("{s:?} is not a duration like 5s or 1m30s: {e}"))
}
