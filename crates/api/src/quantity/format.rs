//! Printing a quantity the way Kubernetes does, by the format it was
//! written in: decimal SI (`1500m`, `1k`), binary SI when exact (`1536Mi`)
//! or decimal exponent (`1e3`).

use std::fmt;

use super::{Format, NANOS_PER_UNIT, Quantity};

const BINARY_SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];

impl Quantity {
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
