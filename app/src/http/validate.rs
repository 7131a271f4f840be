//! Field rules for request bodies. Each failure is a 422 naming the (camelCase) field.
use super::error::ApiError;

/// Trims and lower-cases an email address and checks its form.
pub fn email(raw: &str) -> Result<String, ApiError> {
    let email = raw.trim().to_lowercase();
    let bad = |why: &str| ApiError::validation("email", why);
    if email.is_empty() || email.len() > 254 {
        return Err(bad("must be 1 to 254 characters"));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(bad("must contain @"));
    };
    if local.is_empty()
        || domain.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || email.chars().any(char::is_whitespace)
    {
        return Err(bad("is not an email address"));
    }
    Ok(email)
}

/// 3 to 50 characters: ASCII letters, digits, `_`, `.`, `-`.
pub fn username(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    let len = name.chars().count();
    if !(3..=50).contains(&len) {
        return Err(ApiError::validation("username", "must be 3 to 50 characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(ApiError::validation(
            "username",
            "may contain only letters, digits, _, . and -",
        ));
    }
    Ok(name.to_owned())
}

/// Trims `value` and checks its length in characters.
pub fn text(field: &str, value: String, min: usize, max: usize) -> Result<String, ApiError> {
    let trimmed = value.trim();
    let len = trimmed.chars().count();
    if len < min || len > max {
        let rule = if min == 0 {
            format!("must be at most {max} characters")
        } else {
            format!("must be {min} to {max} characters")
        };
        return Err(ApiError::validation(field, rule));
    }
    Ok(trimmed.to_owned())
}

/// An optional free text; empty becomes `None`.
pub fn optional_text(field: &str, value: Option<String>, max: usize) -> Result<Option<String>, ApiError> {
    value
        .map(|v| text(field, v, 0, max))
        .transpose()
        .map(|v| v.filter(|s| !s.is_empty()))
}

/// Task priority, 0 (lowest) to 4 (most urgent).
pub fn priority(value: i64) -> Result<i16, ApiError> {
    match i16::try_from(value) {
        Ok(p) if (0..=4).contains(&p) => Ok(p),
        _ => Err(ApiError::validation("priority", "must be between 0 and 4")),
    }
}

/// A positive id referring to another resource.
pub fn reference(field: &str, value: i64) -> Result<i64, ApiError> {
    if value > 0 {
        Ok(value)
    } else {
        Err(ApiError::validation(field, "must be a positive id"))
    }
}

/// Serde helper for PATCH bodies: tells an absent field (`None`, via `#[serde(default)]`) from an
/// explicit `null` (`Some(None)`).
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}

/// Serde helper for PATCH bodies: a field that may be absent but not `null` (the column is
/// NOT NULL); `null` is a 422 naming the field.
pub fn non_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    match <Option<T> as serde::Deserialize>::deserialize(deserializer)? {
        Some(value) => Ok(Some(value)),
        None => Err(serde::de::Error::custom("may not be null")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(email(" Ada@Example.COM ").unwrap(), "ada@example.com");
        for bad in ["", "ada", "ada@", "@x.org", "a@b", "a b@x.org", "a@@x.org"] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn usernames_and_priority() {
        assert!(username("ada_l").is_ok());
        assert!(username("ab").is_err());
        assert!(username("ada lovelace").is_err());
        assert_eq!(priority(4).unwrap(), 4);
        assert!(priority(5).is_err());
        assert!(priority(-1).is_err());
    }
}
