use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use uuid::Uuid;

/// Not an id in its one spelling (`parse_uuid`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidId;

impl fmt::Display for InvalidId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a UUID in its hyphenated form (8-4-4-4-12 hexadecimal digits)")
    }
}

impl std::error::Error for InvalidId {}

/// An id's one spelling on the wire: 36 characters, hexadecimal digits hyphenated
/// 8-4-4-4-12 (either case). `uuid` alone also reads braces, a `urn:uuid:` prefix and 32
/// bare digits: several spellings of one id, each a way past anything that compares text
/// (a cache key, a log search, a proxy rule).
pub fn parse_uuid(s: &str) -> Result<Uuid, InvalidId> {
    let b = s.as_bytes();
    let hyphenated = b.len() == 36 && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-');
    if !hyphenated {
        return Err(InvalidId);
    }
    Uuid::parse_str(s).map_err(|_| InvalidId)
}

macro_rules! uuid_id {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl $name {
            pub fn new() -> Self {
                $name(Uuid::now_v7())
            }
            pub fn as_uuid(self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_uuid(s).map($name)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                $name(u)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                        utoipa::openapi::KnownFormat::Uuid,
                    )))
                    .description(Some($doc))
                    .into()
            }
        }
        impl utoipa::ToSchema for $name {}
    };
}

uuid_id!(UserId, "A user: pseudonymous, carries no personal data.");
uuid_id!(ShopId, "A shop that sends purchases with its API key.");

macro_rules! text_id {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// 1 to 128 characters of `A-Z a-z 0-9 . _ : -`, so it is safe in a NATS
            /// message id, a log field and a URL.
            pub fn parse(s: &str) -> Result<Self, String> {
                let ok = !s.is_empty()
                    && s.len() <= 128
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
                if ok {
                    Ok($name(s.to_owned()))
                } else {
                    Err(format!(
                        "{} must be 1 to 128 characters of letters, digits, '.', '_', ':' or '-'",
                        stringify!($name)
                    ))
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::parse(&s).map_err(serde::de::Error::custom)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some("^[A-Za-z0-9._:-]{1,128}$"))
                    .description(Some($doc))
                    .into()
            }
        }
        impl utoipa::ToSchema for $name {}
    };
}

text_id!(OrderId, "A shop's own order id, unique per shop.");
text_id!(RefundId, "A shop's own refund id, unique per shop.");

#[cfg(test)]
#[path = "ids_test.rs"]
mod tests;
