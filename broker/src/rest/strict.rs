//! Request parsing exactly as strict as the OpenAPI document.
//!
//! serde's derives and serde_json are more lenient than the document the REST API publishes,
//! and generated clients trust the document. [`Strict`] wraps a deserializer (JSON bodies, query
//! strings) and closes the gaps, at every depth of the value:
//! - **Objects are objects.** A derived struct also reads a JSON array of its fields in order
//!   (`[null, null]` was a message); here a struct reads only a JSON object.
//! - **Enums are strings.** serde_json also reads `{"queue": null}` as the unit variant `queue`;
//!   here an enum reads only a string (every enum of the REST API is a string enum).
//! - **Integers have the range of their `format`.** The document gives `u32` fields
//!   `format: int32` and `u64` fields `format: int64` (utoipa's mapping, which generated clients
//!   follow: `Integer`/`Long` in Java, `int32`/`int64` in Go), so a `u32` takes 0 to 2^31-1 and a
//!   `u64` 0 to 2^63-1, and a larger value is refused rather than taken.
//! - **An integer written with a fraction or an exponent is that integer** (`3968.0`, `1e3`),
//!   as JSON Schema counts it for `type: integer`; `3968.5` stays an error. [`integral_numbers`]
//!   rewrites such numbers in the JSON text, exactly (a float would round `2068954616789867.0`
//!   or `-9223372036854775809`), before it is parsed.
//!
//! Everything else is serde's: field names, `deny_unknown_fields`, required fields, `null` for
//! `Option`s. Bounds narrower than the type (`max` 1 to 10000, `wait_ms` up to 30000) are checked by
//! the handlers against the same constants the document is generated from.

use std::borrow::Cow;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Unexpected,
    Visitor,
};

/// Largest value of a `format: int32` integer.
pub const INT32_MAX: u64 = i32::MAX as u64;
/// Largest value of a `format: int64` integer.
pub const INT64_MAX: u64 = i64::MAX as u64;

/// A deserializer that reads only what the document allows (see the module docs).
pub struct Strict<D>(pub D);

macro_rules! plain {
    ($($method:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.0.$method(Nested(visitor))
        }
    )*};
}

