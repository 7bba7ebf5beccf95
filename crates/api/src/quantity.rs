//! Resource quantities (`500m`, `1.5`, `128Mi`, `1e3`): exact parsing, arithmetic, comparison and printing.
//!
//! The syntax is Kubernetes' (`k8s.io/apimachinery/pkg/api/resource`):
//!
//! ```text
//! quantity ::= [+-] number [suffix]
//! number   ::= digits | digits "." [digits] | "." digits
//! suffix   ::= Ki | Mi | Gi | Ti | Pi | Ei          (binary, powers of 1024)
//!            | n | u | m | k | M | G | T | P | E    (decimal SI)
//!            | (e | E) [+-] digits                  (decimal exponent)
//! ```
//!
//! A [`Quantity`] holds an exact integer number of nano-units (10^-9) in an
//! `i128`; a value needing finer precision is rounded up (away from zero) to
//! the next nano-unit, as Kubernetes does. It remembers which kind of suffix it
//! was written with, only to print itself the way Kubernetes would: `1.5Gi`
//! prints `1536Mi`, `1.5` prints `1500m`, `1000` prints `1k`, `1e3` prints
//! `1e3`. Comparison and equality are numeric (`1000m == 1`, `1Gi > 1G`).
//! Binary quantities are capped at 2^63-1 units like Kubernetes'; other
//! quantities must fit the `i128` of nano-units (about 1.7e29 units).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::iter::Sum;
use std::ops::{Add, AddAssign, Sub, SubAssign};
use std::str::FromStr;

/// Errors from parsing a quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The string does not have the shape of a quantity.
    #[error("invalid quantity {input:?}: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    Format {
        /// The string as given.
        input: String,
    },
    /// The suffix is not a known unit or exponent.
    #[error(
        "invalid quantity {input:?}: unable to parse quantity's suffix {suffix:?} (expected one of n, u, m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei, or an exponent such as e3)"
    )]
    Suffix {
        /// The string as given.
        input: String,
        /// The suffix that was not understood.
        suffix: String,
    },
    /// The value is too large to represent.
    #[error("invalid quantity {input:?}: too large")]
    TooLarge {
        /// The string as given.
        input: String,
    },
}

/// The result type of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How a quantity was written, which decides how it is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// Decimal SI suffixes (`500m`, `1k`, `1G`) or none.
    #[default]
    DecimalSI,
    /// Binary suffixes (`128Mi`, `1Gi`).
    BinarySI,
    /// Decimal exponents (`1e3`, `5e-3`).
    DecimalExponent,
}

const NANOS_PER_UNIT: i128 = 1_000_000_000;
const NANOS_PER_MILLI: i128 = 1_000_000;
/// Binary quantities are capped at this many units, like Kubernetes'.
const MAX_BINARY_UNITS: i128 = i64::MAX as i128;
const BINARY_SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];

/// A resource quantity, held exactly as nano-units. See the module
/// documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

impl Quantity {
    /// Parses a quantity such as `500m`, `1.5`, `128Mi`, `1G` or `1e3`.
    /// Surrounding blanks are not accepted.
    pub fn parse(s: &str) -> Result<Quantity> {
        let format_err = || Error::Format { input: s.to_string() };
        let bytes = s.as_bytes();
        let mut pos = 0;
        let negative = match bytes.first() {
            Some(b'-') => {
                pos += 1;
                true
            }
            Some(b'+') => {
                pos += 1;
                false
            }
            _ => false,
        };
        let int_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        let int_digits = &s[int_start..pos];
        let mut frac_digits = "";
        if pos < bytes.len() && bytes[pos] == b'.' {
            pos += 1;
            let frac_start = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                pos += 1;
            }
            frac_digits = &s[frac_start..pos];
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(format_err());
        }
        let suffix = &s[pos..];
        if !suffix_has_valid_shape(suffix) {
            return Err(format_err());
        }
        let unit = interpret_suffix(suffix).ok_or_else(|| Error::Suffix { input: s.to_string(), suffix: suffix.to_string() })?;

