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
//!
//! Split by what each part holds: `parse` reads the syntax above,
//! `arithmetic` adds, subtracts and compares, `format` prints the way
//! Kubernetes does, `serde_impls` reads and writes the JSON/YAML forms; this
//! module holds the type, its constructors and its conversions.

mod arithmetic;
mod format;
mod parse;
mod serde_impls;
#[cfg(test)]
mod tests;

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

/// A resource quantity, held exactly as nano-units. See the module
/// documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

impl Quantity {
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
