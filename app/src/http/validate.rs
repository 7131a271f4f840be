//! Field rules for request bodies. Each failure is a 422 naming the (camelCase) field.
use super::error::ApiError;

/// What a body field must be, stated once for the server (the functions below) and the OpenAPI
/// document ([`Rule::schema`], applied by `http::openapi`), so that the two accept exactly the same
/// values: schemathesis checks both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Free text of at most `max` characters (as sent); with `min` 1, something besides ASCII
    /// white space ([`text`]).
    Text { min: usize, max: usize },
    /// [`email`].
    Email,
    /// [`username`].
    Username,
    /// A positive id ([`reference`]).
    Id,
    /// 0..=4 ([`priority`]).
    Priority,
}

/// ASCII white space, which text fields are trimmed of (`char::is_ascii_whitespace`).
const BLANK: &str = r"\t\n\x0c\r ";
/// Printable ASCII other than `@` (the characters of an email address around its `@`).
const EMAIL_CHAR: &str = r"\x21-\x3f\x41-\x7e";
/// [`EMAIL_CHAR`] other than `.` (a domain's first and last character).
const DOMAIN_EDGE: &str = r"\x21-\x2d\x2f-\x3f\x41-\x7e";

impl Rule {
    /// The JSON Schema keywords of this rule, to merge into the field's schema.
    pub fn schema(&self) -> serde_json::Value {
        match *self {
            Self::Text { min: 0, max } => serde_json::json!({"maxLength": max, "pattern": r"^[^\x00]*$"}),
            Self::Text { max, .. } => serde_json::json!({
                "maxLength": max,
                "pattern": format!(r"^[^\x00]*[^\x00{BLANK}][^\x00]*$"),
            }),
            Self::Email => serde_json::json!({
                "maxLength": EMAIL_MAX,
                "pattern": format!(
                    r"^ *[{EMAIL_CHAR}]+@[{DOMAIN_EDGE}][{EMAIL_CHAR}]*\.[{EMAIL_CHAR}]*[{DOMAIN_EDGE}] *$"
                ),
            }),
            Self::Username => serde_json::json!({"pattern": r"^[A-Za-z0-9_.-]{3,50}$"}),
            Self::Id => serde_json::json!({"minimum": 1}),
            Self::Priority => serde_json::json!({"minimum": 0, "maximum": 4}),
        }
    }
}

/// Longest email address, in characters as sent.
const EMAIL_MAX: usize = 254;

/// An email address: printable ASCII, one `@` with something before it, a domain with a `.` that
/// neither starts nor ends with one, spaces around it allowed (and trimmed), at most 254
/// characters; stored lower-cased.
pub fn email(raw: &str) -> Result<String, ApiError> {
    let bad = |why: &str| ApiError::validation("email", why);
    if raw.chars().count() > EMAIL_MAX {
        return Err(bad("must be at most 254 characters"));
    }
    let email = raw.trim_matches(' ');
    if !email.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("may contain only printable ASCII characters"));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(bad("must contain @"));
    };
    if local.is_empty()
        || domain.len() < 3
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
    {
        return Err(bad("is not an email address"));
    }
    Ok(email.to_ascii_lowercase())
}

/// 3 to 50 characters: ASCII letters, digits, `_`, `.`, `-` (nothing else, no spaces).
pub fn username(raw: &str) -> Result<String, ApiError> {
    let len = raw.chars().count();
    if !(3..=50).contains(&len) {
        return Err(ApiError::validation("username", "must be 3 to 50 characters"));
    }
    if !raw
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(ApiError::validation(
            "username",
            "may contain only letters, digits, _, . and -",
        ));
    }
    Ok(raw.to_owned())
}

/// At most `max` characters as sent; stored without leading and trailing ASCII white space, which
/// must leave at least `min` characters.
pub fn text(field: &str, value: String, min: usize, max: usize) -> Result<String, ApiError> {
    let trimmed = value.trim_matches(|c: char| c.is_ascii_whitespace());
    if value.chars().count() > max || trimmed.chars().count() < min {
        let rule = if min == 0 {
            format!("must be at most {max} characters")
        } else {
            format!("must be {min} to {max} characters, not all blank")
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

/// A PATCH body: every field may be absent, which leaves its column as it is. A field under
/// `non_null` may not be `null` (its column is NOT NULL; `null` is a 422 naming it, see [`non_null`]);
/// one under `nullable` takes `null` to clear its column ([`nullable`]). `NON_NULL` names the first
/// kind, so the OpenAPI document takes the rule from here rather than from a list of its own.
macro_rules! patch_body {
    (
        $(#[$doc:meta])*
        $name:ident {
            non_null { $($keep:ident: $keep_ty:ty),* $(,)? }
            nullable { $($clear:ident: $clear_ty:ty),* $(,)? }
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        pub struct $name {
            $(
                #[serde(default, deserialize_with = "crate::http::validate::non_null")]
                pub $keep: Option<$keep_ty>,
            )*
            $(
                #[serde(default, deserialize_with = "crate::http::validate::nullable")]
                #[schema(value_type = Option<$clear_ty>)]
                pub $clear: Option<Option<$clear_ty>>,
            )*
        }

        impl $name {
            /// The fields that may be absent but not `null`, by their Rust (snake_case) names.
            pub const NON_NULL: &'static [&'static str] = &[$(stringify!($keep)),*];
        }
    };
}
pub(crate) use patch_body;

/// A snake_case name as serde's `rename_all = "camelCase"` spells it in JSON.
pub fn camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_case_spells_fields_as_serde_does() {
        assert_eq!(camel_case("assignee_id"), "assigneeId");
        assert_eq!(camel_case("first_name"), "firstName");
        assert_eq!(camel_case("email"), "email");
    }

    /// Each field a PATCH body lists as `non_null` refuses `null` under its JSON name, and each
    /// other field takes it (clearing) or is absent: the list the OpenAPI document reads is the rule
    /// the body applies.
    #[test]
    fn patch_bodies_refuse_null_exactly_where_they_say() {
        use crate::http::{projects::UpdateProject, tasks::UpdateTask, users::UpdateUser};

        fn nulls<T: serde::de::DeserializeOwned>(non_null: &[&str], nullable: &[&str]) {
            for field in non_null {
                let body = serde_json::json!({ camel_case(field): null });
                let err = serde_json::from_value::<T>(body).err().expect(field);
                assert!(err.to_string().contains("may not be null"), "{field}: {err}");
            }
            for field in nullable {
                let body = serde_json::json!({ camel_case(field): null });
                assert!(serde_json::from_value::<T>(body).is_ok(), "{field}");
            }
            assert!(serde_json::from_value::<T>(serde_json::json!({})).is_ok());
        }
        nulls::<UpdateUser>(UpdateUser::NON_NULL, &[]);
        nulls::<UpdateProject>(UpdateProject::NON_NULL, &["description"]);
        nulls::<UpdateTask>(UpdateTask::NON_NULL, &["description", "assignee_id", "due_date"]);
        assert_eq!(
            UpdateTask::NON_NULL,
            ["project_id", "title", "status", "priority"]
        );
    }

    #[test]
    fn emails() {
        assert_eq!(email(" Ada@Example.COM ").unwrap(), "ada@example.com");
        for bad in [
            "",
            "ada",
            "ada@",
            "@x.org",
            "a@b",
            "a b@x.org",
            "a@@x.org",
            "\tada@x.org",
            "é@x.org",
            "a@.x",
            "a@x.",
        ] {
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
