//! Kubernetes quantities (`90Gi`, `500M`, `250m`), parsed once when the profile loads so
//! checks only see numbers.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A size in bytes, written as a Kubernetes quantity in profiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub u64);

impl Bytes {
    pub const GIB: f64 = (1u64 << 30) as f64;

    pub fn gib(self) -> f64 {
        self.0 as f64 / Self::GIB
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1} GiB", self.gib())
    }
}

impl Bytes {
    /// A quantity from the API (`8Gi`, `16318532Ki`); fractional bytes round down.
    pub fn parse_lossy(s: &str) -> Result<Bytes, String> {
        let milli = parse_milli(s)?;
        u64::try_from(milli / 1000)
            .map(Bytes)
            .map_err(|_| format!("{s:?} is too large"))
    }
}

/// Parse a quantity into its value in base units (bytes, or cores for CPU).
/// Returns milli-units so `250m` CPU stays exact.
pub fn parse_milli(s: &str) -> Result<u128, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.matches('.').count() > 1 {
        return Err(format!(
            "{s:?} is not a quantity (expected e.g. 90Gi, 500M, 250m)"
        ));
    }
    let multiplier_milli: u128 = match suffix {
        "m" => 1,
        "" => 1_000,
        "k" => 1_000 * 1_000,
        "M" => 1_000 * 1_000_000,
        "G" => 1_000 * 1_000_000_000,
        "T" => 1_000 * 1_000_000_000_000,
        "P" => 1_000 * 1_000_000_000_000_000,
        "E" => 1_000 * 1_000_000_000_000_000_000,
        "Ki" => 1_000 << 10,
        "Mi" => 1_000 << 20,
        "Gi" => 1_000 << 30,
        "Ti" => 1_000 << 40,
        "Pi" => 1_000 << 50,
        "Ei" => 1_000 << 60,
        _ => {
            return Err(format!(
                "{s:?} is not a quantity: unknown suffix {suffix:?} (use Ki, Mi, Gi, Ti, k, M, G, T or m)"
            ))
        }
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let int: u128 = int
        .parse()
        .map_err(|_| format!("{s:?} is not a quantity: number too large"))?;
    let mut value = int
        .checked_mul(multiplier_milli)
        .ok_or_else(|| format!("{s:?} is not a quantity: number too large"))?;
    if !frac.is_empty() {
        let digits = frac.len().min(18) as u32;
        let frac_num: u128 = frac[..digits as usize]
            .parse()
            .map_err(|_| format!("{s:?} is not a quantity"))?;
        // frac_num < d, so neither product can overflow: exact for every suffix.
        let d = 10u128.pow(digits);
        let frac_value = frac_num * (multiplier_milli / d) + frac_num * (multiplier_milli % d) / d;
        value = value
            .checked_add(frac_value)
            .ok_or_else(|| format!("{s:?} is not a quantity: number too large"))?;
    }
    Ok(value)
}

impl Bytes {
    pub fn parse(s: &str) -> Result<Bytes, String> {
        let milli = parse_milli(s)?;
        if milli % 1000 != 0 {
            return Err(format!("{s:?} is not a whole number of bytes"));
        }
        u64::try_from(milli / 1000)
            .map(Bytes)
            .map_err(|_| format!("{s:?} is too large"))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::values::parse_scalar(d, "a size such as 90Gi", Bytes::parse)
    }
}

/// CPU in millicores (`4`, `500m`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cpu(pub u128);

impl Cpu {
    pub fn parse(s: &str) -> Result<Cpu, String> {
        parse_milli(s).map(Cpu)
    }
}

impl fmt::Display for Cpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(1000) {
            write!(f, "{}", self.0 / 1000)
        } else {
            write!(f, "{}m", self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Cpu {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::values::parse_scalar(d, "a CPU quantity such as 4 or 500m", Cpu::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_decimal_suffixes() {
        assert_eq!(parse_milli("90Gi").unwrap(), 90 * (1u128 << 30) * 1000);
        assert_eq!(parse_milli("1.5Gi").unwrap(), 3 * (1u128 << 29) * 1000);
        assert_eq!(parse_milli("500M").unwrap(), 500_000_000_000);
        assert_eq!(parse_milli("250m").unwrap(), 250);
        assert_eq!(parse_milli("4").unwrap(), 4000);
    }

    #[test]
    fn fractions_of_large_suffixes_are_exact() {
        assert_eq!(
            Bytes::parse("0.999999999999999999E").unwrap(),
            Bytes(999_999_999_999_999_999)
        );
        assert_eq!(parse_milli("0.5Ei").unwrap(), (1u128 << 59) * 1000);
        assert!(
            Bytes::parse("99999999999999999999E").is_err(),
            "too large for u64"
        );
        assert!(parse_milli("999999999999999999999999999999999999999E").is_err());
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_milli("90GB").is_err());
        assert!(parse_milli("Gi").is_err());
        assert!(parse_milli("").is_err());
        assert!(parse_milli("1..2Gi").is_err());
    }
}