        // The digits as a decimal integer D, the value being D * 10^-f * unit.
        let mut digits: Vec<u8> = int_digits.bytes().chain(frac_digits.bytes()).map(|b| b - b'0').collect();
        let frac_len = i64::try_from(frac_digits.len()).map_err(|_| format_err())?;
        let (exp10, format) = match unit {
            Unit::Decimal(e) => (e, Format::DecimalSI),
            Unit::Exponent(e) => (e, Format::DecimalExponent),
            Unit::Binary(shift) => {
                multiply_digits(&mut digits, 1u64 << shift);
                (0, Format::BinarySI)
            }
        };
        // nanos = D * 10^(9 - f + exp10), rounded up away from zero.
        let scale = 9i64.saturating_sub(frac_len).saturating_add(exp10);
        let magnitude = scale_digits(&digits, scale).ok_or_else(|| Error::TooLarge { input: s.to_string() })?;
        let magnitude = if format == Format::BinarySI { magnitude.min(MAX_BINARY_UNITS * NANOS_PER_UNIT) } else { magnitude };
        let nanos = if negative { -magnitude } else { magnitude };
        Ok(Quantity { nanos, format })
    }

    /// A quantity of `m` thousandths (`from_milli(500)` is `500m`).
    pub fn from_milli(m: i64) -> Quantity {
        Quantity { nanos: i128::from(m) * NANOS_PER_MILLI, format: Format::DecimalSI }
    }

    /// A quantity of `v` whole units, printed with decimal suffixes.
    pub fn from_value(v: i64) -> Quantity {
        Quantity { nanos: i128::from(v) * NANOS_PER_UNIT, format: Format::DecimalSI }
    }

    /// A quantity of `v` whole units printed with binary suffixes when exact
    /// (`from_binary_value(128 << 20)` is `128Mi`): for byte counts.
    pub fn from_binary_value(v: i64) -> Quantity {
        Quantity { nanos: i128::from(v) * NANOS_PER_UNIT, format: Format::BinarySI }
    }

    /// A quantity of exactly `n` nano-units.
    pub fn from_nano(n: i128) -> Quantity {
        Quantity { nanos: n, format: Format::DecimalSI }
    }

    /// The exact value in nano-units.
    pub fn nano_value(&self) -> i128 {
        self.nanos
    }

    /// The value in thousandths, rounded up (away from zero) and saturated
    /// to the `i64` range: `1.5` gives 1500, `0.1m` gives 1.
    pub fn milli_value(&self) -> i64 {
        saturate(div_away_from_zero(self.nanos, NANOS_PER_MILLI))
    }

    /// The value in whole units, rounded up (away from zero) and saturated
    /// to the `i64` range: `500m` gives 1, `128Mi` gives 134217728.
    pub fn value(&self) -> i64 {
        saturate(div_away_from_zero(self.nanos, NANOS_PER_UNIT))
    }

    /// Whether the quantity is zero.
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// Whether the quantity is below zero.
    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    /// How the quantity prints (the kind of suffix it was written with).
    pub fn format(&self) -> Format {
        self.format
    }

    /// The sum, or None on overflow.
    pub fn checked_add(self, other: Quantity) -> Option<Quantity> {
        let nanos = self.nanos.checked_add(other.nanos)?;
        Some(Quantity { nanos, format: self.combined_format(other) })
    }

    /// The difference, or None on overflow.
    pub fn checked_sub(self, other: Quantity) -> Option<Quantity> {
        let nanos = self.nanos.checked_sub(other.nanos)?;
        Some(Quantity { nanos, format: self.combined_format(other) })
    }

    /// Like Kubernetes: a zero receiver takes the other operand's format.
    fn combined_format(self, other: Quantity) -> Format {
        if self.nanos == 0 { other.format } else { self.format }
    }

    /// Mantissa and power of ten with the power a multiple of three and as
    /// large as possible without losing digits; `(0, 0)` for zero.
    fn decimal_parts(&self) -> (i128, i64) {
        if self.nanos == 0 {
            return (0, 0);
        }
        let mut mantissa = self.nanos;
        let mut exponent: i64 = -9;
        while mantissa % 10 == 0 {
            mantissa /= 10;
            exponent += 1;
        }
        // Removing k zeros left room for multiplying by 10^k, so the
        // adjustments below cannot overflow.
        match exponent % 3 {
            1 | -2 => {
                mantissa *= 10;
                exponent -= 1;
            }
            2 | -1 => {
                mantissa *= 100;
                exponent -= 2;
            }
            _ => {}
        }
        (mantissa, exponent)
    }

    fn fmt_decimal_si(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (mut mantissa, mut exponent) = self.decimal_parts();
        // Nothing above exa: fold the rest into the mantissa (it fits, being
        // smaller than the nano count).
        while exponent > 18 {
            mantissa *= 10;
            exponent -= 1;
        }
        let suffix = match exponent {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            18 => "E",
            _ => "",
        };
        write!(f, "{mantissa}{suffix}")
    }

    fn fmt_decimal_exponent(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (mantissa, exponent) = self.decimal_parts();
        if exponent == 0 { write!(f, "{mantissa}") } else { write!(f, "{mantissa}e{exponent}") }
    }

    fn fmt_binary_si(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Below 1024, or not a whole number: decimal, as Kubernetes does.
        if self.nanos.unsigned_abs() < 1024 * NANOS_PER_UNIT.unsigned_abs() || self.nanos % NANOS_PER_UNIT != 0 {
            return self.fmt_decimal_si(f);
        }
        let mut units = self.nanos / NANOS_PER_UNIT;
        let mut power = 0;
        while power + 1 < BINARY_SUFFIXES.len() && units % 1024 == 0 {
            units /= 1024;
            power += 1;
        }
        write!(f, "{units}{}", BINARY_SUFFIXES[power])
    }
}

