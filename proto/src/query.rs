//! Serde helpers for query-string parameters shared by the request structs of
//! `master_api` and `volume_api`.

/// A boolean query flag where an empty value means false (`replace=`).
pub(crate) mod flag {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &bool, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(*v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        match String::deserialize(d)?.as_str() {
            "" | "false" => Ok(false),
            "true" => Ok(true),
            other => Err(serde::de::Error::custom(format!(
                "{other:?}: expected true or false"
            ))),
        }
    }
}

/// An optional number where an empty value means absent (`dataShards=`).
pub(crate) mod opt_num {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let s = String::deserialize(d)?;
        match s.trim() {
            "" => Ok(None),
            t => t
                .parse()
                .map(Some)
                .map_err(|e| serde::de::Error::custom(format!("{t:?}: {e}"))),
        }
    }
}
