//! The serde forms of a quantity: written as its canonical string, read from
//! a string (`"500m"`) or a number (`1`, `0.5`).

use std::fmt;

use super::{Format, NANOS_PER_UNIT, Quantity};

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