/// Parses a CPU quantity (`500m`, `2`, `0.25`) into millicores, rounded up.
pub fn parse_cpu_millis(s: &str) -> Result<i64> {
    Ok(Quantity::parse(s)?.milli_value())
}

/// Parses a memory or storage quantity (`128Mi`, `1G`, `1024`) into bytes,
/// rounded up.
pub fn parse_bytes(s: &str) -> Result<i64> {
    Ok(Quantity::parse(s)?.value())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// A decimal SI suffix: the power of ten.
    Decimal(i64),
    /// A binary suffix: the power of two.
    Binary(u32),
    /// An `e`/`E` exponent: the power of ten.
    Exponent(i64),
}

/// `[eEinumkKMGTP]*[-+]?[0-9]*`, Kubernetes' shape check before the suffix
/// is interpreted.
fn suffix_has_valid_shape(suffix: &str) -> bool {
    let rest = suffix.trim_start_matches(|c: char| "eEinumkKMGTP".contains(c));
    let rest = rest.strip_prefix(['+', '-']).unwrap_or(rest);
    rest.bytes().all(|b| b.is_ascii_digit())
}

fn interpret_suffix(suffix: &str) -> Option<Unit> {
    let unit = match suffix {
        "" => Unit::Decimal(0),
        "n" => Unit::Decimal(-9),
        "u" => Unit::Decimal(-6),
        "m" => Unit::Decimal(-3),
        "k" => Unit::Decimal(3),
        "M" => Unit::Decimal(6),
        "G" => Unit::Decimal(9),
        "T" => Unit::Decimal(12),
        "P" => Unit::Decimal(15),
        "E" => Unit::Decimal(18),
        "Ki" => Unit::Binary(10),
        "Mi" => Unit::Binary(20),
        "Gi" => Unit::Binary(30),
        "Ti" => Unit::Binary(40),
        "Pi" => Unit::Binary(50),
        "Ei" => Unit::Binary(60),
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Unit::Exponent(exponent.parse::<i64>().ok()?)
        }
    };
    Some(unit)
}

