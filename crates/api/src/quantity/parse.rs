//! Parsing a quantity: the sign, the digits, the suffix (decimal SI, binary
//! or exponent), and scaling the digits exactly to nano-units, rounding up
//! what needs finer precision.

use std::str::FromStr;

use super::{Error, Format, NANOS_PER_UNIT, Quantity, Result};

/// Binary quantities are capped at this many units, like Kubernetes'.
const MAX_BINARY_UNITS: i128 = i64::MAX as i128;

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

impl FromStr for Quantity {
    type Err = Error;

    fn from_str(s: &str) -> Result<Quantity> {
        Quantity::parse(s)
    }
}