macro_rules! integer {
    ($($method:ident => $max:expr),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.0.$method(Integer { visitor, max: $max })
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Strict<D> {
    type Error = D::Error;

    plain!(
        deserialize_any,
        deserialize_bool,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_option,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any,
    );

    // The `format` utoipa gives each type: int32 up to u32 and i32, int64 for u64 and i64. The
    // type itself bounds the rest (a `u8` refuses 256, every unsigned type refuses -1).
    integer!(
        deserialize_i8 => INT64_MAX,
        deserialize_i16 => INT64_MAX,
        deserialize_i32 => INT64_MAX,
        deserialize_i64 => INT64_MAX,
        deserialize_u8 => INT32_MAX,
        deserialize_u16 => INT32_MAX,
        deserialize_u32 => INT32_MAX,
        deserialize_u64 => INT64_MAX,
    );

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_unit_struct(name, Nested(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_newtype_struct(name, Nested(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(len, Nested(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple_struct(name, len, Nested(visitor))
    }

    /// A struct from an object only: `deserialize_map` refuses an array where
    /// `deserialize_struct` would read one as the fields in order.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(Nested(visitor))
    }

    /// A (unit-variant) enum from a string only.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_str(EnumFromStr(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// Passes a visitor's values through, reading nested values with [`Strict`].
struct Nested<V>(V);

macro_rules! forward {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.0.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Nested<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.expecting(f)
    }

    forward!(
        visit_bool(bool),
        visit_i8(i8),
        visit_i16(i16),
        visit_i32(i32),
        visit_i64(i64),
        visit_i128(i128),
        visit_u8(u8),
        visit_u16(u16),
        visit_u32(u32),
        visit_u64(u64),
        visit_u128(u128),
        visit_f32(f32),
        visit_f64(f64),
        visit_char(char),
        visit_str(&str),
        visit_borrowed_str(&'de str),
        visit_string(String),
        visit_bytes(&[u8]),
        visit_borrowed_bytes(&'de [u8]),
        visit_byte_buf(Vec<u8>),
    );

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.0.visit_some(Strict(d))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.0.visit_newtype_struct(Strict(d))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.0.visit_seq(Elements(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(Entries(map))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.0.visit_enum(data)
    }
}

/// The elements of an array, each read with [`Strict`].
struct Elements<A>(A);

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Elements<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(StrictSeed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

/// The entries of an object, each value read with [`Strict`] (keys are field names).
struct Entries<A>(A);

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Entries<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(seed)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.0.next_value_seed(StrictSeed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

struct StrictSeed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for StrictSeed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Strict(d))
    }
}

/// An integer no larger than `max`.
struct Integer<V> {
    visitor: V,
    max: u64,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Integer<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.visitor.expecting(f)?;
        write!(f, " at most {}", self.max)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<V::Value, E> {
        if v > self.max {
            return Err(E::invalid_value(Unexpected::Unsigned(v), &self));
        }
        self.visitor.visit_u64(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<V::Value, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => self.visitor.visit_i64(v),
        }
    }

    fn visit_u8<E: de::Error>(self, v: u8) -> Result<V::Value, E> {
        self.visit_u64(v.into())
    }

    fn visit_u16<E: de::Error>(self, v: u16) -> Result<V::Value, E> {
        self.visit_u64(v.into())
    }

    fn visit_u32<E: de::Error>(self, v: u32) -> Result<V::Value, E> {
        self.visit_u64(v.into())
    }

    fn visit_i8<E: de::Error>(self, v: i8) -> Result<V::Value, E> {
        self.visit_i64(v.into())
    }

    fn visit_i16<E: de::Error>(self, v: i16) -> Result<V::Value, E> {
        self.visit_i64(v.into())
    }

    fn visit_i32<E: de::Error>(self, v: i32) -> Result<V::Value, E> {
        self.visit_i64(v.into())
    }

    // Anything else (a float, a string, an object, ...) is the wrong type: serde's default
    // answers so, saying what was expected. Integers written as `3968.0` reach here as integers:
    // [`integral_numbers`] rewrote them.
}

/// `json` with every number that is an integer written with a fraction or an exponent
/// (`3968.0`, `1e3`, `12.50e1`) rewritten as that integer's digits, so that it parses as an
/// integer; strings and every other number are left as they are. Borrowed when nothing changes.
pub fn integral_numbers(json: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                i += 1;
                while i < json.len() {
                    match json[i] {
                        b'\\' => i += 2,
                        b'"' => {
                            i += 1;
                            break;
                        }
                        _ => i += 1,
                    }
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                i += 1;
                while i < json.len()
                    && matches!(json[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    i += 1;
                }
                if let Some(integer) = as_integer(&json[start..i]) {
                    let out = out.get_or_insert_with(|| Vec::with_capacity(json.len()));
                    out.extend_from_slice(&json[copied..start]);
                    out.extend_from_slice(integer.as_bytes());
                    copied = i;
                }
            }
            _ => i += 1,
        }
    }
    match out {
        None => Cow::Borrowed(json),
        Some(mut out) => {
            out.extend_from_slice(&json[copied..]);
            Cow::Owned(out)
        }
    }
}

/// The digits of the integer a JSON number with a fraction or an exponent writes, if it writes
/// one (and is a valid JSON number of at most about 40 digits).
fn as_integer(token: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(token).ok()?;
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((_, "")) => return None, // `1.` is no JSON number
        Some((int, frac)) => (int, frac),
        None if exponent == 0 && !text.contains(['e', 'E']) => return None, // already an integer
        None => (mantissa, ""),
    };
    let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits_only(int) || (!frac.is_empty() && !digits_only(frac)) {
        return None;
    }
    if int.len() > 1 && int.starts_with('0') {
        return None; // `01.0` is no JSON number
    }
    let mut digits = format!("{int}{frac}");
    let shift = exponent.checked_sub(i32::try_from(frac.len()).ok()?)?;
    if shift >= 0 {
        if digits.len() + shift as usize > 40 {
            return None;
        }
        digits.extend(std::iter::repeat_n('0', shift as usize));
    } else {
        let cut = digits.len().checked_sub(shift.unsigned_abs() as usize)?;
        if !digits[cut..].bytes().all(|b| b == b'0') {
            return None;
        }
        digits.truncate(cut);
    }
    let digits = digits.trim_start_matches('0');
    Some(match (digits, negative) {
        ("", _) => "0".to_string(),
        (digits, true) => format!("-{digits}"),
        (digits, false) => digits.to_string(),
    })
}

/// Reads a unit-variant enum from a string, and nothing else.
struct EnumFromStr<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for EnumFromStr<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<V::Value, E> {
        let variant: de::value::StrDeserializer<'_, E> = v.into_deserializer();
        self.0.visit_enum(variant)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<V::Value, E> {
        self.visit_str(v)
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<V::Value, E> {
        self.visit_str(&v)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        partition: u32,
        offset: u64,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Stream,
        Queue,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        #[serde(default)]
        inner: Option<Vec<Inner>>,
        #[serde(default)]
        mode: Option<Mode>,
        #[serde(default)]
        at: Option<i64>,
    }

    fn parse<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, serde_json::Error> {
        let json = integral_numbers(json.as_bytes());
        let mut de = serde_json::Deserializer::from_slice(&json);
        let value = T::deserialize(Strict(&mut de))?;
        de.end()?;
        Ok(value)
    }

    #[test]
    fn structs_come_from_objects_only() {
        assert!(serde_json::from_str::<Outer>("[null, null, null]").is_ok());
        assert!(parse::<Outer>("[null, null, null]").is_err());
        assert!(parse::<Outer>(r#"{"inner": [[1, 2]]}"#).is_err());
        assert!(parse::<Outer>("null").is_err());
        let ok = parse::<Outer>(r#"{"inner": [{"partition": 1, "offset": 2}], "mode": "queue"}"#);
        assert_eq!(
            ok.unwrap(),
            Outer {
                inner: Some(vec![Inner {
                    partition: 1,
                    offset: 2
                }]),
                mode: Some(Mode::Queue),
                at: None,
            }
        );
        assert!(parse::<Outer>(r#"{"typo": 1}"#).is_err());
    }

    #[test]
    fn enums_come_from_strings_only() {
        assert!(serde_json::from_str::<Outer>(r#"{"mode": {"queue": null}}"#).is_ok());
        assert!(parse::<Outer>(r#"{"mode": {"queue": null}}"#).is_err());
        assert!(parse::<Outer>(r#"{"mode": "sideways"}"#).is_err());
        assert_eq!(
            parse::<Outer>(r#"{"mode": "stream"}"#).unwrap().mode,
            Some(Mode::Stream)
        );
    }

    #[test]
    fn integers_have_the_range_of_their_format() {
        let inner =
            |p: &str, o: &str| parse::<Inner>(&format!(r#"{{"partition": {p}, "offset": {o}}}"#));
        assert!(inner("2147483647", "9223372036854775807").is_ok());
        assert!(inner("2147483648", "0").is_err());
        assert!(inner("0", "9223372036854775808").is_err());
        assert!(inner("0", "18446744073709551616").is_err());
        assert!(inner("-1", "0").is_err());
        let at = |t: &str| parse::<Outer>(&format!(r#"{{"at": {t}}}"#)).map(|o| o.at);
        assert_eq!(at("-9223372036854775808").unwrap(), Some(i64::MIN));
        assert_eq!(at("9223372036854775807").unwrap(), Some(i64::MAX));
    }

    #[test]
    fn integral_floats_are_integers() {
        let p = parse::<Inner>(r#"{"partition": 3968.0, "offset": 1e3}"#).unwrap();
        assert_eq!((p.partition, p.offset), (3968, 1000));
        assert!(parse::<Inner>(r#"{"partition": 3968.5, "offset": 0}"#).is_err());
        assert!(parse::<Inner>(r#"{"partition": 1e10, "offset": 0}"#).is_err());
        assert!(parse::<Inner>(r#"{"partition": 0, "offset": 1e19}"#).is_err());
        // Out of an i64's range, whatever a float would round it to.
        let at = |t: &str| parse::<Outer>(&format!(r#"{{"at": {t}}}"#));
        assert!(at("-9223372036854775809").is_err());
        assert_eq!(at("-9223372036854775808.0").unwrap().at, Some(i64::MIN));
        assert!(at("-9223372036854775808.5").is_err());
        // Exactly, where a float would be off by a fraction.
        let p = parse::<Inner>(r#"{"partition": 1.0, "offset": 2068954616789867.0}"#).unwrap();
        assert_eq!(p.offset, 2_068_954_616_789_867);
        let p = parse::<Inner>(r#"{"partition": 125e-1e0, "offset": 0}"#);
        assert!(p.is_err());
        let at = parse::<Outer>(r#"{"at": -5.0}"#).unwrap();
        assert_eq!(at.at, Some(-5));
    }

    #[test]
    fn integral_numbers_rewrites_only_integers_outside_strings() {
        let rewrite =
            |json: &str| String::from_utf8(integral_numbers(json.as_bytes()).into_owned()).unwrap();
        assert_eq!(
            rewrite(r#"[3968.0, 1e3, 12.50e1, -0.0, 50e-1, 7, 2.5, 5e-1, "1.0", "a\"2.0"]"#),
            r#"[3968, 1000, 125, 0, 5, 7, 2.5, 5e-1, "1.0", "a\"2.0"]"#
        );
        assert_eq!(rewrite("[1., 01.0, 1e999, -]"), "[1., 01.0, 1e999, -]");
        assert!(matches!(integral_numbers(b"{\"a\": 1}"), Cow::Borrowed(_)));
    }

    #[test]
    fn query_strings_get_the_same_ranges() {
        #[derive(Debug, Deserialize)]
        struct Q {
            offset: Option<u64>,
            partition: Option<u32>,
        }
        let parse_query = |q: &str| {
            let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
            Q::deserialize(Strict(de))
        };
        let q = parse_query("offset=9223372036854775807&partition=7").unwrap();
        assert_eq!((q.offset, q.partition), (Some(i64::MAX as u64), Some(7)));
        assert!(parse_query("offset=9223372036854775808").is_err());
        assert!(parse_query("partition=2147483648").is_err());
        assert!(parse_query("").is_ok());
    }
}