/// Multiplies a big-endian decimal digit vector by `factor` in place.
fn multiply_digits(digits: &mut Vec<u8>, factor: u64) {
    let mut carry: u128 = 0;
    for d in digits.iter_mut().rev() {
        let product = u128::from(*d) * u128::from(factor) + carry;
        *d = (product % 10) as u8;
        carry = product / 10;
    }
    let mut prefix = Vec::new();
    while carry > 0 {
        prefix.push((carry % 10) as u8);
        carry /= 10;
    }
    prefix.reverse();
    prefix.append(digits);
    *digits = prefix;
}

/// `digits * 10^scale` as an integer, rounding up (away from zero) when
/// `scale` drops non-zero digits; None if it does not fit an `i128`.
fn scale_digits(digits: &[u8], scale: i64) -> Option<i128> {
    let first_nonzero = digits.iter().position(|&d| d != 0);
    let Some(first_nonzero) = first_nonzero else {
        return Some(0);
    };
    let significant = &digits[first_nonzero..];
    if scale >= 0 {
        // 10^38 < i128::MAX < 10^39: more than 39 digits cannot fit.
        let total = i64::try_from(significant.len()).ok()?.checked_add(scale)?;
        if total > 39 {
            return None;
        }
        let mut value: i128 = 0;
        for &d in significant {
            value = value.checked_mul(10)?.checked_add(i128::from(d))?;
        }
        for _ in 0..scale {
            value = value.checked_mul(10)?;
        }
        Some(value)
    } else {
        let dropped = usize::try_from(scale.unsigned_abs()).unwrap_or(usize::MAX);
        let keep = significant.len().saturating_sub(dropped);
        let (kept, rest) = significant.split_at(keep);
        let mut value: i128 = 0;
        for &d in kept {
            value = value.checked_mul(10)?.checked_add(i128::from(d))?;
        }
        if rest.iter().any(|&d| d != 0) {
            value = value.checked_add(1)?;
        }
        Some(value)
    }
}

/// `n / d` rounded away from zero (`d` > 0).
fn div_away_from_zero(n: i128, d: i128) -> i128 {
    let q = n / d;
    if n % d == 0 {
        q
    } else if n > 0 {
        q + 1
    } else {
        q - 1
    }
}

fn saturate(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

impl FromStr for Quantity {
    type Err = Error;

    fn from_str(s: &str) -> Result<Quantity> {
        Quantity::parse(s)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        match self.format {
            Format::DecimalSI => self.fmt_decimal_si(f),
            Format::BinarySI => self.fmt_binary_si(f),
            Format::DecimalExponent => self.fmt_decimal_exponent(f),
        }
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Quantity) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl Hash for Quantity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.nanos.hash(state);
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Quantity) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Quantity) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl Add for Quantity {
    type Output = Quantity;

    /// Saturating addition; see [`Quantity::checked_add`].
    fn add(self, other: Quantity) -> Quantity {
        Quantity { nanos: self.nanos.saturating_add(other.nanos), format: self.combined_format(other) }
    }
}

impl Sub for Quantity {
    type Output = Quantity;

    /// Saturating subtraction; see [`Quantity::checked_sub`].
    fn sub(self, other: Quantity) -> Quantity {
        Quantity { nanos: self.nanos.saturating_sub(other.nanos), format: self.combined_format(other) }
    }
}

impl AddAssign for Quantity {
    fn add_assign(&mut self, other: Quantity) {
        *self = *self + other;
    }
}

impl SubAssign for Quantity {
    fn sub_assign(&mut self, other: Quantity) {
        *self = *self - other;
    }
}

impl Sum for Quantity {
    fn sum<I: Iterator<Item = Quantity>>(iter: I) -> Quantity {
        iter.fold(Quantity::default(), |acc, q| acc + q)
    }
}

impl<'a> Sum<&'a Quantity> for Quantity {
    fn sum<I: Iterator<Item = &'a Quantity>>(iter: I) -> Quantity {
        iter.fold(Quantity::default(), |acc, q| acc + *q)
    }
}

impl serde::Serialize for Quantity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Quantity {
    /// Accepts a string (`"500m"`) or a number (`1`, `0.5`), as manifests
    /// write `cpu: 1`.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Quantity, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = Quantity;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quantity such as \"500m\", \"128Mi\" or a number")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Quantity, E> {
                Quantity::parse(v).map_err(E::custom)
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<Quantity, E> {
                Ok(Quantity::from_value(v))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<Quantity, E> {
                Ok(Quantity { nanos: i128::from(v) * NANOS_PER_UNIT, format: Format::DecimalSI })
            }

            fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<Quantity, E> {
                if !v.is_finite() {
                    return Err(E::custom(format!("invalid quantity {v}: not a finite number")));
                }
                // Rust prints finite floats as plain decimals, which parse.
                Quantity::parse(&v.to_string()).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        match Quantity::parse(s) {
            Ok(q) => q,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    fn canonical(s: &str) -> String {
        q(s).to_string()
    }

    #[test]
    fn should_parse_plain_integers_and_decimals_exactly() {
        assert_eq!(q("1").nano_value(), 1_000_000_000);
        assert_eq!(q("1.5").nano_value(), 1_500_000_000);
        assert_eq!(q("0.3").nano_value(), 300_000_000);
        assert_eq!(q("0").nano_value(), 0);
        assert_eq!(q("007").nano_value(), 7_000_000_000);
        assert_eq!(q(".5").nano_value(), 500_000_000);
        assert_eq!(q("5.").nano_value(), 5_000_000_000);
        assert_eq!(q("+2").nano_value(), 2_000_000_000);
        assert_eq!(q("-2").nano_value(), -2_000_000_000);
    }

    #[test]
    fn should_parse_decimal_suffixes() {
        assert_eq!(q("500m").milli_value(), 500);
        assert_eq!(q("1n").nano_value(), 1);
        assert_eq!(q("1u").nano_value(), 1_000);
        assert_eq!(q("1k").value(), 1_000);
        assert_eq!(q("1M").value(), 1_000_000);
        assert_eq!(q("1G").value(), 1_000_000_000);
        assert_eq!(q("1T").value(), 1_000_000_000_000);
        assert_eq!(q("1P").value(), 1_000_000_000_000_000);
        assert_eq!(q("1E").value(), 1_000_000_000_000_000_000);
    }

    #[test]
    fn should_parse_binary_suffixes() {
        assert_eq!(q("1Ki").value(), 1024);
        assert_eq!(q("128Mi").value(), 128 << 20);
        assert_eq!(q("1Gi").value(), 1 << 30);
        assert_eq!(q("1Ti").value(), 1 << 40);
        assert_eq!(q("1Pi").value(), 1 << 50);
        assert_eq!(q("1Ei").value(), 1 << 60);
        assert_eq!(q("1.5Gi").value(), 1536 << 20);
        assert_eq!(q("0.5Ki").value(), 512);
    }

    #[test]
    fn should_parse_exponents() {
        assert_eq!(q("1e3").value(), 1000);
        assert_eq!(q("1E3").value(), 1000);
        assert_eq!(q("1e+3").value(), 1000);
        assert_eq!(q("1E-3").milli_value(), 1);
        assert_eq!(q("1.5e1").value(), 15);
        assert_eq!(q("12e6").value(), 12_000_000);
        assert_eq!(q("0e1000000").nano_value(), 0);
    }

    #[test]
    fn should_round_sub_nano_values_up() {
        assert_eq!(q("0.1n").nano_value(), 1);
        assert_eq!(q("1.5n").nano_value(), 2);
        assert_eq!(q("-0.1n").nano_value(), -1);
        assert_eq!(q("1e-20").nano_value(), 1);
        assert_eq!(q("1e-999999999999").nano_value(), 1);
        assert_eq!(q("0.0000000001").nano_value(), 1);
        assert_eq!(q("0.0000000010").nano_value(), 1);
        assert_eq!(q("0.00000000100").nano_value(), 1);
        assert_eq!(q("1.0000000001").nano_value(), 1_000_000_001);
        assert_eq!(q("0.1234567890123456789012345678901234567890123").nano_value(), 123_456_790);
        assert_eq!(q("0.0000000001Ki").nano_value(), 103);
    }

    #[test]
    fn should_reject_malformed_quantities_naming_them() {
        for s in ["", "abc", "1.2.3", "1 ", " 1", "1e3.5", "--1", "1Mi3", "1.5.Gi", "Ki", "-", ".", "+", "e3", "1,5"] {
            let err = Quantity::parse(s).expect_err(s);
            let msg = err.to_string();
            assert!(msg.contains(&format!("{s:?}")), "{msg}");
        }
        assert_eq!(
            Quantity::parse("abc").expect_err("abc").to_string(),
            "invalid quantity \"abc\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
    }

    #[test]
    fn should_reject_unknown_suffixes() {
        for (s, suffix) in
            [("1K", "K"), ("1e", "e"), ("1i", "i"), ("1Mi3", "Mi3"), ("1kk", "kk"), ("1Ee3", "Ee3"), ("1m3", "m3"), ("1e-", "e-")]
        {
            match Quantity::parse(s) {
                Err(Error::Suffix { input, suffix: got }) => {
                    assert_eq!(input, s);
                    assert_eq!(got, suffix);
                }
                other => panic!("{s}: {other:?}"),
            }
        }
        assert!(matches!(Quantity::parse("1KB"), Err(Error::Format { .. })));
        assert!(matches!(Quantity::parse("1e99999999999999999999"), Err(Error::Suffix { .. })));
    }

    #[test]
    fn should_reject_values_too_large() {
        assert!(matches!(Quantity::parse("1e40"), Err(Error::TooLarge { .. })));
        assert!(matches!(Quantity::parse(&"9".repeat(40)), Err(Error::TooLarge { .. })));
        assert!(Quantity::parse("1e20").is_ok());
        assert!(Quantity::parse("1e29").is_ok());
    }

    #[test]
    fn should_cap_binary_quantities_at_int64_max() {
        assert_eq!(q("16Ei").value(), i64::MAX);
        assert_eq!(q("-16Ei").value(), -i64::MAX);
        assert_eq!(q("8Ei").to_string(), "9223372036854775807");
    }

    #[test]
    fn should_round_milli_value_and_value_up() {
        assert_eq!(q("500m").value(), 1);
        assert_eq!(q("1001m").value(), 2);
        assert_eq!(q("-500m").value(), -1);
        assert_eq!(q("0.1m").milli_value(), 1);
        assert_eq!(q("1.5").milli_value(), 1500);
        assert_eq!(q("1u").milli_value(), 1);
        assert_eq!(q("2").milli_value(), 2000);
    }

    #[test]
    fn should_saturate_conversions_to_i64() {
        assert_eq!(q("1e20").value(), i64::MAX);
        assert_eq!(q("-1e20").value(), i64::MIN);
        assert_eq!(q("1e17").milli_value(), i64::MAX);
    }

    #[test]
    fn should_compare_numerically() {
        assert!(q("1Gi") > q("1G"));
        assert_eq!(q("1000m"), q("1"));
        assert_eq!(q("1k"), q("1e3"));
        assert_eq!(q("1024"), q("1Ki"));
        assert!(q("999m") < q("1"));
        assert!(q("-1") < q("0"));
        assert_eq!(q("0.5").cmp(&q("500m")), Ordering::Equal);
        let mut v = [q("1Gi"), q("1"), q("500m"), q("1G")];
        v.sort();
        assert_eq!(v.iter().map(|x| x.to_string()).collect::<Vec<_>>(), vec!["500m", "1", "1G", "1Gi"]);
    }

    #[test]
    fn should_hash_consistently_with_equality() {
        use std::collections::HashSet;
        let set: HashSet<Quantity> = [q("1"), q("1000m"), q("1e0")].into_iter().collect();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn should_print_canonical_decimal_forms_like_kubernetes() {
        assert_eq!(canonical("0"), "0");
        assert_eq!(canonical("0.0"), "0");
        assert_eq!(canonical("-0"), "0");
        assert_eq!(canonical("1"), "1");
        assert_eq!(canonical("1.5"), "1500m");
        assert_eq!(canonical("0.5"), "500m");
        assert_eq!(canonical("500m"), "500m");
        assert_eq!(canonical("1000m"), "1");
        assert_eq!(canonical("1000"), "1k");
        assert_eq!(canonical("1500"), "1500");
        assert_eq!(canonical("1G"), "1G");
        assert_eq!(canonical("1.5G"), "1500M");
        assert_eq!(canonical("0.3"), "300m");
        assert_eq!(canonical("1n"), "1n");
        assert_eq!(canonical("10n"), "10n");
        assert_eq!(canonical("1u"), "1u");
        assert_eq!(canonical("0.1m"), "100u");
        assert_eq!(canonical("100M"), "100M");
        assert_eq!(canonical("-1.5"), "-1500m");
        assert_eq!(canonical("1E"), "1E");
        assert_eq!(canonical("1000E"), "1000E");
        assert_eq!(canonical("+5"), "5");
    }

    #[test]
    fn should_keep_binary_suffixes_when_exact() {
        assert_eq!(canonical("128Mi"), "128Mi");
        assert_eq!(canonical("1Gi"), "1Gi");
        assert_eq!(canonical("1024Mi"), "1Gi");
        assert_eq!(canonical("1.5Gi"), "1536Mi");
        assert_eq!(canonical("1Ki"), "1Ki");
        assert_eq!(canonical("1536Ki"), "1536Ki");
        assert_eq!(canonical("1024Ei"), "9223372036854775807");
        assert_eq!(canonical("-2Gi"), "-2Gi");
        assert_eq!(canonical("1Ei"), "1Ei");
    }

    #[test]
    fn should_print_small_or_fractional_binary_values_in_decimal() {
        assert_eq!(canonical("0.5Ki"), "512");
        assert_eq!(canonical("0.0001Ki"), "102400u");
        assert_eq!(canonical("1.0001Ki"), "1024102400u");
    }

    #[test]
    fn should_keep_exponent_form() {
        assert_eq!(canonical("1e3"), "1e3");
        assert_eq!(canonical("12e6"), "12e6");
        assert_eq!(canonical("1E-3"), "1e-3");
        assert_eq!(canonical("1.5e3"), "1500");
        assert_eq!(canonical("1e1"), "10");
        assert_eq!(canonical("1e21"), "1e21");
    }

    #[test]
    fn should_round_trip_canonical_forms() {
        for s in ["500m", "1.5", "128Mi", "1G", "0.3", "1e3", "1.5Gi", "100u", "-7n", "1e21", "123456789"] {
            let a = q(s);
            let b = q(&a.to_string());
            assert_eq!(a, b, "{s}");
            assert_eq!(a.to_string(), b.to_string(), "{s}");
        }
    }

    #[test]
    fn should_build_from_milli_and_value() {
        assert_eq!(Quantity::from_milli(500).to_string(), "500m");
        assert_eq!(Quantity::from_milli(1500), q("1.5"));
        assert_eq!(Quantity::from_value(2).to_string(), "2");
        assert_eq!(Quantity::from_value(-3).value(), -3);
        assert_eq!(Quantity::from_binary_value(128 << 20).to_string(), "128Mi");
        assert_eq!(Quantity::from_nano(1).to_string(), "1n");
        assert_eq!(Quantity::from_value(i64::MAX).value(), i64::MAX);
        assert_eq!(Quantity::from_milli(i64::MIN).milli_value(), i64::MIN);
    }

    #[test]
    fn should_add_and_subtract_exactly() {
        assert_eq!(q("0.1") + q("0.2"), q("0.3"));
        assert_eq!((q("1") - q("250m")).to_string(), "750m");
        assert_eq!((q("1Gi") + q("1Gi")).to_string(), "2Gi");
        assert_eq!((q("0") + q("1Gi")).to_string(), "1Gi");
        assert_eq!((q("1") - q("2")).to_string(), "-1");
        let mut total = Quantity::default();
        total += q("100m");
        total += q("200m");
        total -= q("50m");
        assert_eq!(total.milli_value(), 250);
        let sum: Quantity = ["100m", "200m", "1"].iter().map(|s| q(s)).sum();
        assert_eq!(sum.to_string(), "1300m");
        let refs = [q("1Ki"), q("1Ki")];
        assert_eq!(refs.iter().sum::<Quantity>().to_string(), "2Ki");
    }

    #[test]
    fn should_detect_overflow_in_checked_arithmetic_and_saturate_otherwise() {
        let max = Quantity::from_nano(i128::MAX);
        assert_eq!(max.checked_add(q("1n")), None);
        assert_eq!(Quantity::from_nano(i128::MIN).checked_sub(q("1n")), None);
        assert_eq!(q("1").checked_add(q("1")), Some(q("2")));
        assert_eq!(q("1").checked_sub(q("1")), Some(q("0")));
        assert_eq!((max + q("1")).nano_value(), i128::MAX);
    }

    #[test]
    fn should_report_zero_and_sign() {
        assert!(q("0").is_zero());
        assert!(q("0Gi").is_zero());
        assert!(!q("1n").is_zero());
        assert!(q("-1m").is_negative());
        assert!(!q("0").is_negative());
        assert_eq!(q("1Gi").format(), Format::BinarySI);
        assert_eq!(q("1e3").format(), Format::DecimalExponent);
        assert_eq!(q("1k").format(), Format::DecimalSI);
    }

    #[test]
    fn should_parse_cpu_millis_and_bytes() {
        assert_eq!(parse_cpu_millis("500m"), Ok(500));
        assert_eq!(parse_cpu_millis("2"), Ok(2000));
        assert_eq!(parse_cpu_millis("0.25"), Ok(250));
        assert_eq!(parse_cpu_millis("0.0001"), Ok(1));
        assert_eq!(parse_bytes("128Mi"), Ok(134_217_728));
        assert_eq!(parse_bytes("1G"), Ok(1_000_000_000));
        assert_eq!(parse_bytes("1.5"), Ok(2));
        assert!(parse_bytes("1 GB").is_err());
        assert!(parse_cpu_millis("fast").is_err());
    }

    #[test]
    fn should_parse_through_from_str() {
        let x: Quantity = "250m".parse().expect("valid");
        assert_eq!(x.milli_value(), 250);
        assert!("x".parse::<Quantity>().is_err());
    }

    #[test]
    fn should_serialize_as_canonical_string() {
        assert_eq!(serde_json::to_string(&q("1.5Gi")).ok(), Some("\"1536Mi\"".to_string()));
        assert_eq!(serde_json::to_string(&q("0.5")).ok(), Some("\"500m\"".to_string()));
    }

    #[test]
    fn should_deserialize_from_strings_and_numbers() {
        let from = |json: &str| serde_json::from_str::<Quantity>(json);
        assert_eq!(from("\"500m\"").ok(), Some(q("500m")));
        assert_eq!(from("1").ok(), Some(q("1")));
        assert_eq!(from("-2").ok(), Some(q("-2")));
        assert_eq!(from("0.5").ok(), Some(q("500m")));
        assert_eq!(from("18446744073709551615").ok().map(|x| x.nano_value()), Some(18_446_744_073_709_551_615_i128 * 1_000_000_000));
        let err = from("\"1 GB\"").expect_err("invalid");
        assert!(err.to_string().contains("invalid quantity \"1 GB\""), "{err}");
        assert!(from("true").is_err());
    }
}
